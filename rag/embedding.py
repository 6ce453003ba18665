"""Turn text into unit vectors with a sentence-transformers model."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from .errors import ModelError


def native_bfloat16() -> bool:
    """Whether the CPU has bfloat16 arithmetic; elsewhere bfloat16 is emulated and slower than float32."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return bool(re.search(r"\b(avx512_bf16|amx_bf16)\b", flags))


class Embedder:
    """Wraps a SentenceTransformer; vectors are L2-normalised so inner product = cosine."""

    def __init__(self, location: str, name: str | None = None, dtype: str = "float32") -> None:
        # Imported here: torch takes seconds to import and `rag --help` should not wait.
        import torch
        from sentence_transformers import SentenceTransformer

        if dtype == "auto":
            dtype = "bfloat16" if native_bfloat16() else "float32"
        try:
            self._model = SentenceTransformer(location, device="cpu", model_kwargs={"torch_dtype": getattr(torch, dtype)})
        except (OSError, ValueError) as exc:
            raise ModelError(
                f"Could not load embedder {location!r} offline: {exc}. Give a local folder in "
                "sentence-transformers format, or set RAG_ALLOW_DOWNLOADS=1 to fetch it by name."
            ) from exc
        self.name = name or location
        self.dtype = dtype
        get_dim = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        self.dim = int(get_dim())

    def embed(self, texts: list[str], progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self._model.encode(
            texts, batch_size=32, normalize_embeddings=True, show_progress_bar=progress, convert_to_numpy=True
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)
