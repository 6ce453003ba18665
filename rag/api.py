"""`rag serve`: an OpenAI-compatible HTTP API over the engine, for chat tools and scripts.

``create_api(settings)`` returns the FastAPI app without serving it; ``serve()`` binds
it with uvicorn (127.0.0.1 by default). Routes: ``POST /v1/chat/completions`` (streamed
or not), ``GET /v1/models``, ``GET /health``, ``GET /metrics`` (Prometheus text).

Streaming carries only the verified answer. Answers are checked after generation
(unsupported claims dropped, markers renumbered) and a client cannot take back text it
was sent, so the stream is: the assistant role at once, ``: keep-alive`` comments while
the answer is prepared, the verified text, a last chunk with the ``citations``, then
``data: [DONE]``. Answers run one at a time on one worker thread (the LLM uses every
core); ``api_max_queue`` bounds the requests answered or waiting.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse

from . import api_format as wire
from .api_guard import Guard, Metrics
from .config import Settings
from .errors import InputError, RagError
from .present import is_loopback

log = logging.getLogger(__name__)

KEEPALIVE_S = 5.0  # SSE comment interval while an answer is prepared (proxies drop idle streams)
RETRY_AFTER_S = 5  # told to a client turned away by a full queue: about one answer's time


class Unavailable(RagError):
    """The engine could not be loaded: every chat request says why (503)."""


class _Gone(Exception):
    """The client went away: stop answering."""


def _failure(exc: BaseException) -> tuple[int, str, str, str | None]:
    """(status, message, OpenAI error type, code) for an exception raised while answering."""
    if isinstance(exc, InputError):
        return 400, str(exc), "invalid_request_error", None
    if isinstance(exc, Unavailable):
        return 503, str(exc), "server_error", "engine_unavailable"
    if isinstance(exc, RagError):
        return 500, str(exc), "server_error", None
    log.error("Answering failed", exc_info=exc)
    return 500, f"Something went wrong while answering ({type(exc).__name__}). See the server log.", \
        "server_error", None


class Service:
    """The engine, the one thread that answers, and the count of requests admitted."""

    def __init__(self, settings: Settings, engine: Any = None) -> None:
        self.settings = settings
        self.engine = engine
        self.error: RagError | None = None
        self.metrics = Metrics(lambda: self.engine is not None)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rag-answer")
        self._lock = threading.Lock()
        self.active = 0  # chat requests answered or waiting

    def start(self) -> None:
        if self.engine is None:  # load in the background, so /health can say "loading"
            self._pool.submit(self._load)

    def stop(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _load(self) -> None:
        from .engine import get_engine

        try:
            engine = get_engine(self.settings)
            engine.llm  # noqa: B018 (loads the model now, not at the first question)
            self.engine = engine
            log.info("Ready: %d documents, %d chunks.", len(engine.index.docs), len(engine.retriever.store))
        except Exception as exc:  # noqa: BLE001 (any failure is reported by /health and each request)
            log.error("The engine could not be loaded: %s", exc, exc_info=not isinstance(exc, RagError))
            self.error = Unavailable(f"The answering engine could not start: {exc}")

    def authorized(self, request: Request) -> bool:
        key = self.settings.api_key
        if key is None:
            return True
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(),
                                                                  key.get_secret_value().encode())

    def admit(self) -> bool:
        with self._lock:
            if self.active >= self.settings.api_max_queue:
                return False
            self.active += 1
            self.metrics.queue.set(self.active)
            return True

    def _release(self, _: Future | None = None) -> None:
        with self._lock:
            self.active -= 1
            self.metrics.queue.set(self.active)

    def submit(self, chat: wire.Chat, cancel: threading.Event) -> Future:
        """Queue the answer (the slot taken by ``admit`` is freed when it is done or dropped)."""
        try:
            future = self._pool.submit(self._answer, chat, cancel)
        except RuntimeError:  # shutting down
            self._release()
            raise Unavailable("The server is shutting down.") from None
        future.add_done_callback(self._release)
        return future

    def _answer(self, chat: wire.Chat, cancel: threading.Event) -> Any:
        outcome = "error"
        try:
            if self.engine is None:
                raise self.error or Unavailable("The answering engine is not loaded.")
            if cancel.is_set():
                raise _Gone
            stream = self.engine.ask(chat.question, history=chat.history, stream=True,
                                     temperature=chat.temperature)
            try:
                for _ in stream:  # raw deltas are never sent: only the verified answer is
                    if cancel.is_set():
                        raise _Gone
            finally:
                stream.close()  # frees the model at once if the client went away
            outcome = "declined" if stream.answer.declined else "answered"
            return stream.answer
        except _Gone:
            outcome = "cancelled"
            raise
        finally:
            self.metrics.answers.labels(outcome).inc()


def _error(status: int, message: str, type_: str, code: str | None = None,
           headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(wire.error_body(message, type_, code), status, headers)


def create_api(settings: Settings, engine: Any = None, keepalive_s: float = KEEPALIVE_S) -> FastAPI:
    """The API for ``settings``, not yet serving. ``engine`` (e.g. one with a fake LLM in
    tests) replaces the process-wide one, which otherwise loads in the background at startup."""
    service = Service(settings, engine)
    started = int(time.time())

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        service.start()
        yield
        service.stop()

    # No /docs: Swagger UI loads its scripts from the internet.
    app = FastAPI(title="rag", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(Guard, metrics=service.metrics, max_body=settings.api_max_body_bytes)
    app.state.service = service
    unauthorized = ("Missing or wrong API key: send it as the header 'Authorization: Bearer KEY' "
                    "(the server's RAG_API_KEY).", "invalid_request_error", "invalid_api_key")

    @app.get("/health")
    async def health() -> JSONResponse:
        return _health(service)

    @app.get("/metrics")
    async def metrics() -> PlainTextResponse:
        body, content_type = service.metrics.render()
        return PlainTextResponse(body, media_type=content_type)

    @app.get("/v1/models")
    async def models(request: Request) -> JSONResponse:
        if not service.authorized(request):
            return _error(401, *unauthorized)
        return JSONResponse(wire.models_list(started))

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Any:
        if not service.authorized(request):
            return _error(401, *unauthorized)
        return await _chat(service, await request.body(), keepalive_s)

    return app


def _health(service: Service) -> JSONResponse:
    if service.engine is not None:
        index = service.engine.index
        return JSONResponse({"status": "ok", "documents": len(index.docs), "chunks": len(service.engine.retriever.store),
                             "queue": service.active})
    if service.error is not None:
        return JSONResponse({"status": "error", "error": str(service.error)}, 503)
    return JSONResponse({"status": "loading"}, 503)


async def _chat(service: Service, body: bytes, keepalive_s: float) -> Any:
    """A chat completion: the request read, admitted to the queue, answered (streamed as
    server-sent events or as one JSON object); every failure an OpenAI-style error."""
    try:
        chat = wire.parse_chat(body)
    except InputError as exc:
        return _error(400, str(exc), "invalid_request_error")
    if not service.admit():
        return _error(503, f"The server is busy: {service.settings.api_max_queue} requests are being answered or "
                      f"waiting. Retry in {RETRY_AFTER_S} seconds.", "server_error", "queue_full",
                      {"Retry-After": str(RETRY_AFTER_S)})
    cancel = threading.Event()
    try:
        future = service.submit(chat, cancel)
    except Unavailable as exc:
        return _error(*_failure(exc))
    if chat.stream:
        return StreamingResponse(_events(future, cancel, keepalive_s), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    try:
        answer = await asyncio.wrap_future(future)
    except Exception as exc:  # noqa: BLE001 (each becomes an OpenAI error, never a traceback)
        return _error(*_failure(exc))
    finally:
        cancel.set()
    return JSONResponse(wire.completion(answer, wire.new_id()))


async def _events(future: Future, cancel: threading.Event, keepalive_s: float):
    """The SSE body of a streamed answer (see the module docstring)."""
    cid, created = wire.new_id(), int(time.time())
    waiting = asyncio.wrap_future(future)
    try:
        yield wire.sse(wire.chunk(cid, created, {"role": "assistant", "content": ""}))
        while not (await asyncio.wait({waiting}, timeout=keepalive_s))[0]:
            yield ": keep-alive\n\n"
        try:
            answer = waiting.result()
        except Exception as exc:  # noqa: BLE001 (the status is sent: the error travels as an event)
            status, message, type_, code = _failure(exc)
            yield wire.sse(wire.error_body(message, type_, code or str(status)))
            return
        for part in wire.answer_chunks(answer, cid, created):
            yield wire.sse(part)
        yield wire.sse("[DONE]")
    finally:  # also when the client went away: stop the answer, or drop it from the queue
        cancel.set()
        waiting.cancel()


def check_exposure(settings: Settings) -> None:
    """Refuse to listen beyond this machine without a key, unless explicitly allowed."""
    if not is_loopback(settings.api_host) and settings.api_key is None and not settings.api_allow_public:
        raise RagError(f"Refusing to serve the API on address {settings.api_host} without a key: anyone who can "
                       "reach it could ask questions and read the articles. Set RAG_API_KEY (clients send it as "
                       "'Authorization: Bearer KEY'), or set RAG_API_ALLOW_PUBLIC=1 if that is really what you want.")


def api_settings(settings: Settings, host: str | None = None, port: int | None = None, api_key: str | None = None,
                 allow_public: bool | None = None) -> Settings:
    """``settings`` with the options given here (None: keep the setting or RAG_API_* variable)."""
    if port is not None and not 0 < port < 65536:
        raise InputError(f"Port {port} is not a port number: give one from 1 to 65535.")
    given = {"api_host": host, "api_port": port, "api_key": api_key, "api_allow_public": allow_public}
    update = {k: v for k, v in given.items() if v is not None}
    return Settings(**{**dict(settings), **update}) if update else settings


def serve(settings: Settings, host: str | None = None, port: int | None = None, api_key: str | None = None,
          allow_public: bool | None = None) -> None:
    """Serve the API until stopped (Ctrl-C). The engine loads in the background meanwhile."""
    import uvicorn

    settings = api_settings(settings, host, port, api_key, allow_public)
    check_exposure(settings)
    uvicorn.run(create_api(settings), host=settings.api_host, port=settings.api_port, log_level="info",
                timeout_graceful_shutdown=10)


@contextmanager
def running(app: FastAPI, timeout_s: float = 60.0) -> Iterator[str]:
    """Serve ``app`` on a free port of 127.0.0.1 in a background thread until the block
    ends (tests, `rag bench`); yields its base URL. Starting and stopping are bounded."""
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=5))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="rag-api-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout_s
    try:
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("The API server did not start.")
            time.sleep(0.01)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout_s)
        sock.close()
        if thread.is_alive():
            raise RuntimeError(f"The API server did not stop within {timeout_s:.0f} s.")
