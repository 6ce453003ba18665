"""Where the passages live and how they are searched: one small protocol, two backends.

``FaissStore`` (the default, embedded): the FAISS index and chunk store of ``rag.index``
on local disk, with BM25 (bm25s) held in memory. ``MilvusStore`` (``RAG_VECTOR_STORE=milvus``):
a Milvus collection, either Milvus Lite in a local folder or a Milvus server, with the
dense vectors and Milvus's own BM25 full-text search side by side.

Both honour a ``Filter`` (documents, outlets, publication dates) before ranking, so
``n`` hits still come from the admitted articles. Fusion, quotas and merging stay in
``rag.retrieve.Retriever``, which sees only this protocol.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from ..ingest import ArticleMeta

if TYPE_CHECKING:
    from ..chunking import Chunk
    from ..config import Settings
    from ..embedding import Embedder
    from ..index import DocInfo
    from ..ingest import Document

Key = Hashable  # a chunk's id in its store: a row number (FAISS) or "doc_id#ordinal" (Milvus)
Hit = tuple[Key, float]  # (key, score), best first


@dataclass(frozen=True)
class Filter:
    """Which articles a search may return: by document, outlet and publication date.
    None means no restriction; an article without a known date never passes a date bound."""

    doc_ids: frozenset[str] | None = None
    sources: frozenset[str] | None = None  # outlet names, compared without case
    since: date | None = None  # published on or after
    until: date | None = None  # published on or before

    def __bool__(self) -> bool:
        return any(v is not None for v in (self.doc_ids, self.sources, self.since, self.until))

    def admits(self, doc_id: str, meta: ArticleMeta) -> bool:
        if self.doc_ids is not None and doc_id not in self.doc_ids:
            return False
        if self.sources is not None and (meta.source or "").casefold() not in {s.casefold() for s in self.sources}:
            return False
        if self.since or self.until:
            if meta.published is None:
                return False
            if (self.since and meta.published < self.since) or (self.until and meta.published > self.until):
                return False
        return True


class Store(Protocol):
    """A searchable set of chunks with their vectors and their articles' metadata."""

    chunk_size: int  # the chunking the store was built with (merged passages stay under twice this)

    def __len__(self) -> int: ...  # chunks held

    @property
    def docs(self) -> Mapping[str, DocInfo]: ...

    def doc(self, doc_id: str) -> DocInfo: ...

    def source_path(self, doc_id: str) -> Path: ...

    def dense(self, vector: np.ndarray, n: int, where: Filter | None) -> list[Hit]:
        """The ``n`` chunks nearest ``vector`` (inner product = cosine) among those ``where`` admits."""

    def lexical(self, text: str, n: int, where: Filter | None) -> list[Hit]:
        """The ``n`` best BM25 matches for ``text`` (score > 0) among those ``where`` admits."""

    def chunks(self, keys: Iterable[Key]) -> dict[Key, Chunk]: ...

    def vectors(self, keys: list[Key]) -> np.ndarray: ...

    def article(self, doc_id: str) -> str:
        """The indexed text of a whole document (its chunks joined; overlaps repeat)."""

    def upsert(self, info: DocInfo, chunks: list[Chunk], vectors: np.ndarray) -> None:
        """Put a document's chunks in, replacing whatever it had before."""

    def delete(self, doc_ids: Iterable[str]) -> None: ...


def sync(settings: Settings, embedder: Embedder, progress: bool = False, docs: list[Document] | None = None):
    """Bring the configured store up to date with the corpus (only changed articles are
    re-embedded) and return it: an ``Index`` for FAISS, a ``MilvusStore`` for Milvus."""
    if settings.vector_store == "milvus":
        from .milvus_sync import sync_milvus

        return sync_milvus(settings, embedder, progress, docs)
    from ..index import sync as sync_faiss

    return sync_faiss(settings, embedder, progress, docs)


def as_store(index) -> Store:  # noqa: ANN001 (an Index or a Store)
    """A Store for what ``sync`` returned: the FAISS ``Index`` gets its BM25 side built here."""
    from ..index import Index

    if isinstance(index, Index):
        from .faiss import FaissStore

        return FaissStore(index)
    return index
