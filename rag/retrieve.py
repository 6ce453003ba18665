"""Find the passages most likely to answer a question.

Dense search (cosine over sentence embeddings) finds paraphrases; BM25 finds exact
names and numbers ("Selydove", "160,000") that embeddings blur. The two are merged by
relative-score fusion (each list's scores scaled to 0..1 over its candidates, then
added), then at most ``max_per_doc`` passages per document are kept so that
disagreeing sources are all heard.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .chunking import Chunk
from .embedding import Embedder
from .ingest import ArticleMeta, read_source
from .store import Filter, Key, Store, as_store  # noqa: F401 (Filter: its home was here)
from .text import figures

_ABUT = 2  # characters of whitespace between the two halves of a sentence cut between chunks
_SENTENCE_END = re.compile(r"[.!?][\"'”’)\]]*$")

# Measured on the evaluation set (k=4): reciprocal-rank fusion recalled 0.849 of the
# answers' facts, relative-score fusion 0.887 at any lexical weight from 0.6 to 1.5.
# Rank fusion buries a passage that is near the top of one list but absent from the
# other ("upwards of 12,000 North Koreans" never says "troops"); scores keep that margin.


@dataclass(frozen=True)
class Passage:
    """A retrieved chunk with where it came from and how it scored."""

    chunk: Chunk
    title: str
    path: Path
    score: float  # fused dense + lexical score (higher is better)
    similarity: float  # cosine similarity to the question
    meta: ArticleMeta = ArticleMeta()  # the article's outlet, date, author and URL, as indexed
    copies: tuple[str, ...] = ()  # other articles carrying the same text (a wire story), by doc id

    @property
    def text(self) -> str:
        return self.chunk.text


# Two passages are copies of one (wire) story when this share of their word triples is shared
# (Jaccard). Measured 2026-12-03 over the chunks of four corpora: true copies 0.96-1.00 (the
# fixture's agency story in two outlets, two RGB snippets of one page); distinct articles at
# most 0.57 (MultiHop's "… live score, updates, highlights" pages); 0.8 sits in the gap. As a
# share of one passage's triples found in another (a copy trimmed by one outlet): true copies
# 0.94-1.00, distinct pages at most 0.75 (two RGB listings of one template, "… cast and crew
# credits, including actors …").
WIRE_COPY = 0.8
_MIN_SHINGLES = 12  # a passage shorter than this (a headline) is not credited to another article by containment


def _shingles(text: str) -> frozenset[tuple[str, ...]]:
    words = re.findall(r"\w+", text.lower())
    return frozenset(tuple(words[i:i + 3]) for i in range(max(1, len(words) - 2)))


def _copy_of(text: str, picked: list[tuple[int, frozenset, set[str]]]) -> int | None:
    """The index of a picked passage whose text this one copies, if any: nearly the same text,
    or (for a passage long enough not to be a stock phrase) text nearly all found in it, and
    no figure it lacks (an updated story that revised a count is no copy)."""
    shingles, numbers = _shingles(text), figures(text)
    for j, other, other_numbers in picked:
        shared = len(shingles & other)
        if numbers <= other_numbers and (shared >= WIRE_COPY * len(shingles | other) or (
                len(shingles) >= _MIN_SHINGLES and shared >= WIRE_COPY * len(shingles))):
            return j
    return None


# A question about a size or distance finds passages that give it in units it does not
# name: "How big is the area held?" is answered by "600 sq km".
_DIMENSION_UNITS = (
    (re.compile(r"\bhow (big|large|much)\b.*\b(area|territory|land)\b|\bwhat area\b", re.IGNORECASE),
     "square kilometres miles"),
    (re.compile(r"\bhow far\b|\bwhat distance\b", re.IGNORECASE), "kilometres miles"),
    (re.compile(r"\bhow high\b|\bwhat altitude\b", re.IGNORECASE), "altitude kilometres metres feet"),
)


def unit_words(question: str) -> str:
    """Units of the dimension the question asks about, for the lexical search."""
    return " ".join(units for pattern, units in _DIMENSION_UNITS if pattern.search(question))


class Retriever:
    def __init__(self, store: Store, embedder: Embedder) -> None:
        self.store = as_store(store)  # a FAISS Index gets its BM25 side here
        self.index = store  # what the engine synced: an Index (FAISS) or the store itself
        self.embedder = embedder
        self._texts: dict[str, str] = {}  # source files' text, read when chunks are merged
        # Each article's word triples and figures, to credit wire copies: once per article, not per
        # question (half of retrieval's time when computed per question on the bundled set).
        self._carried = functools.lru_cache(maxsize=4096)(
            lambda doc_id: (_shingles(text := self.article(doc_id)), figures(text)))

    def _merge(self, p: Passage, c: Chunk, limit: int) -> Passage | None:
        """One passage covering both, cut from the source file so its offsets stay exact;
        None if that would exceed ``limit`` characters or the file no longer matches."""
        a = p.chunk
        start, end = min(a.start, c.start), max(a.end, c.end)
        if end - start > limit:
            return None
        if a.doc_id not in self._texts:
            self._texts[a.doc_id] = read_source(p.path) or ""  # gone since indexed: the chunks stay apart
        text = self._texts[a.doc_id]
        gap = text[min(a.end, c.end):max(a.start, c.start)]  # between them, if they do not overlap
        if text[a.start:a.end] != a.text or text[c.start:c.end] != c.text or (gap and not gap.isspace()):
            return None
        first = a if a.start <= c.start else c  # its page, if a sentence runs on to the next one
        return replace(p, chunk=replace(first, ordinal=min(a.ordinal, c.ordinal), start=start, end=end,
                                        text=text[start:end]))

    def article(self, doc_id: str) -> str:
        """The indexed text of a whole document (its chunks; overlaps repeat)."""
        return self.store.article(doc_id)

    def _dense(self, vector: np.ndarray, n: int, where: Filter | None) -> list[tuple[Key, float]]:
        return self.store.dense(vector, n, where)

    def _lexical(self, query: str, n: int, where: Filter | None) -> list[tuple[Key, float]]:
        return self.store.lexical(f"{query} {unit_words(query)}", n, where)

    def search(self, queries: Sequence[str], k: int, candidates: int, max_per_doc: int,
               where: Filter | None, lexical_weight: float, figure_bonus: float = 0.0) -> list[Passage]:
        """Top ``k`` passages for the queries (several for follow-ups: the question
        alone and with its context), best first.

        ``figure_bonus`` (for questions asking how many, how far …) is added to the score
        of a passage that states a figure none of the passages taken so far states: when
        sources disagree, the 12,000 of one is worth more than a third copy of another's
        10,000."""
        if not len(self.store) or not queries:
            return []
        fused, similarity = self._candidates(queries, min(candidates, len(self.store)), where, lexical_weight)
        return self._pick(fused, similarity, k, max_per_doc, figure_bonus)

    def _candidates(self, queries: Sequence[str], n: int, where: Filter | None,
                    lexical_weight: float) -> tuple[dict[Key, float], dict[Key, float]]:
        """Fused scores and cosine similarities of the top ``n`` dense and lexical hits of each query.
        Filters apply inside each store's search, before ranking, so k passages still come from
        the allowed articles. A store may fuse the two lists itself (Milvus hybrid_search)."""
        store = self.store
        fused: dict[Key, float] = {}
        similarity: dict[Key, float] = {}
        vectors = self.embedder.embed(list(queries))
        hybrid = getattr(store, "hybrid", None)
        for query, vector in zip(queries, vectors):
            if hybrid is not None:
                for i, s in hybrid(vector, f"{query} {unit_words(query)}", n, where, lexical_weight):
                    fused[i] = fused.get(i, 0.0) + s
                continue
            dense = self._dense(vector, n, where)
            for i, s in dense:
                similarity[i] = max(similarity.get(i, -1.0), s)
            for weight, hits in ((1.0, dense), (lexical_weight, self._lexical(query, n, where))):
                for i, scaled in _scaled(hits):
                    fused[i] = fused.get(i, 0.0) + weight * scaled
        if missing := [i for i in fused if i not in similarity]:  # lexical-only hits
            for i, row in zip(missing, store.vectors(missing)):
                similarity[i] = float(max(row @ v for v in vectors))
        return fused, similarity

    def _pick(self, fused: dict[Key, float], similarity: dict[Key, float], k: int, max_per_doc: int,
              figure_bonus: float) -> list[Passage]:
        """The best candidates as passages: wire copies once, overlapping chunks and the halves
        of a cut sentence merged, at most ``max_per_doc`` per article, new figures preferred."""
        store = self.store
        chunks = store.chunks(fused)
        limit = 2 * store.chunk_size
        picked: list[Passage] = []
        per_doc: dict[str, int] = {}
        texts: list[tuple[int, frozenset, set[str]]] = []  # (index in picked, shingles, figures) of each passage taken
        figs = {i: figures(chunks[i].text) for i in fused} if figure_bonus else {}
        shown: set[str] = set()  # figures stated by the passages taken

        def worth(i: Key) -> float:
            return fused[i] + (figure_bonus if figs[i] - shown else 0.0)

        remaining = sorted(fused, key=fused.__getitem__, reverse=True)
        while remaining:
            i = max(remaining, key=worth) if figure_bonus else remaining[0]
            remaining.remove(i)
            c = chunks[i]
            if (j := _copy_of(c.text, texts)) is not None:  # a copy counts once, crediting every carrier
                if c.doc_id != picked[j].chunk.doc_id and c.doc_id not in picked[j].copies:
                    picked[j] = replace(picked[j], copies=(*picked[j].copies, c.doc_id))
                continue
            # Overlapping chunks of one article become one longer passage, so the model is
            # not shown the same sentences twice under two numbers; so do the halves of a
            # sentence too long for one chunk ("… and Major General Shin Geum Cheol, head of
            # the main" | "operational directorate."), which it would read as separate facts.
            j = next((j for j, p in enumerate(picked) if p.chunk.doc_id == c.doc_id
                      and (_overlap(p.chunk, c) or _cut_sentence(p.chunk, c))), None)
            if j is not None:
                merged = self._merge(picked[j], c, limit)
                if merged:
                    picked[j] = merged
                    shown |= figs.get(i, set())
                    continue
                if _overlap(picked[j].chunk, c):
                    continue  # overlapping but too long together: the better one stands for both
            if per_doc.get(c.doc_id, 0) >= max_per_doc:
                continue
            if len(picked) == k:
                break
            per_doc[c.doc_id] = per_doc.get(c.doc_id, 0) + 1
            shown |= figs.get(i, set())
            info = store.doc(c.doc_id)
            texts.append((len(picked), _shingles(c.text), figures(c.text)))
            picked.append(Passage(c, info.title, store.source_path(c.doc_id), fused[i], similarity[i],
                                  info.meta))
        return self._credit_copies(picked, {c.doc_id for c in chunks.values()})

    def _credit_copies(self, picked: list[Passage], candidates: set[str]) -> list[Passage]:
        """Credit each candidate article that carries a passage's text, wherever its own chunks
        were cut: a wire story's outlets trim different sentences, so the copy of a passage may
        straddle two of their chunks (measured by the passage's word triples found in the article)."""
        out = []
        for p in picked:
            own, numbers = _shingles(p.text), figures(p.text)
            if len(own) >= _MIN_SHINGLES:
                for doc_id in sorted(candidates - {p.chunk.doc_id, *p.copies}):
                    carried, its_numbers = self._carried(doc_id)
                    if numbers <= its_numbers and len(own & carried) >= WIRE_COPY * len(own):
                        p = replace(p, copies=(*p.copies, doc_id))
            out.append(p)
        return out


def _overlap(a: Chunk, b: Chunk) -> bool:
    return a.start < b.end and b.start < a.end


def _cut_sentence(a: Chunk, b: Chunk) -> bool:
    """The two chunks are the halves of a sentence too long for one chunk."""
    first, second = (a, b) if a.start < b.start else (b, a)
    return 0 <= second.start - first.end <= _ABUT and not _SENTENCE_END.search(first.text)


def _scaled(hits: list[tuple[Key, float]]) -> list[tuple[Key, float]]:
    """Scores mapped to 0..1 over the candidates (best 1, last 0), so a cosine and a
    BM25 score can be added."""
    if not hits:
        return []
    lo, hi = min(s for _, s in hits), max(s for _, s in hits)
    return [(i, (s - lo) / (hi - lo) if hi > lo else 1.0) for i, s in hits]
