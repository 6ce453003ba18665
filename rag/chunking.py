"""Split documents into overlapping, sentence-aligned chunks with exact offsets.

Chunks never cross a dropped boilerplate line, so ``doc.text[chunk.start:chunk.end]``
is always exactly ``chunk.text``: a citation can be shown and highlighted in the
original file without any re-searching.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from .ingest import Document

# Words after which a full stop does not end a sentence.
_ABBREVIATIONS = frozenset(
    """mr mrs ms dr prof gen maj col lt sgt capt cmdr adm gov sen rep st jr sr inc ltd co corp
    vs etc no nos fig approx est dept univ jan feb mar apr jun jul aug sep sept oct nov dec
    u.s u.k u.n e.g i.e d.c a.m p.m""".split()
)
_BOUNDARY = re.compile(r"[.!?…]+[\"'”’)\]]*(?=\s+[\"'“‘(\[]?[A-Z0-9])|\n+")
_WORD_BEFORE = re.compile(r"([\w.]+)[.!?…]*[\"'”’)\]]*$")


@dataclass(frozen=True)
class Chunk:
    doc_id: str
    ordinal: int  # position of the chunk within its document
    start: int  # [start, end) offsets into the document's text
    end: int
    text: str
    page: int | None = None  # 1-based page of a PDF (a chunk never spans two), None for other formats

    @property
    def chunk_id(self) -> str:
        return f"{self.doc_id}#{self.ordinal}"


def split_sentences(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Sentence spans of ``text[start:end]`` as offsets into ``text``, whitespace trimmed.

    >>> t = "Mr. Lee arrived. He left at 5 p.m. on Oct. 3! Then?"
    >>> [t[s:e] for s, e in split_sentences(t)]
    ['Mr. Lee arrived.', 'He left at 5 p.m. on Oct. 3!', 'Then?']
    """
    end = len(text) if end is None else end
    cuts = [start]
    for m in _BOUNDARY.finditer(text, start, end):
        if m.group().startswith("\n"):
            cuts.extend((m.start(), m.end()))
            continue
        # Look back from the last cut, not from ``start``: a word cannot cross a cut, and
        # scanning the whole block for every full stop made long articles quadratic.
        word = _WORD_BEFORE.search(text, cuts[-1], m.end())
        token = word.group(1).lower().rstrip(".") if word else ""
        if token in _ABBREVIATIONS or (len(token) == 1 and token.isalpha()):
            continue  # "Gen. Ryder", "U.S. officials", "Kim J. Un"
        cuts.append(m.end())
    cuts.append(end)
    spans = []
    for a, b in zip(cuts, cuts[1:]):
        a, b = _trim(text, a, b)
        if a < b:
            spans.append((a, b))
    return spans


def _trim(text: str, a: int, b: int) -> tuple[int, int]:
    while a < b and text[a].isspace():
        a += 1
    while b > a and text[b - 1].isspace():
        b -= 1
    return a, b


def _hard_split(text: str, a: int, b: int, size: int) -> Iterator[tuple[int, int]]:
    """Pieces of at most ``size`` characters, cut at whitespace where possible."""
    while b - a > size:
        cut = text.rfind(" ", a + size // 2, a + size)
        cut = cut if cut > a else a + size
        yield _trim(text, a, cut)
        a, _ = _trim(text, cut, b)
    if a < b:
        yield a, b


def _units(text: str, span: tuple[int, int], size: int) -> list[tuple[int, int]]:
    units: list[tuple[int, int]] = []
    for a, b in split_sentences(text, *span):
        units.extend(_hard_split(text, a, b, size))
    return units


def chunk_document(doc: Document, size: int, overlap: int) -> list[Chunk]:
    """Greedy packing of whole sentences up to ``size`` characters; the next chunk
    starts with the trailing sentences worth at most ``overlap`` characters."""
    chunks: list[Chunk] = []
    for span in doc.spans:
        units = _units(doc.text, span, size)
        i = 0
        while i < len(units):
            j = i + 1
            while j < len(units) and units[j][1] - units[i][0] <= size:
                j += 1
            s, e = units[i][0], units[j - 1][1]
            chunks.append(Chunk(doc.doc_id, len(chunks), s, e, doc.text[s:e], doc.page_of(s)))
            if j == len(units):
                break
            back = j
            while back - 1 > i and e - units[back - 1][0] <= overlap:
                back -= 1
            i = back
    return chunks


def chunk_corpus(docs: list[Document], size: int, overlap: int) -> list[Chunk]:
    return [c for d in docs for c in chunk_document(d, size, overlap)]
