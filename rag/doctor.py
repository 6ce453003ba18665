"""`rag doctor`: what this machine, the models and the index look like, in one report.

The first thing to run when something is wrong. Every check catches its own
failure and reports it as a line, so one broken part does not hide the others.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable, Iterator
from importlib import metadata

from .config import Settings
from .errors import IndexStoreError, RagError

PACKAGES = ("rag", "llama_cpp_python", "faiss-cpu", "sentence-transformers", "onnxruntime", "gradio", "torch",
            "numpy", "bm25s", "pydantic-settings")
_CPU_FEATURES = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_int8", "amx_bf16")


def _versions() -> Iterator[str]:
    yield f"python {platform.python_version()} on {platform.machine()} ({platform.platform(terse=True)})"
    for name in PACKAGES:
        try:
            yield f"{name} {metadata.version(name)}"
        except metadata.PackageNotFoundError:
            yield f"{name} not installed"


def _cpu() -> Iterator[str]:
    from .kernels import cpu_flags

    model = next((line.split(":", 1)[1].strip() for line in _cpuinfo_lines() if line.startswith("model name")), "?")
    flags = set(cpu_flags())
    yield f"{model}; {len(flags)} flags; of note: {', '.join(f for f in _CPU_FEATURES if f in flags) or 'none'}"
    if "amx_tile" in flags:
        yield ("AMX present: llama.cpp's AMX kernels fault on some such CPUs (llama.cpp #20824); "
               "the kernel check below decides whether they are used")


def _cpuinfo_lines() -> list[str]:
    try:
        with open("/proc/cpuinfo") as f:
            return f.read().splitlines()
    except OSError:
        return []


def _model(settings: Settings) -> Iterator[str]:
    from . import kernels
    from .models import llm_spec, model_hash

    spec = llm_spec(settings, progress=True)
    digest = model_hash(settings, spec, progress=True)
    yield f"LLM {spec.path or spec.name}"
    yield f"sha256 {digest}" + (" (the packaged model, verified)" if not settings.llm_path and spec.path else "")
    choice = kernels.choose(settings.llm_cpu_kernels, settings.cache_dir, digest)
    yield f"CPU kernels before start: {choice.kernels} ({choice.reason})"


def _live(settings: Settings) -> Iterator[str]:
    from .models import get_llm

    t0 = time.perf_counter()
    llm = get_llm(settings)
    reply = "".join(llm.stream([{"role": "user", "content": "Reply with the word ready."}], 4, 0.0))
    info = llm.info()  # type: ignore[attr-defined]
    yield f"worker pid {info['pid']} answered {reply.strip()!r} in {time.perf_counter() - t0:.1f} s " \
          f"with {info['kernels']} CPU kernels"
    yield f"llama.cpp sees: {info['system_info']}"


def _index(settings: Settings) -> Iterator[str]:
    from .index import load
    from .ingest import load_corpus

    yield f"corpus {settings.corpus_dir.resolve()}"
    if settings.vector_store == "milvus":
        from .store.milvus import MilvusStore

        store = MilvusStore(settings, {"chunk_size": settings.chunk_size})
        built = store.built_with()
        if built is None:
            raise IndexStoreError(f"No Milvus collection {store.name} at {store.directory}: run `rag index`.")
        index = store
        yield (f"index: Milvus collection {store.name} at {store.directory}: {len(store.docs)} documents, "
               f"{len(store)} chunks, embedder {built['embedder']}")
    else:
        index = load(settings.index_dir, settings.corpus_dir)
        yield (f"index {settings.index_dir.resolve()}: {len(index.docs)} documents, {len(index.chunks)} chunks, "
               f"embedder {index.embedder}")
    docs = {d.doc_id: d.sha256 for d in load_corpus(settings.corpus_dir)}
    changed = sum(1 for d, sha in docs.items() if d in index.docs and index.docs[d].sha256 != sha)
    new, gone = len(set(docs) - set(index.docs)), len(set(index.docs) - set(docs))
    if changed or new or gone:
        yield f"out of date: {changed} changed, {new} new, {gone} removed (updated before the next question)"
    else:
        yield "up to date with the corpus folder"


def report(settings: Settings, live: bool = True) -> list[tuple[str, str, bool]]:
    """(section, line, ok) for every check; printed by ``rag doctor``."""
    checks: list[tuple[str, Callable[[], Iterator[str]]]] = [
        ("versions", _versions), ("cpu", _cpu), ("model", lambda: _model(settings)),
        ("index", lambda: _index(settings))]
    if live:
        checks.append(("llm", lambda: _live(settings)))
    rows: list[tuple[str, str, bool]] = []
    for section, check in checks:
        try:
            rows.extend((section, line, True) for line in check())
        except (RagError, OSError) as exc:
            rows.append((section, str(exc), False))
    return rows
