"""`rag bench`'s rows for the LLM worker process and llama.cpp's CPU kernels: what running the
model in its own process costs, and what the safe kernels cost against the fast ones."""

from __future__ import annotations

import statistics
from dataclasses import replace

from .bench import Row, _llm_speed
from .config import Settings


def worker_rows(settings: Settings, quick: bool) -> list[Row]:
    """The LLM in its worker process (ours) against the same model loaded in this process
    (baseline: how it ran before), the same questions asked of each in turn, each first half the
    time; then llama.cpp's safe CPU kernels (ours) against its fast ones (baseline), both in
    this process."""
    from .engine import Engine, get_engine
    from .evaluate import load_items
    from .generate import LocalLLM
    from .models import llm_spec

    worker = get_engine(settings)
    spec = replace(llm_spec(settings), kernels=worker.llm.kernels)  # type: ignore[attr-defined]
    local = LocalLLM(spec)
    try:
        in_process = Engine(settings, llm=local, embedder=worker.embedder)
        questions = [i.question for i in load_items() if not i.history][: 2 if quick else 20]
        seconds: dict[str, list[float]] = {"local": [], "worker": []}
        ttft: dict[str, list[float]] = {"local": [], "worker": []}
        pair = [("local", in_process), ("worker", worker)]
        for n, question in enumerate(questions):
            for name, engine in pair if n % 2 == 0 else pair[::-1]:  # each goes first half the time
                timings = engine.ask(question).timings
                seconds[name].append(timings.total_s)
                if timings.first_token_s is not None:
                    ttft[name].append(timings.first_token_s)
        b, o = _llm_speed(settings, local), _llm_speed(settings, worker.llm)
    finally:
        local.close()
    rows = [Row("worker: LLM prompt processing (in process vs worker)", "tokens/s", b["prompt_tps"], o["prompt_tps"]),
            Row("worker: time to first token p50 (in process vs worker)", "s", statistics.median(ttft["local"]),
                statistics.median(ttft["worker"])),
            Row("worker: answer latency p50 (in process vs worker)", "s", statistics.median(seconds["local"]),
                statistics.median(seconds["worker"]))]
    speeds = {}
    for kernels in ("fast", "safe"):
        llm = LocalLLM(replace(spec, kernels=kernels))
        try:
            speeds[kernels] = _llm_speed(settings, llm)
        finally:
            llm.close()
    return rows + [Row("kernels: LLM prompt processing (fast vs safe)", "tokens/s", speeds["fast"]["prompt_tps"],
                       speeds["safe"]["prompt_tps"]),
                   Row("kernels: LLM generation (fast vs safe)", "tokens/s", speeds["fast"]["gen_tps"],
                       speeds["safe"]["gen_tps"])]
