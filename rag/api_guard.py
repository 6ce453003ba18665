"""The HTTP API's gate: a request-size limit applied before parsing, and Prometheus metrics.

``Guard`` is plain ASGI middleware. It reads a request's body itself, refusing it with
413 as soon as the declared Content-Length or the bytes actually received pass the
limit (a chunked upload has no Content-Length), then hands the app the body it read.
It also counts every response by path and status and times it to its last byte.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from .api_format import error_body

PATHS = ("/v1/chat/completions", "/v1/models", "/health", "/metrics")  # others count as "other"
# Answers take seconds on a CPU; health and metrics take milliseconds.
BUCKETS = (0.005, 0.025, 0.1, 0.5, 1.0, 2.0, 3.0, 5.0, 8.0, 13.0, 20.0, 30.0, 60.0, 120.0)


class Metrics:
    """The API's metrics, in a registry of their own (one per app, so tests can run several)."""

    def __init__(self, ready: Callable[[], bool]) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("rag_api_requests", "HTTP requests by path and response status.",
                                ["path", "status"], registry=self.registry)
        self.latency = Histogram("rag_api_request_duration_seconds", "Time from request to the last byte of the "
                                 "response (for a stream, its end).", ["path"], buckets=BUCKETS, registry=self.registry)
        self.queue = Gauge("rag_api_queue_depth", "Chat requests being answered or waiting.", registry=self.registry)
        self.answers = Counter("rag_api_answers", "Answers by outcome: answered, declined, error, cancelled.",
                               ["outcome"], registry=self.registry)
        ready_gauge = Gauge("rag_api_engine_ready", "1 once the models and index are loaded.", registry=self.registry)
        ready_gauge.set_function(lambda: float(ready()))

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


async def _reply(send, status: int, message: str, code: str) -> None:
    body = json.dumps(error_body(message, "invalid_request_error", code)).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


class Guard:
    def __init__(self, app, metrics: Metrics, max_body: int) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body = max_body

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"] if scope["path"] in PATHS else "other"
        status = 500  # if the app fails before it answers
        t0 = time.perf_counter()

        async def send_and_note(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            replay = await self._read_body(scope, receive, send_and_note)
            if replay is not None:
                await self.app(scope, replay, send_and_note)
        finally:
            self.metrics.requests.labels(path, str(status)).inc()
            self.metrics.latency.labels(path).observe(time.perf_counter() - t0)

    async def _read_body(self, scope, receive, send):
        """A receive() that replays the body read here, or None once a 413 or 400 was sent."""
        too_big = (f"The request body is larger than {self.max_body:,} bytes (the server's RAG_API_MAX_BODY_BYTES): "
                   "send a shorter conversation.")
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            if not declared.strip().isdigit():
                await _reply(send, 400, f"Content-Length {declared.decode('latin-1')!r} is not a number.", "bad_length")
                return None
            if int(declared) > self.max_body:
                await _reply(send, 413, too_big, "request_too_large")
                return None
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            size += len(message.get("body", b""))
            if size > self.max_body:
                await _reply(send, 413, too_big, "request_too_large")
                return None
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body, replayed = b"".join(chunks), False

        async def replay():
            nonlocal replayed
            if replayed:
                return await receive()  # after the body: the client's disconnect, when it comes
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        return replay
