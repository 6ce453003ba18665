"""`rag bench`'s rows for the HTTP API: what a client of `rag serve` waits, and what HTTP adds.

Run in the benchmark's process with the real engine; see ``measure_api``.
"""

from __future__ import annotations

import json
import statistics
import time

from .config import Settings


class _Timed:
    """The engine, timing each ask() from its call until its answer is verified."""

    def __init__(self, engine) -> None:
        self.engine, self.spans = engine, []

    def __getattr__(self, name: str):
        return getattr(self.engine, name)

    def ask(self, *args, **kwargs):
        from .answer import AnswerStream

        t0 = time.perf_counter()
        inner = self.engine.ask(*args, **kwargs)
        deltas = list(inner)  # the API sends only the verified answer, so nothing is held back
        self.spans.append(time.perf_counter() - t0)
        out = AnswerStream(iter(deltas))
        out.answer = inner.answer
        return out


def measure_api(settings: Settings, questions: list[str]) -> dict[str, float]:
    """The HTTP API (a real uvicorn server on 127.0.0.1, in this process, on the same engine):
    seconds to the first content chunk of a streamed answer (the verified text, so about the
    whole answer's time) beside ask() called directly on the same questions (the two in
    turns, each first every other question), and the API's overhead: a request's time at
    the client less its own ask() inside the server, so the machine's load, which varies
    between two runs of a question, cancels out. The LLM's KV cache is cleared before each
    answer, so no answer reuses another's prompt."""
    import httpx

    from .engine import get_engine
    from .api import create_api, running

    engine = _Timed(get_engine(settings))
    cold = getattr(engine.llm, "reset", lambda: None)
    headers = {"Authorization": f"Bearer {settings.api_key.get_secret_value()}"} if settings.api_key else {}
    direct, first, overhead = [], [], []
    with running(create_api(settings, engine=engine)) as url, httpx.Client(timeout=600, headers=headers) as http:

        def by_http(q: str) -> None:
            cold()
            t0, ttfc = time.perf_counter(), None
            body = {"model": "rag", "messages": [{"role": "user", "content": q}], "stream": True}
            with http.stream("POST", f"{url}/v1/chat/completions", json=body) as response:
                response.raise_for_status()
                for line in response.iter_lines():
                    if ttfc is None and line.startswith("data: {") and \
                            json.loads(line[6:])["choices"][0]["delta"].get("content"):
                        ttfc = time.perf_counter() - t0
                    if line == "data: [DONE]":
                        break
            total = time.perf_counter() - t0
            first.append(ttfc if ttfc is not None else total)
            overhead.append((total - engine.spans[-1]) * 1000)

        def by_call(q: str) -> None:
            cold()
            t0 = time.perf_counter()
            engine.engine.ask(q)
            direct.append(time.perf_counter() - t0)

        engine.engine.ask(questions[0])  # weights paged in: cold start is its own row
        http.post(f"{url}/v1/chat/completions", json={"messages": [{"role": "user", "content": ""}]})  # 400, warm
        for i, q in enumerate(questions):
            for run in ((by_call, by_http) if i % 2 == 0 else (by_http, by_call)):
                run(q)
    return {"first": statistics.median(first), "direct": statistics.median(direct),
            "overhead": statistics.median(overhead)}


def api_questions(limit: int) -> list[str]:
    from .evaluate import load_items

    return [item.question for item in load_items() if not item.history][:limit]
