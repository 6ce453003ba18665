"""Turn text into unit vectors with a sentence-transformers model."""

from __future__ import annotations

import numpy as np

from .errors import ModelError


class Embedder:
    """Wraps a SentenceTransformer; vectors are L2-normalised so inner product = cosine."""

    def __init__(self, location: str, name: str | None = None) -> None:
        # Imported here: torch takes seconds to import and `rag --help` should not wait.
        from sentence_transformers import SentenceTransformer

        try:
            self._model = SentenceTransformer(location, device="cpu")
        except (OSError, ValueError) as exc:
            raise ModelError(
                f"Could not load embedder {location!r} offline: {exc}. Give a local folder in "
                "sentence-transformers format, or set RAG_ALLOW_DOWNLOADS=1 to fetch it by name."
            ) from exc
        self.name = name or location
        get_dim = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        self.dim = int(get_dim())

    def embed(self, texts: list[str], progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self._model.encode(
            texts, batch_size=32, normalize_embeddings=True, show_progress_bar=progress, convert_to_numpy=True
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)
