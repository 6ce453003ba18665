"""`rag serve --ray ADDRESS --replicas N`: the answer pipeline on Ray Serve.

Three deployments behind one HTTP proxy (on the head node):

- ``Gateway``: the OpenAI-compatible ingress, ``POST /v1/chat/completions`` (streamed or
  not), ``GET /v1/models`` and ``GET /health``, speaking the wire format of ``rag.api_format``
  (the same requests, completions, chunks and errors as ``rag serve``);
- ``Answerer`` × N: one LLM each (``max_replicas_per_node=1``: one per node), running the
  answer pipeline of ``rag.engine`` (rewrite, looks, verification) unchanged, with its
  retrieval done by a call to
- ``Passages``: the embedder and the store (Milvus for a cluster; FAISS works on one machine).

Each answer carries the Ray node id of the replica that wrote it (header ``X-Rag-Node``).
"""

# No `from __future__ import annotations`: FastAPI reads the routes' annotations (Request) at run time.

import asyncio
import hmac
import json
import logging
import threading
import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from ray import serve
from ray.serve.handle import DeploymentHandle

from .. import api_format as wire
from ..api import _failure, check_exposure
from ..config import Settings
from ..engine import Engine
from ..errors import IndexStoreError, InputError
from ..retrieve import Retriever

log = logging.getLogger(__name__)


def _settings(payload: str) -> Settings:
    return Settings(**json.loads(payload))


def _node() -> str:
    import ray

    return ray.get_runtime_context().get_node_id()


@serve.deployment(ray_actor_options={"num_cpus": 0.1})
class Passages:
    """Retrieval for every answerer: the embedder and the store, loaded once."""

    def __init__(self, settings: str) -> None:
        from ..models import get_embedder
        from ..store import sync

        s = _settings(settings)
        embedder = get_embedder(s)
        if s.vector_store == "milvus":  # indexed by `rag index [--ray]`; opened, not re-synced
            from ..store.milvus import MilvusStore
            from ..store.milvus_sync import build_settings

            store = MilvusStore(s, build_settings(s, embedder.name, embedder.dim))
            if store.built_with() != store.build:
                raise IndexStoreError(f"The Milvus collection {store.name} at {store.directory} is missing or was "
                                      "built with other settings: run `rag index --ray ADDRESS` first.")
        else:
            store = sync(s, embedder)
        self.retriever = Retriever(store, embedder)

    def search(self, args: tuple) -> list:
        return self.retriever.search(*args)

    def article(self, doc_id: str) -> str:
        return self.retriever.article(doc_id)

    def docs(self) -> dict:
        return dict(self.retriever.store.docs)

    def stats(self) -> dict:
        return {"documents": len(self.retriever.store.docs), "chunks": len(self.retriever.store), "node": _node()}


class _RemoteRetriever:
    """What the answer steps use of a Retriever, answered by the Passages deployment."""

    def __init__(self, handle: DeploymentHandle) -> None:
        self.handle = handle

    def search(self, *args: Any) -> list:
        return self.handle.search.remote(args).result()

    def article(self, doc_id: str) -> str:
        return self.handle.article.remote(doc_id).result()


class _RemoteIndex:
    """The articles' metadata the answer steps read (outlets, dates), fetched from Passages."""

    def __init__(self, handle: DeploymentHandle) -> None:
        self.docs = handle.docs.remote().result()

    def meta(self, doc_id: str):  # noqa: ANN201 (ArticleMeta)
        return self.docs[doc_id].meta


class ReplicaEngine(Engine):
    """``rag.engine.Engine`` with its own LLM and a remote retriever; the corpus is indexed
    by `rag index`, so it never re-syncs; the articles' metadata is fetched again when older
    than ``DOCS_TTL_S``."""

    DOCS_TTL_S = 60.0

    def __init__(self, settings: Settings, passages: DeploymentHandle) -> None:  # noqa: D107 (no super(): no index here)
        from ..models import get_llm

        self.settings = settings
        self.llm = get_llm(settings)
        self.embedder = None
        self.passages = passages
        self.retriever = _RemoteRetriever(passages)  # type: ignore[assignment]
        self._lock = threading.Lock()
        self.index = None  # fetched by the first question's refresh(), off the replica's event loop
        self._fetched = -self.DOCS_TTL_S

    def refresh(self, force: bool = False):  # type: ignore[override]  # noqa: ANN201
        with self._lock:
            if force or time.monotonic() - self._fetched > self.DOCS_TTL_S:
                self.index = _RemoteIndex(self.passages)  # type: ignore[assignment]
                self._fetched = time.monotonic()
            return self.index


# 0.8 CPU: one answerer per node, beside the 0.1 each of Gateway and Passages on a one-CPU node.
# One answer at a time per replica (its LLM answers one at a time anyway): the others wait in
# the router, which gives each to the first replica free.
@serve.deployment(ray_actor_options={"num_cpus": 0.8}, max_replicas_per_node=1, max_ongoing_requests=1)
class Answerer:
    """One LLM (in its supervised worker process) and the answer pipeline."""

    def __init__(self, settings: str, passages: DeploymentHandle) -> None:
        import os

        self.engine = ReplicaEngine(_settings(settings), passages)
        self.node = f"{_node()}"
        self.replica = f"{self.node[:8]}/{os.getpid()}"

    async def answer(self, question: str, history: list, temperature: float | None) -> tuple[Any, str, str]:
        # In a thread: the pipeline blocks on the model and on the Passages calls.
        answer = await asyncio.to_thread(self.engine.ask, question, history, temperature=temperature)
        return answer, self.node, self.replica


app = FastAPI(title="rag", docs_url=None, redoc_url=None, openapi_url=None)  # no /docs: it loads scripts online


@serve.deployment(ray_actor_options={"num_cpus": 0.1})
@serve.ingress(app)
class Gateway:
    def __init__(self, settings: str, answerer: DeploymentHandle, passages: DeploymentHandle) -> None:
        self.settings = _settings(settings)
        # Not the replica on the gateway's own node first (Serve's default): the least busy one.
        self.answerer, self.passages = answerer.options(_prefer_local_routing=False), passages
        self.started = int(time.time())

    def _authorized(self, request: Request) -> bool:
        key = self.settings.api_key
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        return key is None or (scheme.lower() == "bearer" and
                               hmac.compare_digest(token.strip().encode(), key.get_secret_value().encode()))

    @app.get("/health")
    async def health(self) -> JSONResponse:
        return JSONResponse({"status": "ok", **await self.passages.stats.remote()})

    @app.get("/v1/models")
    async def models(self, request: Request) -> JSONResponse:
        if not self._authorized(request):
            return JSONResponse(wire.error_body("Missing or wrong API key.", "invalid_request_error",
                                                "invalid_api_key"), 401)
        return JSONResponse(wire.models_list(self.started))

    @app.post("/v1/chat/completions")
    async def chat_completions(self, request: Request) -> Any:
        if not self._authorized(request):
            return JSONResponse(wire.error_body("Missing or wrong API key: send it as the header 'Authorization: "
                                                "Bearer KEY'.", "invalid_request_error", "invalid_api_key"), 401)
        try:
            chat = wire.parse_chat(await request.body())
            answer, node, replica = await self.answerer.answer.remote(chat.question, chat.history, chat.temperature)
        except Exception as exc:  # noqa: BLE001 (each becomes an OpenAI error, never a traceback)
            cause = getattr(exc, "cause", None)  # a replica's exception arrives wrapped by Ray
            status, message, type_, code = _failure(cause if isinstance(cause, Exception) else exc)
            return JSONResponse(wire.error_body(message, type_, code), status)
        headers = {"X-Rag-Node": node, "X-Rag-Replica": replica}
        if not chat.stream:
            return JSONResponse(wire.completion(answer, wire.new_id()), headers=headers)
        cid, created = wire.new_id(), int(time.time())
        events = [wire.chunk(cid, created, {"role": "assistant", "content": ""}),
                  *wire.answer_chunks(answer, cid, created), "[DONE]"]
        return StreamingResponse(iter([wire.sse(e) for e in events]), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", **headers})


def application(settings: Settings, replicas: int):
    """The Serve application: Gateway → Answerer × ``replicas`` → Passages."""
    payload = json.dumps({**settings.model_dump(mode="json", exclude={"api_key"}),
                          **({"api_key": settings.api_key.get_secret_value()} if settings.api_key else {})})
    passages = Passages.bind(payload)
    answerer = Answerer.options(num_replicas=replicas).bind(payload, passages)
    return Gateway.bind(payload, answerer, passages)


def start(settings: Settings, address: str, replicas: int, timeout_s: float = 600) -> str:
    """Deploy on the Ray cluster at ``address`` (HTTP on the head node at RAG_API_HOST:RAG_API_PORT);
    returns the base URL once every replica is up."""
    import ray

    check_exposure(settings)
    if replicas < 1:
        raise InputError(f"--replicas {replicas}: give at least 1.")
    ray.init(address=address, log_to_driver=False, ignore_reinit_error=True)
    serve.start(proxy_location="HeadOnly", http_options={"host": settings.api_host, "port": settings.api_port})
    serve.run(application(settings, replicas), name="rag", route_prefix="/", blocking=False)
    deadline = time.monotonic() + timeout_s
    while serve.status().applications["rag"].status != "RUNNING":
        if serve.status().applications["rag"].status in ("DEPLOY_FAILED", "UNHEALTHY") or time.monotonic() > deadline:
            raise IndexStoreError(f"The Ray Serve application did not start: {serve.status().applications['rag']}")
        time.sleep(1)
    return f"http://{settings.api_host}:{settings.api_port}"


def serve_forever(settings: Settings, address: str, replicas: int) -> None:
    url = start(settings, address, replicas)
    print(f"Serving {url}/v1/chat/completions with {replicas} answering replica(s) on Ray; Ctrl-C stops it.")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        serve.shutdown()
