"""`rag index --ray ADDRESS`: ingestion as a Ray Data pipeline into Milvus.

read and clean articles, chunk them (tasks) → embed the chunks (an actor pool, one
embedder per actor) → upsert into Milvus in batches (actors, one client each)

Articles whose fingerprint matches the collection's are skipped; articles no longer in the
corpus folder are deleted at the end. Every row is keyed ``doc_id#ordinal``, so a re-run
(after a crash, say) overwrites rather than duplicates. Unlike ``rag index``, two files with
the same text are both indexed (``load_corpus`` drops the second): finding them needs every
file's text in one place. The corpus folder and the models must be readable on every node
(the same paths), and ``RAG_MILVUS_URI`` must be a server every node reaches.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import CorpusError, IndexStoreError

if TYPE_CHECKING:
    from ..config import Settings

log = logging.getLogger(__name__)

# Logical CPUs per unit of work. An embedder takes more than half a CPU, so two cannot share a
# one-CPU node: the pool spreads over the nodes, and the rest fits beside each embedder.
EMBED_CPUS, READ_CPUS, WRITE_CPUS = 0.6, 0.2, 0.2


@dataclass(frozen=True)
class IngestReport:
    uri: str
    documents: int  # in the corpus folder
    changed: int  # read, chunked, embedded and written
    chunks: int  # written
    removed: int
    seconds: float
    nodes: dict[str, list[str]]  # stage -> Ray node ids it ran on


def _node() -> str:
    import ray

    return ray.get_runtime_context().get_node_id()


def _settings(payload: str) -> Settings:
    from ..config import Settings

    return Settings(**json.loads(payload))


def read_and_chunk(batch: dict, settings: str, known: dict[str, str]) -> dict:
    """Files → chunk records (an article whose fingerprint is ``known`` gives none)."""
    from ..chunking import chunk_document
    from ..index import DocInfo
    from ..ingest import load_document, read_sidecar

    s = _settings(settings)
    sidecar = read_sidecar(s.corpus_dir)
    out: dict[str, list] = {k: [] for k in ("pk", "doc_id", "ordinal", "start", "end", "page", "text", "doc",
                                             "source_key", "published_day", "chunks", "read_node")}
    for path in batch["path"]:
        doc = load_document(Path(path), sidecar.get(Path(path).name, {}))
        if doc is None or known.get(doc.doc_id) == doc.fingerprint:
            continue
        chunks = chunk_document(doc, s.chunk_size, s.chunk_overlap)
        info = DocInfo.of(doc, len(chunks))
        day = doc.meta.published.toordinal() if doc.meta.published else 0
        for c in chunks:
            for key, value in (("pk", c.chunk_id), ("doc_id", c.doc_id), ("ordinal", c.ordinal), ("start", c.start),
                               ("end", c.end), ("page", -1 if c.page is None else c.page), ("text", c.text),
                               ("doc", json.dumps(info.__dict__, ensure_ascii=False)),
                               ("source_key", (doc.meta.source or "").casefold()), ("published_day", day),
                               ("chunks", len(chunks)), ("read_node", _node())):
                out[key].append(value)
    return out


class Embed:
    """One embedder per actor, loaded once from the local model files."""

    def __init__(self, settings: str) -> None:
        from ..models import get_embedder

        self.embedder = get_embedder(_settings(settings))

    def __call__(self, batch: dict) -> dict:
        batch["dense"] = self.embedder.embed([str(t) for t in batch["text"]])
        batch["embed_node"] = [_node()] * len(batch["text"])
        return batch


class Write:
    """Upserts batches of rows into the collection; drops rows past each article's last chunk."""

    def __init__(self, settings: str, build: dict) -> None:
        from ..store.milvus import MilvusStore

        self.store = MilvusStore(_settings(settings), build)

    def __call__(self, batch: dict) -> dict:
        from ..store import lexical

        texts = [str(t) for t in batch["text"]]
        rows = [{"pk": str(batch["pk"][i]), "doc_id": str(batch["doc_id"][i]), "ordinal": int(batch["ordinal"][i]),
                 "start": int(batch["start"][i]), "end": int(batch["end"][i]), "page": int(batch["page"][i]),
                 "text": texts[i], "terms": terms, "dense": [float(x) for x in batch["dense"][i]],
                 "source_key": str(batch["source_key"][i]), "published_day": int(batch["published_day"][i]),
                 "doc": str(batch["doc"][i])} for i, terms in enumerate(lexical.analyzed(texts))]
        counts = {str(d): int(n) for d, n in zip(batch["doc_id"], batch["chunks"])}
        self.store.upsert_rows(rows, counts)
        seen: dict[tuple[str, str, str], int] = {}  # (article, read on, embedded on) -> rows written
        for d, r, e in zip(batch["doc_id"], batch["read_node"], batch["embed_node"]):
            seen[(str(d), str(r), str(e))] = seen.get((str(d), str(r), str(e)), 0) + 1
        node = _node()
        return {"doc_id": [k[0] for k in seen], "read_node": [k[1] for k in seen], "embed_node": [k[2] for k in seen],
                "write_node": [node] * len(seen), "rows": list(seen.values())}


def ingest(settings: Settings, address: str, embedders: int = 2, batch_rows: int = 256) -> IngestReport:
    """Run the pipeline on the Ray cluster at ``address`` into ``settings``' Milvus collection."""
    try:
        import ray
    except ImportError as exc:
        raise IndexStoreError("rag index --ray needs Ray: pip install -e '.[cluster]'.") from exc
    from ..ingest import corpus_files
    from ..models import get_embedder
    from ..store.milvus_sync import open_milvus

    if settings.vector_store != "milvus" or "://" not in (settings.milvus_uri or ""):
        raise IndexStoreError("rag index --ray writes into a Milvus server that every node reaches: set "
                              "RAG_VECTOR_STORE=milvus and RAG_MILVUS_URI=http://host:19530.")
    files = corpus_files(settings.corpus_dir)
    if not files:
        raise CorpusError(f"Corpus folder {settings.corpus_dir} has no articles. Add some and try again.")
    started = time.perf_counter()
    embedder = get_embedder(settings)  # here too: its name and size decide whether the collection is current
    store = open_milvus(settings, embedder.name, embedder.dim)
    before = store.docs
    payload = json.dumps(settings.model_dump(mode="json", exclude={"api_key"}))
    ray.init(address=address, log_to_driver=False, ignore_reinit_error=True)
    try:
        known = {d: info.fingerprint for d, info in before.items()}
        # Every embedder is loaded before the first batch goes out, so none is left idle.
        ray.data.DataContext.get_current().wait_for_min_actors_s = 600
        ds = ray.data.from_items([{"path": str(p)} for p in files], override_num_blocks=len(files))
        ds = ds.map_batches(read_and_chunk, fn_kwargs={"settings": payload, "known": known}, batch_size=4,
                            num_cpus=READ_CPUS)
        # Small batches, one at a time per embedder, so every embedder in the pool gets some.
        pool = ray.data.ActorPoolStrategy(size=embedders, max_tasks_in_flight_per_actor=1)
        ds = ds.map_batches(Embed, fn_constructor_kwargs={"settings": payload}, batch_size=16, compute=pool,
                            num_cpus=EMBED_CPUS)
        ds = ds.map_batches(Write, fn_constructor_kwargs={"settings": payload, "build": store.build},
                            batch_size=batch_rows, compute=ray.data.ActorPoolStrategy(size=1), num_cpus=WRITE_CPUS)
        written = ds.take_all()
    finally:
        ray.shutdown()
    present = {p.stem for p in files}
    removed = set(before) - present
    store.delete(removed)
    nodes = {stage: sorted({r[f"{stage}_node"] for r in written}) for stage in ("read", "embed", "write")}
    return IngestReport(store.directory, len(present), len({r["doc_id"] for r in written}),
                        sum(r["rows"] for r in written), len(removed), time.perf_counter() - started, nodes)
