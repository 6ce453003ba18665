"""Turn text into unit vectors with a sentence-transformers model.

Two backends compute the same model. ``torch`` runs it through sentence-transformers.
``onnx`` runs an ONNX export of it through onnxruntime: the export is made once per
model (with sentence-transformers, so pooling and normalisation are part of it) and
cached, after which neither torch nor sentence-transformers is imported. That saves
~5 s of start-up, and int8 weights embed more than twice as fast as float32.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Protocol

import numpy as np

from .errors import ModelError

log = logging.getLogger(__name__)

_ONNX_FORMAT = 1  # bump when the export below changes, so old exports are redone


class Embedder(Protocol):
    name: str  # the model and its variant: vectors from another variant need re-embedding
    dim: int

    def embed(self, texts: list[str], progress: bool = False) -> np.ndarray: ...


def native_bfloat16() -> bool:
    """Whether the CPU has bfloat16 arithmetic; elsewhere bfloat16 is emulated and slower than float32."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return bool(re.search(r"\b(avx512_bf16|amx_bf16)\b", flags))


def load_embedder(location: str, name: str, backend: str, dtype: str, cache_dir: Path, threads: int) -> Embedder:
    """The embedder the settings ask for. ``auto`` picks onnx int8 for a local model folder
    and torch (bfloat16 where the CPU has it) for a hub name, which only sentence-transformers resolves."""
    if backend == "auto":
        backend = "onnx" if Path(location).is_dir() else "torch"
    if backend == "onnx":
        dtype = "int8" if dtype == "auto" else dtype
        if dtype not in ("int8", "float32"):
            raise ModelError(f"RAG_EMBEDDER_DTYPE={dtype} is not available with the onnx backend: use int8 or float32.")
        if not Path(location).is_dir():
            raise ModelError(f"The onnx embedder backend needs a local model folder, not {location!r}. "
                             "Give a path, or set RAG_EMBEDDER_BACKEND=torch.")
        return OnnxEmbedder(location, name, dtype, cache_dir, threads)
    dtype = ("bfloat16" if native_bfloat16() else "float32") if dtype == "auto" else dtype
    if dtype not in ("bfloat16", "float32"):
        raise ModelError(f"RAG_EMBEDDER_DTYPE={dtype} is not available with the torch backend: use float32 or bfloat16.")
    return TorchEmbedder(location, name, dtype)


def _load_sentence_transformer(location: str, dtype: str = "float32"):  # -> SentenceTransformer
    # Imported here: torch takes seconds to import and `rag --help` should not wait.
    import torch
    from sentence_transformers import SentenceTransformer

    try:
        return SentenceTransformer(location, device="cpu", model_kwargs={"torch_dtype": getattr(torch, dtype)})
    except (OSError, ValueError) as exc:
        raise ModelError(
            f"Could not load embedder {location!r} offline: {exc}. Give a local folder in "
            "sentence-transformers format, or set RAG_ALLOW_DOWNLOADS=1 to fetch it by name."
        ) from exc


def _dimension(model) -> int:
    get_dim = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    return int(get_dim())


class TorchEmbedder:
    """sentence-transformers on PyTorch; vectors are L2-normalised so inner product = cosine."""

    def __init__(self, location: str, name: str, dtype: str = "float32") -> None:
        self._model = _load_sentence_transformer(location, dtype)
        self.name = f"{name} (torch {dtype})"
        self.dim = _dimension(self._model)

    def embed(self, texts: list[str], progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self._model.encode(
            texts, batch_size=32, normalize_embeddings=True, show_progress_bar=progress, convert_to_numpy=True
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)


def _model_fingerprint(location: str) -> str:
    """Changes when the model folder's files do (cheap: names, sizes and times, no reading)."""
    entries = sorted((str(p.relative_to(location)), p.stat().st_size, p.stat().st_mtime_ns)
                     for p in Path(location).rglob("*") if p.is_file())
    return hashlib.sha256(json.dumps([str(Path(location).resolve()), entries]).encode()).hexdigest()[:16]


def export_onnx(location: str, folder: Path, int8: bool) -> None:
    """Export the whole sentence-transformers pipeline (transformer, pooling, normalising)
    to ``folder``/model.onnx with its tokenizer, then write them into place atomically."""
    import torch

    model = _load_sentence_transformer(location).eval()
    tokenizer = model.tokenizer
    if not getattr(tokenizer, "is_fast", False):
        raise ModelError(f"Embedder {location!r} has no fast tokenizer, so it cannot run on onnx. "
                         "Set RAG_EMBEDDER_BACKEND=torch.")
    sample = tokenizer(["An example sentence.", "A second, somewhat longer example sentence."],
                       padding=True, return_tensors="pt")
    inputs = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in sample]

    class Pipeline(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *args: torch.Tensor) -> torch.Tensor:
            return self.model(dict(zip(inputs, args)))["sentence_embedding"]

    fast = tokenizer.backend_tokenizer  # saved with the model's truncation; texts go one at a time, unpadded
    fast.enable_truncation(model.max_seq_length)

    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.with_name(f"{folder.name}.partial-{os.getpid()}")
    tmp.mkdir(exist_ok=True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the tracer's notes on Python branches it froze: expected, and harmless here
            plain = tmp / ("float32.onnx" if int8 else "model.onnx")
            torch.onnx.export(Pipeline(), tuple(sample[k] for k in inputs), str(plain), input_names=inputs,
                              output_names=["embedding"], opset_version=17, dynamo=False,
                              dynamic_axes={**{k: {0: "batch", 1: "tokens"} for k in inputs}, "embedding": {0: "batch"}})
            if int8:
                from onnxruntime.quantization import QuantType, quantize_dynamic

                quantize_dynamic(str(plain), str(tmp / "model.onnx"), weight_type=QuantType.QInt8, per_channel=True)
                plain.unlink()
        fast.save(str(tmp / "tokenizer.json"))
        (tmp / "embedder.json").write_text(json.dumps({"dim": _dimension(model), "inputs": inputs}))
        os.replace(tmp, folder)
    except (RuntimeError, ValueError, TypeError, AttributeError) as exc:
        raise ModelError(f"Could not export embedder {location!r} to onnx ({exc}). "
                         "Set RAG_EMBEDDER_BACKEND=torch to run it on PyTorch instead.") from exc
    except OSError:
        if not (folder / "embedder.json").exists():  # else another process finished the same export first
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class OnnxEmbedder:
    """The same model on onnxruntime, from an export cached under ``cache_dir``.

    Texts go through one at a time, on ``threads`` single-threaded workers: with int8
    weights the activations are quantised per call, so batching would make a text's
    vector depend on its neighbours; one at a time it is the same in every build and
    query. On 2 cores that is also faster than batches (measured: 269 against 184
    chunks/s for batches of 32 on 2 threads)."""

    def __init__(self, location: str, name: str, dtype: str, cache_dir: Path, threads: int) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        folder = cache_dir / "embedders" / f"{_model_fingerprint(location)}-{dtype}-v{_ONNX_FORMAT}"
        if not (folder / "embedder.json").exists():
            log.warning("Preparing the embedder for onnxruntime (%s, %s); this happens once.", name, dtype)
            export_onnx(location, folder, int8=dtype == "int8")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.log_severity_level = 3
        try:
            meta = json.loads((folder / "embedder.json").read_text())
            self._inputs: list[str] = meta["inputs"]
            self.dim = int(meta["dim"])
            self._tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
            self._session = onnxruntime.InferenceSession(str(folder / "model.onnx"), options,
                                                         providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime and tokenizers raise plain Exception subclasses for a bad file
            raise ModelError(f"The cached onnx embedder in {folder} is damaged ({exc}). Delete that folder "
                             "and it is made again.") from exc
        self.name = f"{name} (onnx {dtype})"
        self._workers = max(1, threads)

    def _one(self, text: str) -> np.ndarray:
        encoded = self._tokenizer.encode(text)
        fields = {"input_ids": encoded.ids, "attention_mask": encoded.attention_mask,
                  "token_type_ids": encoded.type_ids}
        return self._session.run(None, {k: np.array([fields[k]], dtype=np.int64) for k in self._inputs})[0][0]

    def embed(self, texts: list[str], progress: bool = False) -> np.ndarray:
        from tqdm import tqdm

        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if len(texts) == 1:
            out[0] = self._one(texts[0])
            return out
        with ThreadPoolExecutor(self._workers) as pool, \
                tqdm(total=len(texts), desc="Embedding", unit="chunk", disable=not progress) as bar:
            for row, vector in enumerate(pool.map(self._one, texts)):
                out[row] = vector
                bar.update()
        return out
