"""The embedded default store: the FAISS index and chunk store of ``rag.index`` on local
disk, and BM25 over the same chunks (bm25s), built in memory when the store opens.

Keys are row numbers. A filter becomes the set of admitted rows, applied inside the
FAISS search (an ID selector) and to BM25 hits fetched four times over.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from ..chunking import Chunk
from ..index import DocInfo, Index, _locked, build_faiss, save
from . import Filter, Hit, lexical


class FaissStore:
    def __init__(self, index: Index) -> None:
        self.index = index
        self._articles: dict[str, list[str]] = {}
        for c in index.chunks:
            self._articles.setdefault(c.doc_id, []).append(c.text)
        self._bm25 = None
        if index.chunks:
            import bm25s

            self._bm25 = bm25s.BM25()
            self._bm25.index(lexical.tokens([c.text for c in index.chunks]), show_progress=False)
        self._allowed: tuple[Filter, np.ndarray] | None = None  # the last filter's rows

    @property
    def chunk_size(self) -> int:
        return self.index.chunk_size

    def __len__(self) -> int:
        return len(self.index.chunks)

    @property
    def docs(self) -> dict[str, DocInfo]:
        return self.index.docs

    def doc(self, doc_id: str) -> DocInfo:
        return self.index.docs[doc_id]

    def source_path(self, doc_id: str) -> Path:
        return self.index.source_path(doc_id)

    def article(self, doc_id: str) -> str:
        return " ".join(self._articles.get(doc_id, []))

    def rows(self, where: Filter | None) -> np.ndarray | None:
        """The rows ``where`` admits (None: all); remembered for the next call with the same filter."""
        if not where:
            return None
        if self._allowed is None or self._allowed[0] != where:
            docs = {d for d in self.index.docs if where.admits(d, self.index.meta(d))}
            rows = np.array([i for i, c in enumerate(self.index.chunks) if c.doc_id in docs], dtype=np.int64)
            self._allowed = (where, rows)
        return self._allowed[1]

    def dense(self, vector: np.ndarray, n: int, where: Filter | None) -> list[Hit]:
        import faiss

        allowed = self.rows(where)
        if allowed is not None and not len(allowed):
            return []
        params = None if allowed is None else faiss.SearchParameters(sel=faiss.IDSelectorBatch(allowed))
        scores, ids = self.index.faiss.search(vector[None, :], n, params=params)  # type: ignore[attr-defined]
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i >= 0]  # -1 pads short results

    def lexical(self, text: str, n: int, where: Filter | None) -> list[Hit]:
        if self._bm25 is None:
            return []
        allowed = self.rows(where)
        tokens = lexical.tokens([text])
        if not tokens.vocab or (allowed is not None and not len(allowed)):
            return []
        # Ask for more than n so a filter still leaves enough.
        want = min(len(self), n * 4 if allowed is not None else n)
        ids, scores = self._bm25.retrieve(tokens, k=want, show_progress=False)
        hits = [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if s > 0]
        admitted = None if allowed is None else set(allowed.tolist())
        return [(i, s) for i, s in hits if admitted is None or i in admitted][:n]

    def chunks(self, keys: Iterable[int]) -> dict[int, Chunk]:
        return {i: self.index.chunks[i] for i in keys}

    def vectors(self, keys: list[int]) -> np.ndarray:
        return self.index.faiss.reconstruct_batch(np.array(keys, dtype=np.int64))  # type: ignore[attr-defined]

    # --- writing: the index files are rewritten whole (atomically), so batch with rag.index.sync ---

    def upsert(self, info: DocInfo, chunks: list[Chunk], vectors: np.ndarray) -> None:
        self._rewrite({info.doc_id: (info, chunks, vectors)}, set())

    def delete(self, doc_ids: Iterable[str]) -> None:
        self._rewrite({}, set(doc_ids))

    def _rewrite(self, put: dict[str, tuple[DocInfo, list[Chunk], np.ndarray]], drop: set[str]) -> None:
        from ..config import Settings

        old, rows = self.index, self.index.vectors
        with _locked(old.directory):
            by_doc: dict[str, tuple[DocInfo, list[Chunk], list[np.ndarray]]] = {
                d: (info, [], []) for d, info in old.docs.items()}
            for i, c in enumerate(old.chunks):
                by_doc[c.doc_id][1].append(c)
                by_doc[c.doc_id][2].append(rows[i])
            by_doc.update({d: (info, cs, list(vs)) for d, (info, cs, vs) in put.items()})
            keep = {d: v for d, v in sorted(by_doc.items()) if d not in drop}
            chunks = [c for _, cs, _ in keep.values() for c in cs]
            vecs = [v for _, _, vs in keep.values() for v in vs]
            dim = int(old.faiss.d)  # type: ignore[attr-defined]
            matrix = np.vstack(vecs).astype(np.float32) if vecs else np.zeros((0, dim), np.float32)
            settings = Settings(corpus_dir=old.corpus_dir, index_dir=old.directory)
            index = Index(old.directory, old.corpus_dir, old.embedder, old.chunk_size, old.chunk_overlap,
                          {d: info for d, (info, _, _) in keep.items()}, chunks, build_faiss(matrix, dim, settings),
                          old.cleaning)
            save(index)
        self.__init__(index)  # type: ignore[misc]
