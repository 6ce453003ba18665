"""The chunks in a Milvus collection: dense vectors and Milvus's own BM25 full-text search.

``RAG_MILVUS_URI`` is a local path ending in ``.db`` (Milvus Lite: embedded, a folder,
one process at a time) or a server address (``http://host:19530``); the code is the same.

One row per chunk, primary key ``doc_id#ordinal``, so re-indexing an article overwrites
its rows (and drops those past its new last chunk). A row holds the chunk, its vector,
its BM25 terms (``terms``: the analyzed words of ``rag.store.lexical`` joined by spaces, so
Milvus's analyzer only splits on spaces and BM25 scores the same terms as bm25s does; a
BM25 Function turns them into the ``sparse`` field), the article's metadata as JSON, and
two scalar fields filters run on: ``source_key`` (the outlet, case-folded) and
``published_day`` (days since 0001-01-01, 0 when unknown). The build settings (embedder,
chunking, cleaning rules) are a collection property; a collection built otherwise is
rebuilt. Needs ``pymilvus`` (``pip install -e '.[cluster]'``; Lite also ``milvus-lite``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..chunking import Chunk
from ..errors import IndexStoreError
from ..index import DocInfo
from ..ingest import ArticleMeta
from . import Filter, Hit, lexical

if TYPE_CHECKING:
    from ..config import Settings

log = logging.getLogger(__name__)

BUILD = "rag.build"  # the collection property holding the build settings
BM25 = {"bm25_k1": 1.5, "bm25_b": 0.75}  # bm25s's defaults, so both stores rank alike
_CHUNK_FIELDS = ["doc_id", "ordinal", "start", "end", "page", "text"]
_MAX_IN = 16_384  # keys per get/IN expression


def milvus_uri(settings: Settings) -> str:
    """The address pymilvus connects to: a server URL as given; a Lite path made absolute."""
    uri = settings.milvus_uri or str(settings.index_dir / "milvus.db")
    if "://" in uri:
        return uri
    if not uri.endswith(".db"):
        raise IndexStoreError(f"RAG_MILVUS_URI={uri!r} is neither a server address (http://host:19530) nor a "
                              "Milvus Lite path ending in .db. Give one of those.")
    path = Path(uri) if Path(uri).is_absolute() else Path.cwd() / uri
    path.parent.mkdir(parents=True, exist_ok=True)
    return str(path)


def client(settings: Settings):
    try:
        from pymilvus import MilvusClient
    except ImportError as exc:
        raise IndexStoreError("RAG_VECTOR_STORE=milvus needs pymilvus: pip install -e '.[cluster]'.") from exc
    uri = milvus_uri(settings)
    if "://" not in uri:
        # Milvus Lite's server runs in this process and lacks AllocTimestamp: pymilvus falls back to a
        # client-side timestamp, and both log it (a traceback, a warning) on every iterator and index build.
        logging.getLogger("grpc._server").setLevel(logging.CRITICAL)
        logging.getLogger("pymilvus.client.iterator.query_iterator").setLevel(logging.ERROR)
    try:
        return MilvusClient(uri=uri, timeout=60)
    except Exception as exc:  # pymilvus raises MilvusException, or ConnectionError for an unreachable server
        raise IndexStoreError(f"Could not open Milvus at {uri}: {exc}. Is the server running (or, for a .db "
                              "path, is milvus-lite installed and no other process using that folder)?") from exc


def expression(where: Filter | None) -> str:
    """``where`` as a Milvus filter expression ('' admits everything)."""
    if not where:
        return ""
    terms = []
    if where.doc_ids is not None:
        terms.append(f"doc_id in {json.dumps(sorted(where.doc_ids))}")
    if where.sources is not None:
        terms.append(f"source_key in {json.dumps(sorted({s.casefold() for s in where.sources}))}")
    if where.since or where.until:
        terms.append("published_day > 0")  # an article without a known date never passes a date bound
        if where.since:
            terms.append(f"published_day >= {where.since.toordinal()}")
        if where.until:
            terms.append(f"published_day <= {where.until.toordinal()}")
    return " and ".join(terms)


def rows(info: DocInfo, chunks: list[Chunk], vectors: np.ndarray) -> list[dict]:
    """The rows of one article, ready for ``upsert``."""
    meta = info.meta
    day = meta.published.toordinal() if meta.published else 0
    doc = json.dumps(info.__dict__, ensure_ascii=False)
    return [{"pk": c.chunk_id, "doc_id": c.doc_id, "ordinal": c.ordinal, "start": c.start, "end": c.end,
             "page": -1 if c.page is None else c.page, "text": c.text, "terms": terms,
             "dense": v.astype(np.float32).tolist(), "source_key": (meta.source or "").casefold(),
             "published_day": day, "doc": doc}
            for c, v, terms in zip(chunks, vectors, lexical.analyzed([c.text for c in chunks]))]


def _remember(cache: dict, key: str, value: object, most: int = 4096) -> None:
    if len(cache) >= most:
        cache.pop(next(iter(cache)))  # the oldest
    cache[key] = value


def _chunk(row: dict) -> Chunk:
    return Chunk(row["doc_id"], int(row["ordinal"]), int(row["start"]), int(row["end"]), row["text"],
                 None if row["page"] < 0 else int(row["page"]))


class MilvusStore:
    """A ``Store`` over one Milvus collection (see the module docstring)."""

    def __init__(self, settings: Settings, build: dict) -> None:
        self.settings = settings
        self.name = settings.milvus_collection
        self.corpus_dir = settings.corpus_dir
        self.directory = milvus_uri(settings)  # where it lives, as `rag index` reports it
        self.client = client(settings)
        self.build = build
        self.chunk_size = int(build["chunk_size"])
        self.fuse_on_server = settings.milvus_fusion == "server"
        if self.fuse_on_server:
            self.hybrid = self._hybrid  # Retriever lets the store fuse when it has `hybrid`
        self._count: int | None = None
        self._docs: dict[str, DocInfo] = {}  # looked up so far (bounded, see _remember)
        self._articles: dict[str, str] = {}
        self._all: dict[str, DocInfo] | None = None

    # --- the collection -----------------------------------------------------------------

    def built_with(self) -> dict | None:
        """The build settings of the existing collection (None: there is none)."""
        if not self.client.has_collection(self.name):
            return None
        self.client.load_collection(self.name)  # a server restarted, or Lite reopened: it starts released
        return json.loads(self.client.describe_collection(self.name).get("properties", {}).get(BUILD, "null"))

    def create(self, dim: int) -> None:
        from pymilvus import DataType, Function, FunctionType, MilvusClient

        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("pk", DataType.VARCHAR, is_primary=True, max_length=1024)
        schema.add_field("doc_id", DataType.VARCHAR, max_length=1000)
        for name in ("ordinal", "start", "end", "page", "published_day"):
            schema.add_field(name, DataType.INT64)
        schema.add_field("text", DataType.VARCHAR, max_length=65_535)
        schema.add_field("terms", DataType.VARCHAR, max_length=65_535, enable_analyzer=True,
                         analyzer_params={"tokenizer": "standard"})
        schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        schema.add_field("dense", DataType.FLOAT_VECTOR, dim=dim)
        schema.add_field("source_key", DataType.VARCHAR, max_length=1000)
        schema.add_field("doc", DataType.VARCHAR, max_length=65_535)
        schema.add_function(Function(name="bm25", function_type=FunctionType.BM25, input_field_names=["terms"],
                                     output_field_names=["sparse"]))
        index = self.client.prepare_index_params()
        index.add_index(field_name="dense", index_type=self.settings.milvus_index, metric_type="IP")
        index.add_index(field_name="sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25", params=BM25)
        self.client.create_collection(self.name, schema=schema, index_params=index)
        self.client.alter_collection_properties(self.name, properties={BUILD: json.dumps(self.build)})
        self._count = 0

    def drop(self) -> None:
        self.client.drop_collection(self.name)
        self._count = None

    # --- reading ------------------------------------------------------------------------

    def __len__(self) -> int:
        if self._count is None:
            self._count = int(self.client.query(self.name, filter="", output_fields=["count(*)"])[0]["count(*)"])
        return self._count

    @property
    def docs(self) -> dict[str, DocInfo]:
        """Every article's metadata (one row per article: its first chunk's), read once per
        store and again after its own writes."""
        if self._all is None:
            self._all = self._read_docs()
        return self._all

    def meta(self, doc_id: str) -> ArticleMeta:
        return self.doc(doc_id).meta

    def _read_docs(self) -> dict[str, DocInfo]:
        found: dict[str, DocInfo] = {}
        it = self.client.query_iterator(self.name, batch_size=1000, filter="ordinal == 0", output_fields=["doc"])
        try:
            while batch := it.next():
                for row in batch:
                    info = DocInfo(**json.loads(row["doc"]))
                    found[info.doc_id] = info
        finally:
            it.close()
        return found

    def doc(self, doc_id: str) -> DocInfo:
        if doc_id not in self._docs:
            got = self.client.query(self.name, filter=f"doc_id == {json.dumps(doc_id)} and ordinal == 0",
                                    output_fields=["doc"])
            if not got:
                raise KeyError(doc_id)
            _remember(self._docs, doc_id, DocInfo(**json.loads(got[0]["doc"])))
        return self._docs[doc_id]

    def source_path(self, doc_id: str) -> Path:
        return (self.corpus_dir / self.doc(doc_id).file).resolve()

    def article(self, doc_id: str) -> str:
        if doc_id not in self._articles:
            got = self.client.query(self.name, filter=f"doc_id == {json.dumps(doc_id)}",
                                    output_fields=["ordinal", "text"])
            _remember(self._articles, doc_id, " ".join(r["text"] for r in sorted(got, key=lambda r: r["ordinal"])))
        return self._articles[doc_id]

    def _search(self, data: list, field: str, metric: str, n: int, where: Filter | None) -> list[Hit]:
        found = self.client.search(self.name, data=data, anns_field=field, limit=n, filter=expression(where),
                                   output_fields=["pk"], search_params={"metric_type": metric})
        return [(hit["pk"], float(hit["distance"])) for hit in found[0]]

    def dense(self, vector: np.ndarray, n: int, where: Filter | None) -> list[Hit]:
        return self._search([vector.astype(np.float32).tolist()], "dense", "IP", n, where)

    def lexical(self, text: str, n: int, where: Filter | None) -> list[Hit]:
        terms = lexical.analyzed([text])[0]
        if not terms:
            return []
        # A BM25 score is positive; Milvus Lite reports it negated (as a distance), a server as is.
        hits = [(k, abs(s)) for k, s in self._search([terms], "sparse", "BM25", n, where)]
        return [(k, s) for k, s in hits if s > 0]

    def _hybrid(self, vector: np.ndarray, text: str, n: int, where: Filter | None, lexical_weight: float) -> list[Hit]:
        """Both searches and their fusion in one hybrid_search (Milvus's WeightedRanker: its own
        score normalisation, arctan-based, instead of the min-max scaling of ``rag.retrieve``)."""
        from pymilvus import AnnSearchRequest, WeightedRanker

        expr = expression(where)
        requests = [AnnSearchRequest([vector.astype(np.float32).tolist()], "dense", {"metric_type": "IP"}, n, expr)]
        terms = lexical.analyzed([text])[0]
        if terms:
            requests.append(AnnSearchRequest([terms], "sparse", {"metric_type": "BM25"}, n, expr))
        ranker = WeightedRanker(1.0, lexical_weight) if terms else WeightedRanker(1.0)
        found = self.client.hybrid_search(self.name, requests, ranker, limit=n, output_fields=["pk"])
        return [(hit["pk"], float(hit["distance"])) for hit in found[0]]

    def _get(self, keys: list, fields: list[str]) -> dict:
        out = {}
        for at in range(0, len(keys), _MAX_IN):
            for row in self.client.get(self.name, ids=keys[at:at + _MAX_IN], output_fields=fields):
                out[row["pk"]] = row
        return out

    def chunks(self, keys: Iterable[str]) -> dict[str, Chunk]:
        keys = list(keys)
        got = self._get(keys, _CHUNK_FIELDS)
        return {k: _chunk(got[k]) for k in keys}

    def vectors(self, keys: list[str]) -> np.ndarray:
        got = self._get(list(keys), ["dense"])
        return np.array([got[k]["dense"] for k in keys], dtype=np.float32)

    # --- writing ------------------------------------------------------------------------

    def upsert(self, info: DocInfo, chunks: list[Chunk], vectors: np.ndarray) -> None:
        self.upsert_rows(rows(info, chunks, vectors), {info.doc_id: len(chunks)})

    def upsert_rows(self, batch: list[dict], chunk_counts: dict[str, int]) -> None:
        """Write rows (``rows()``) and drop each article's rows past its last chunk now."""
        if batch:
            self.client.upsert(self.name, batch)
        for doc_id, count in chunk_counts.items():
            self.client.delete(self.name, filter=f"doc_id == {json.dumps(doc_id)} and ordinal >= {count}")
        self._forget()

    def delete(self, doc_ids: Iterable[str]) -> None:
        ids = sorted(doc_ids)
        for at in range(0, len(ids), _MAX_IN):
            self.client.delete(self.name, filter=f"doc_id in {json.dumps(ids[at:at + _MAX_IN])}")
        self._forget()

    def _forget(self) -> None:
        self._count = None
        self._all = None
        self._docs.clear()
        self._articles.clear()

    def close(self) -> None:
        self.client.close()
