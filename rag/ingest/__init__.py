"""Load articles from a folder: their text, the spans of it that are content, and
what is known about them (outlet, date, title, author, URL).

Cleaning never rewrites text: it keeps a list of character spans of the decoded file
that hold article content, so every chunk and citation can point at exact offsets, and
``read_source(path)[start:end]`` is always the cited text. How each format is decoded is
in ``formats``, which spans are content in ``clean``, the metadata in ``metadata`` and
``sidecar``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import CorpusError
from .clean import content_spans, headline, main_content, spans_within
from .formats import HTML_SUFFIXES, PDF_SUFFIX, Unreadable, page_starts, reader_version, text_of
from .metadata import ArticleMeta, Layer, combine, dateline, front_matter, header_lines, html_layers, parse_date
from .sidecar import SIDECARS, read_sidecar

log = logging.getLogger(__name__)

SUFFIXES = (".txt", ".md", ".html", ".htm", ".pdf")
MAX_FILE_BYTES = 5_000_000
# Bump when a cleaning rule changes what text is indexed: indexes built under an older
# version are rebuilt rather than serving chunks the current rules would not make.
# 2: photo captions kept once (were dropped); 3: not their sentences the article repeats;
# 4: web pages' main content chosen by trafilatura and entities decoded in place, header
# lines and front matter are metadata, page numbers and cookie notices dropped, PDFs read.
CLEANING_VERSION = 4

_TEXT_SUFFIXES = (".txt", ".md")
_PROSE = re.compile(r"\w+(?:\W+\w+){4,}[.!?…][\"'”’)\]]*(?:\s|$)")


@dataclass(frozen=True)
class Document:
    """One article: its decoded text, the spans of it that are content, and its metadata."""

    doc_id: str
    path: Path
    text: str  # the file's text as decoded (offsets refer to this; see formats)
    title: str
    spans: tuple[tuple[int, int], ...]  # content blocks, as [start, end) offsets into text
    sha256: str = field(repr=False)  # of the file's bytes
    meta: ArticleMeta = ArticleMeta()
    pages: tuple[int, ...] = ()  # where each page of a PDF starts in text; () for other formats

    @property
    def clean_text(self) -> str:
        return "\n".join(self.text[s:e] for s, e in self.spans)

    @property
    def fingerprint(self) -> str:
        """Changes when the file, its metadata (a sidecar line too) or the library that
        reads its format changes: any of them calls for indexing it again."""
        state = [self.sha256, self.meta.to_json(), reader_version(self.path.suffix)]
        return hashlib.sha256(json.dumps(state, sort_keys=True).encode()).hexdigest()

    def page_of(self, offset: int) -> int | None:
        """1-based page of a PDF holding ``offset``; None for other formats."""
        return bisect_right(self.pages, offset) if self.pages else None


def content_key(doc: Document) -> str:
    """Equal for two files with the same article text (layout and case aside)."""
    return _key(doc.clean_text)


def _key(clean_text: str) -> str:
    return hashlib.sha256(" ".join(clean_text.split()).lower().encode()).hexdigest()


def decode(data: bytes, path: Path) -> str | None:
    """The text of a file as the index reads it, or None (with a warning naming it)."""
    try:
        return text_of(data, path)
    except Unreadable as why:
        log.warning("Skipping %s: %s.", path, why)
        return None


def read_source(path: Path) -> str | None:
    """A file's text as the index decoded it (chunk and citation offsets refer to it), or
    None if it is gone or no longer text."""
    try:
        return text_of(path.read_bytes(), path)
    except (OSError, Unreadable):
        return None


def _outside(regions: list[tuple[int, int]], length: int) -> list[tuple[int, int]]:
    """The parts of ``[0, length)`` not in ``regions``, sorted."""
    keep, pos = [], 0
    for s, e in sorted(regions):
        if s > pos:
            keep.append((pos, s))
        pos = max(pos, e)
    return [*keep, (pos, length)] if pos < length else keep


def _content(data: bytes, text: str, path: Path) -> tuple[list[tuple[int, int]], list[Layer], list[str]]:
    """The content spans of a decoded file, the metadata layers its text offers (front
    matter, header lines, dateline; a web page's tags are read by ``html_layers``) and
    any problems to report. Logs nothing, so it can also be used to compare files."""
    suffix = path.suffix.lower()
    layers: list[Layer] = []
    problems: list[str] = []
    if suffix in HTML_SUFFIXES:
        spans = spans_within(text, main_content(data.decode("utf-8-sig"), text))
        if not _PROSE.search("\n".join(text[s:e] for s, e in spans)):
            return [], layers, problems  # links and labels only: a section front, not an article
    else:
        skip: list[tuple[int, int]] = []
        start = 0
        if suffix == ".md":
            matter, start, problem = front_matter(text)
            layers += [matter] if matter else []
            problems += [problem] if problem else []
            skip.append((0, start))
        if suffix in _TEXT_SUFFIXES:
            header, lines = header_lines(text, start)
            layers += [header] if header else []
            skip += lines
        spans = spans_within(text, _outside(skip, len(text))) if skip else content_spans(text)
    first_lines = [line for s, e in spans[:3] for line in text[s:e].splitlines() if line.strip()][:3]
    if line := dateline(first_lines):
        layers.append(line)
    return spans, layers, problems


def file_content_key(path: Path) -> str | None:
    """``content_key`` of the article in ``path`` without building its Document or
    reporting anything; None if it is no readable article."""
    try:
        data = path.read_bytes()
        text = text_of(data, path)
    except (OSError, Unreadable):
        return None
    spans = _content(data, text, path)[0]
    return _key("\n".join(text[s:e] for s, e in spans)) if spans else None


def read_article(path: Path, overrides: Mapping[str, object] | None = None) -> Document:
    """One article file as a Document; raises Unreadable saying why it cannot be one.
    ``overrides`` are its sidecar fields, if any (they win over what the file says)."""
    try:
        data = path.read_bytes()
    except OSError as exc:  # permissions, or deleted since the folder was listed
        raise Unreadable(f"it could not be read ({exc.strerror or exc})") from exc
    if len(data) > MAX_FILE_BYTES:
        raise Unreadable(f"it is larger than {MAX_FILE_BYTES:,} bytes")
    if not data.strip():
        raise Unreadable("it is empty")
    text = text_of(data, path)
    spans, layers, problems = _content(data, text, path)
    if not spans:
        raise Unreadable("no article text in it")
    for problem in problems:
        log.warning("%s: %s", path, problem)
    if path.suffix.lower() in HTML_SUFFIXES:
        layers = [*html_layers(data.decode("utf-8-sig")), *layers]
    if overrides:
        layers.insert(0, ("the sidecar", overrides))
    meta = combine(layers, path, headline(text, spans, path.stem))
    return Document(doc_id=path.stem, path=path.resolve(), text=text, title=meta.title or path.stem,
                    spans=tuple(spans), sha256=hashlib.sha256(data).hexdigest(), meta=meta,
                    pages=page_starts(text, path))


def load_document(path: Path, overrides: Mapping[str, object] | None = None) -> Document | None:
    """The article in ``path``, or None with a warning naming it and why. Without
    ``overrides``, the sidecar of the file's folder is read for them."""
    if overrides is None:
        overrides = read_sidecar(path.parent).get(path.name, {})
    try:
        return read_article(path, overrides)
    except Unreadable as why:
        log.warning("Skipping %s: %s.", path, why)
        return None


def corpus_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise CorpusError(f"Corpus folder {folder} does not exist. Point to a folder of .txt articles.")
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES)


def load_corpus(folder: Path) -> list[Document]:
    """All readable articles in ``folder``, with their sidecar metadata; unreadable ones
    and exact duplicates are skipped with a warning."""
    files = corpus_files(folder)
    if not files:
        raise CorpusError(
            f"Corpus folder {folder} has no articles ({', '.join(SUFFIXES)} files). Add some and try again."
        )
    sidecar = read_sidecar(folder)
    docs: list[Document] = []
    by_content: dict[str, str] = {}
    by_id: dict[str, str] = {}
    for path in files:
        doc = load_document(path, sidecar.get(path.name, {}))
        if doc is None:
            continue
        if doc.doc_id in by_id:  # doc_id is the stem: x.txt and x.md would share one id
            log.warning("Skipping %s: %s has the same name before the extension; rename one of them.",
                        path.name, by_id[doc.doc_id])
            continue
        key = content_key(doc)
        if key in by_content:
            log.warning("Skipping %s: same text as %s.", path.name, by_content[key])
            continue
        by_content[key] = doc.doc_id
        by_id[doc.doc_id] = path.name
        docs.append(doc)
    if not docs:
        raise CorpusError(f"No readable articles in {folder}: every file was skipped (see warnings above).")
    return docs


__all__ = [
    "ArticleMeta", "CLEANING_VERSION", "Document", "MAX_FILE_BYTES", "PDF_SUFFIX", "SIDECARS", "SUFFIXES",
    "Unreadable", "content_key", "content_spans", "corpus_files", "decode", "file_content_key", "load_corpus",
    "load_document",
    "parse_date", "read_article", "read_source", "read_sidecar",
]
