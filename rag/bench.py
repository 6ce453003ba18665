"""`rag bench`: measure speed in one run, baseline and ours side by side.

Baseline = the naive pipeline the speed issue started from: ~700-character chunks,
4 passages, dense retrieval only, flat FAISS, no prompt-lookup decoding. Ours =
the current default Settings. Every figure is measured here, in this process or a
fresh one; nothing is assumed. Prints a table and writes it as JSON.
"""

from __future__ import annotations

import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from pydantic import SecretStr

from .config import Settings

QUESTION = "How many North Korean troops are in Russia according to the Pentagon?"
WARM_QUESTION = "Which NATO leader said North Korean forces were in Kursk?"


@dataclass
class Row:
    metric: str
    unit: str
    baseline: float | None
    ours: float | None

    @property
    def ratio(self) -> str:
        if not self.baseline or self.ours is None:
            return ""
        return f"{self.baseline / self.ours:.2f}x" if self.unit in ("s", "ms") else f"{self.ours / self.baseline:.2f}x"


def baseline_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"chunk_size": 700, "chunk_overlap": 0, "top_k": 4, "lexical_weight": 0.0,
                                       "max_per_doc": 20, "figure_bonus": 0.0,
                                       "second_look": 0.0, "embedder_backend": "torch", "embedder_dtype": "float32",
                                       "ivf_threshold": 10**12,
                                       "index_dir": settings.cache_dir / "bench-baseline-index"})


def _pcts(values: list[float]) -> tuple[float, float]:
    values = sorted(values)
    return statistics.median(values), values[min(len(values) - 1, int(round(0.95 * (len(values) - 1))))]


def _env_value(value: object) -> str:
    """A setting as its RAG_* variable spells it (str() gives "**********" for a key and
    "frozenset()" for an empty set of rules)."""
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, (set, frozenset)):
        return ",".join(sorted(value))
    return str(value)


def _cold_and_warm_start(settings: Settings) -> tuple[float, float]:
    """Seconds from a new process to its first answer (model already assembled in the
    cache), and then to the answer of a second, different question in that process."""
    env = dict(os.environ, **{f"RAG_{k.upper()}": _env_value(v) for k, v in settings.model_dump().items()
                              if v is not None})
    code = (f"import time; from rag import ask; ask({QUESTION!r}); t = time.perf_counter(); "
            f"ask({WARM_QUESTION!r}); print(time.perf_counter() - t)")
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True)
    warm = float(done.stdout.strip().splitlines()[-1])
    return time.perf_counter() - t0 - warm, warm


def _synthetic_corpus(folder: Path, seeds: Path, chunks_wanted: int, chunk_size: int) -> None:
    """Articles made of shuffled real sentences, enough for about ``chunks_wanted`` chunks."""
    from .chunking import split_sentences
    from .ingest import load_corpus

    sentences = [d.text[s:e] for d in load_corpus(seeds) for span in d.spans for s, e in split_sentences(d.text, *span)]
    rng = random.Random(0)
    folder.mkdir(parents=True, exist_ok=True)
    per_doc = 20
    total_chars = chunks_wanted * chunk_size
    n_docs = max(1, total_chars // (per_doc * 120))
    for i in range(n_docs):
        (folder / f"synthetic_{i:05d}.txt").write_text(" ".join(rng.choice(sentences) for _ in range(per_doc)) + f" Doc {i}.\n")


def _index_build(settings: Settings, embedder, corpus: Path) -> float:
    """Chunks per second for a full build (chunking + embedding + FAISS + atomic save)."""
    from .index import sync

    target = Path(tempfile.mkdtemp(prefix="rag-bench-index-"))
    try:
        s = settings.model_copy(update={"corpus_dir": corpus, "index_dir": target})
        t0 = time.perf_counter()
        index = sync(s, embedder)
        return len(index.chunks) / (time.perf_counter() - t0)
    finally:
        shutil.rmtree(target, ignore_errors=True)


def _clustered(n: int, dim: int, rng: np.random.Generator) -> np.ndarray:
    """Vectors with cluster structure, like real embeddings (uniform noise is unrealistically hard)."""
    centers = rng.standard_normal((max(16, n // 1000), dim)).astype(np.float32)
    x = centers[rng.integers(0, len(centers), n)] + 0.6 * rng.standard_normal((n, dim)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def _retrieval(sizes: list[int], settings: Settings, dim: int = 384, queries: int = 200) -> list[Row]:
    from .index import build_faiss

    rows: list[Row] = []
    rng = np.random.default_rng(0)
    for n in sizes:
        data = _clustered(n, dim, rng)
        q = _clustered(queries, dim, rng)
        timings = {}
        results = {}
        for name, s in (("baseline", baseline_settings(settings)), ("ours", settings)):
            index = build_faiss(data, dim, s)
            lat = []
            ids_all = []
            for row in q:
                t0 = time.perf_counter()
                _, ids = index.search(row[None, :], 10)
                lat.append((time.perf_counter() - t0) * 1000)
                ids_all.append(ids[0])
            timings[name] = _pcts(lat)
            results[name] = ids_all
        recall = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(results["ours"], results["baseline"])]))
        label = f"{n:,} vectors"
        rows += [Row(f"retrieval p50 @ {label}", "ms", timings["baseline"][0], timings["ours"][0]),
                 Row(f"retrieval p95 @ {label}", "ms", timings["baseline"][1], timings["ours"][1]),
                 Row(f"retrieval recall@10 vs exact @ {label}", "", 1.0, recall)]
        del data
    return rows


def _llm_speed(settings: Settings, llm=None) -> dict[str, float]:  # noqa: ANN001 (any ChatModel with reset)
    """Prompt tokens/s, time to first token and generation tokens/s for one fixed prompt."""
    from .engine import get_engine
    from .prompt import build

    engine = get_engine(settings)
    llm = llm or engine.llm
    passages = engine.retrieve(QUESTION, [], settings.top_k)
    prompt = build(QUESTION, passages, [], llm, settings.max_tokens, 0)
    list(llm.stream([{"role": "user", "content": "Hi"}], 1, 0.0))  # weights paged in: cold start is its own row
    llm.reset()  # no KV reuse: measure a cold prompt
    n_prompt = llm.count_tokens("".join(m["content"] for m in prompt.messages))
    t0 = time.perf_counter()
    first = None
    n_gen = 0
    for _ in llm.stream(prompt.messages, 96, 0.0):
        first = first or time.perf_counter() - t0
        n_gen += 1
    total = time.perf_counter() - t0
    return {"prompt_tokens": n_prompt, "prompt_tps": n_prompt / first, "ttft": first,  # type: ignore[operator]
            "gen_tps": (n_gen - 1) / max(total - first, 1e-9)}


def _e2e(settings: Settings, limit: int | None) -> dict[str, float]:
    from .evaluate import run_eval

    report = run_eval(settings, limit=limit, echo=False)
    times = [r.seconds for r in report.results]
    ttft = [r.first_token_s for r in report.results if r.first_token_s is not None]
    p50, p95 = _pcts(times)
    return {"p50": p50, "p95": p95, "ttft_p50": statistics.median(ttft) if ttft else float("nan"), **report.totals}


def run_bench(settings: Settings, quick: bool = False, out: Path | None = None, eval_limit: int | None = None) -> list[Row]:
    """Every measurement, the baseline beside ours, printed row by row as it lands (``quick``: the
    CI smoke run of about a minute: small sizes, one question, no baseline cold start)."""
    from .bench_api import api_questions
    from .bench_cluster import cluster_rows
    from .bench_worker import worker_rows

    base = baseline_settings(settings)
    rows: list[Row] = []
    print(f"{'metric':<44} {'unit':<9} {'baseline':>10} {'ours':>10} {'gain':>7}")
    questions = [QUESTION, WARM_QUESTION] if quick else api_questions(eval_limit or 8)
    for measure in (lambda: _start_rows(base, settings, quick),
                    lambda: _index_rows(base, settings, quick),
                    lambda: _retrieval([10_000] if quick else [10_000, 100_000, 1_000_000], settings),
                    lambda: _llm_rows(base, settings),
                    lambda: worker_rows(settings, quick),
                    lambda: _eval_rows(base, settings, 1 if quick else eval_limit),
                    lambda: _api_rows(settings, [QUESTION] if quick else api_questions(eval_limit or 10)),
                    lambda: cluster_rows(settings, questions, Row),
                    lambda: [Row("peak memory (RSS) of this process", "MiB", None,
                                 resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)]):
        for r in measure():
            rows.append(r)
            b = "" if r.baseline is None else f"{r.baseline:10.3f}"
            o = "" if r.ours is None else f"{r.ours:10.3f}"
            print(f"{r.metric:<44} {r.unit:<9} {b:>10} {o:>10} {r.ratio:>7}", flush=True)
    if out:
        out.write_text(json.dumps([asdict(r) | {"gain": r.ratio} for r in rows], indent=1))
    return rows


def _start_rows(base: Settings, settings: Settings, quick: bool) -> list[Row]:
    b = (None, None) if quick else _cold_and_warm_start(base)
    o = _cold_and_warm_start(settings)
    from .models import get_embedder

    embedder = get_embedder(settings)
    lat = []
    for t in ["North Korean troops are heading to the Kursk region, officials said."] * 30:
        t0 = time.perf_counter()
        embedder.embed([t])
        lat.append((time.perf_counter() - t0) * 1000)
    return [Row("cold start: new process to first answer", "s", b[0], o[0]),
            Row("warm start: next question, same process", "s", b[1], o[1]),
            Row("query embedding", "ms", None, statistics.median(lat))]


def _index_rows(base: Settings, settings: Settings, quick: bool) -> list[Row]:
    from .models import get_embedder

    embedder, base_embedder = get_embedder(settings), get_embedder(base)
    rows = [Row("index build, bundled corpus", "chunks/s", _index_build(base, base_embedder, settings.corpus_dir),
                _index_build(settings, embedder, settings.corpus_dir))]
    synth = Path(tempfile.mkdtemp(prefix="rag-bench-corpus-"))
    try:
        n = 300 if quick else 10_000
        _synthetic_corpus(synth, settings.corpus_dir, n, settings.chunk_size)
        rows.append(Row(f"index build, synthetic ~{n:,} chunks", "chunks/s", _index_build(base, base_embedder, synth),
                        _index_build(settings, embedder, synth)))
    finally:
        shutil.rmtree(synth, ignore_errors=True)
    return rows


def _llm_rows(base: Settings, settings: Settings) -> list[Row]:
    b, o = _llm_speed(base), _llm_speed(settings)
    return [Row("LLM prompt tokens", "tokens", b["prompt_tokens"], o["prompt_tokens"]),
            Row("LLM prompt processing", "tokens/s", b["prompt_tps"], o["prompt_tps"]),
            Row("LLM time to first token", "s", b["ttft"], o["ttft"]),
            Row("LLM generation", "tokens/s", b["gen_tps"], o["gen_tps"])]


def _eval_rows(base: Settings, settings: Settings, limit: int | None) -> list[Row]:
    b, o = _e2e(base, limit), _e2e(settings, limit)
    declined = [Row("eval: unanswerable declined", "share", b["unanswerable_declined"], o["unanswerable_declined"])]
    return [Row("answer latency p50 (eval questions)", "s", b["p50"], o["p50"]),
            Row("answer latency p95 (eval questions)", "s", b["p95"], o["p95"]),
            Row("time to first token p50 (eval)", "s", b["ttft_p50"], o["ttft_p50"]),
            Row("eval: answers correct", "share", b["answers_correct"], o["answers_correct"]),
            Row("eval: citations supported", "share", b["citations_supported"], o["citations_supported"]),
            *(declined if o["unanswerable"] else []),  # a --eval-limit slice may hold none
            Row("eval: retrieval recall@k", "share", b["recall_at_k"], o["recall_at_k"])]


def _api_rows(settings: Settings, questions: list[str]) -> list[Row]:
    from .bench_api import measure_api

    a = measure_api(settings, questions)
    return [Row("API: first content chunk p50, streamed", "s", None, a["first"]),
            Row("API: the same questions, ask() directly p50", "s", None, a["direct"]),
            Row("API: overhead over its ask() p50", "ms", None, a["overhead"])]
