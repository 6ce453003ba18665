"""Bring a Milvus collection up to date with the corpus, as ``rag.index.sync`` does for
FAISS: unchanged articles (same fingerprint) are left alone, new or edited ones are
chunked, embedded and upserted, removed ones deleted. A collection built with other
settings (embedder, chunking, cleaning rules) is dropped and rebuilt, with a warning.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np

from ..chunking import chunk_document
from ..index import DocInfo
from ..ingest import CLEANING_VERSION, Document, load_corpus
from .milvus import MilvusStore, rows

if TYPE_CHECKING:
    from ..config import Settings
    from ..embedding import Embedder

log = logging.getLogger(__name__)

BATCH_ROWS = 512  # rows per upsert call


def build_settings(settings: Settings, embedder_name: str, dim: int) -> dict:
    """What the vectors and chunks depend on: a collection built otherwise is rebuilt."""
    return {"embedder": embedder_name, "dim": dim, "chunk_size": settings.chunk_size,
            "chunk_overlap": settings.chunk_overlap, "cleaning": CLEANING_VERSION}


def open_milvus(settings: Settings, embedder_name: str, dim: int) -> MilvusStore:
    """The collection, created if missing and recreated if built with other settings."""
    wanted = build_settings(settings, embedder_name, dim)
    store = MilvusStore(settings, wanted)
    found = store.built_with()
    if found is not None and found != wanted:
        log.warning("Milvus collection %s at %s was built with %s; now %s. Rebuilding it.",
                    store.name, store.directory, found, wanted)
        store.drop()
        found = None
    if found is None:
        store.create(dim)
    return store


def sync_milvus(settings: Settings, embedder: Embedder, progress: bool = False,
                docs: list[Document] | None = None) -> MilvusStore:
    if docs is None:
        docs = load_corpus(settings.corpus_dir)
    store = open_milvus(settings, embedder.name, embedder.dim)
    old = store.docs
    current = {d.doc_id: d for d in docs}
    changed = [d for i, d in current.items() if i not in old or old[i].fingerprint != d.fingerprint]
    removed = set(old) - set(current)
    if not changed and not removed:
        return store
    chunks = [chunk_document(d, settings.chunk_size, settings.chunk_overlap) for d in changed]
    flat = [c for cs in chunks for c in cs]
    log.info("Embedding %d chunks from %d new or changed documents.", len(flat), len(changed))
    vectors = embedder.embed([c.text for c in flat], progress=progress)
    batch: list[dict] = []
    counts: dict[str, int] = {}
    at = 0
    for doc, cs in zip(changed, chunks):
        batch += rows(DocInfo.of(doc, len(cs)), cs, vectors[at:at + len(cs)] if cs else np.zeros((0, embedder.dim)))
        counts[doc.doc_id] = len(cs)
        at += len(cs)
        if len(batch) >= BATCH_ROWS:
            store.upsert_rows(batch, counts)
            batch, counts = [], {}
    store.upsert_rows(batch, counts)
    store.delete(removed)
    log.info("Milvus collection %s at %s: %d documents (%d re-embedded, %d removed).",
             store.name, store.directory, len(current), len(changed), len(removed))
    return store
