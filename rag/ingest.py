"""Load articles from a folder and mark which parts of each file are content.

Cleaning never rewrites text: it keeps a list of character spans of the
original file that hold article content (boilerplate lines are left out), so
every chunk and citation can point at exact offsets in the file on disk.
"""

from __future__ import annotations

import hashlib
import html
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

from .errors import CorpusError

log = logging.getLogger(__name__)

SUFFIXES = (".txt", ".md", ".html", ".htm")
MAX_FILE_BYTES = 5_000_000

# Whole lines that are web furniture rather than article text.
_BOILERPLATE = re.compile(
    r"""^(
        (unlock|sign\ up\ (for|to)|subscribe\ to).{0,60}newsletter.*
      | get\ updates | get\ notified\ of.* | notifications? | settings | clear\ notifications
      | use\ the\ toggle\ to\ switch\ on\ notifications | block\ for\ \d+\ hours | don'?t\ block
      | gender | select\ your\ gender | male | female | others | age | select\ your\ age(\ range)?
      | under\ \d+ | \d+\ to\ \d+ | \d+\+
      | read\ the\ full\ article\ here\.? | read\ more | advertisement | share\ this\ article
      | [A-Z]{1,3}            # logo remnants such as "TT"
    )$""",
    re.IGNORECASE | re.VERBOSE,
)
# Bump when a cleaning rule changes what text is indexed: indexes built under an older
# version are rebuilt rather than serving chunks the current rules would not make.
CLEANING_VERSION = 3  # 2: photo captions kept once (were dropped); 3: not their sentences the article repeats

# The agency credit that ends a photo caption. The credit is boilerplate; the caption
# itself is reported content (who, where, on what date) and is kept, once.
_CAPTION = re.compile(
    r"\s*(\((AP|AFP|Reuters|EPA)\)|File Photo by .*|(\S+ )?via REUTERS|\S*/EPA-EFE|Getty Images)\s*$", re.IGNORECASE
)
_CAPTION_LABEL = re.compile(r"^\s*FILE PHOTO:\s*")
_SENTENCE_GAP = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"“])")
_BULLET = re.compile(r"^\s*[•·▪●◦\-\*]\s+")
# Markup to blank: script/style bodies and comments are not article text either.
_TAG = re.compile(r"<(script|style)\b.*?</\1\s*>|<!--.*?-->|<[^>]*>", re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True)
class Document:
    """One article: its raw text plus the spans of it that are content."""

    doc_id: str
    path: Path
    text: str  # the file's text exactly as decoded (offsets refer to this)
    title: str
    spans: tuple[tuple[int, int], ...]  # content blocks, as [start, end) offsets into text
    sha256: str = field(repr=False)

    @property
    def clean_text(self) -> str:
        return "\n".join(self.text[s:e] for s, e in self.spans)


def _is_boilerplate(line: str, previous_dropped: bool) -> bool:
    stripped = _BULLET.sub("", line).strip()
    if not stripped:
        return True
    if _BOILERPLATE.match(stripped):
        return True
    # A tagline right after a newsletter/menu line is part of the same promo box.
    return previous_dropped and len(stripped) < 90 and not stripped.endswith((".", "?", "!", '"', "”"))


def _caption(line: str, credit: re.Match[str], body: str) -> tuple[int, int]:
    """Where a photo caption's own text lies in ``line``: without "FILE PHOTO:" or "(AP)",
    and ending before the first sentence the article's text says too (captions often
    repeat the lede, which would then be indexed twice)."""
    label = _CAPTION_LABEL.match(line)
    start, end = (label.end() if label else len(line) - len(line.lstrip())), credit.start()
    bounds = [start, *(m.end() for m in _SENTENCE_GAP.finditer(line, start, end)), end]
    for a, b in zip(bounds, bounds[1:]):
        if " ".join(line[a:b].split()) in body:
            return start, len(line[:a].rstrip())
    return start, end


def content_spans(text: str) -> list[tuple[int, int]]:
    """Spans of ``text`` worth indexing: boilerplate and repeated lines dropped,
    adjacent kept lines merged into blocks."""
    spans: list[tuple[int, int]] = []
    seen: set[str] = set()
    body = " ".join(" ".join(line.split()) for line in text.splitlines() if not _CAPTION.search(line))
    dropped_promo = False
    pos = 0
    for raw in text.splitlines(keepends=True):
        start, pos = pos, pos + len(raw)
        line = raw.rstrip("\r\n")
        stripped = line.strip()
        if not stripped:
            continue  # blank lines neither drop nor keep; they do not break the promo rule
        key = " ".join(stripped.lower().split())
        boiler = _is_boilerplate(line, dropped_promo)
        dropped_promo = boiler
        if boiler or key in seen:  # headlines and captions are often printed twice
            continue
        seen.add(key)
        lead = len(line) - len(line.lstrip())
        s, e = start + lead, start + len(line.rstrip())
        if credit := _CAPTION.search(line):
            a, b = _caption(line, credit, body)
            if a >= b:
                continue
            s, e = start + a, start + b
        if spans and text[spans[-1][1] : s].strip() == "":  # nothing dropped in between
            spans[-1] = (spans[-1][0], e)
        else:
            spans.append((s, e))
    return spans


def _title(text: str, spans: list[tuple[int, int]], fallback: str) -> str:
    """The first content line, shortened at a word boundary: news files start
    with a headline or a lede, either of which names the story (a photo caption does not)."""
    for start, _ in spans:
        line = text[start:].partition("\n")[0]
        if not _CAPTION.search(line):
            first = line.strip()
            return first if len(first) <= 100 else first[:100].rsplit(" ", 1)[0] + "…"
    return fallback


def decode(data: bytes, path: Path) -> str | None:
    """UTF-8 text of a file, or None (with a warning naming it) when it is not text."""
    if b"\x00" in data[:8192]:
        log.warning("Skipping %s: it looks like a binary file, not text.", path)
        return None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        log.warning("Skipping %s: not valid UTF-8 (byte %d). Re-save it as UTF-8 to index it.", path, exc.start)
        return None
    if path.suffix.lower() in (".html", ".htm"):
        # Offsets must stay exact, so tags are blanked (same length) rather than removed;
        # entities stay as written. The markup is never rendered anywhere.
        text = _TAG.sub(lambda m: " " * len(m.group()), text)
    return text


def read_source(path: Path) -> str | None:
    """A file's text as the index decoded it (chunk and citation offsets refer to it), or
    None if it is gone or no longer text."""
    try:
        return decode(path.read_bytes(), path)
    except OSError:
        return None


def load_document(path: Path) -> Document | None:
    try:
        data = path.read_bytes()
    except OSError as exc:  # permissions, or deleted since the folder was listed: skip, don't abort
        log.warning("Skipping %s: it could not be read (%s).", path, exc.strerror or exc)
        return None
    if len(data) > MAX_FILE_BYTES:
        log.warning("Skipping %s: larger than %d bytes.", path, MAX_FILE_BYTES)
        return None
    text = decode(data, path)
    if text is None:
        return None
    spans = content_spans(text)
    if not spans:
        log.warning("Skipping %s: no article text in it.", path)
        return None
    return Document(
        doc_id=path.stem,
        path=path.resolve(),
        text=text,
        title=html.unescape(_title(text, spans, path.stem)),
        spans=tuple(spans),
        sha256=hashlib.sha256(data).hexdigest(),
    )


def corpus_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise CorpusError(f"Corpus folder {folder} does not exist. Point to a folder of .txt articles.")
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES)


def load_corpus(folder: Path) -> list[Document]:
    """All readable articles in ``folder``; unreadable ones and exact duplicates
    are skipped with a warning."""
    files = corpus_files(folder)
    if not files:
        raise CorpusError(
            f"Corpus folder {folder} has no articles ({', '.join(SUFFIXES)} files). Add some and try again."
        )
    docs: list[Document] = []
    by_content: dict[str, str] = {}
    by_id: dict[str, str] = {}
    for path in files:
        doc = load_document(path)
        if doc is None:
            continue
        if doc.doc_id in by_id:  # doc_id is the stem: x.txt and x.md would share one id
            log.warning("Skipping %s: %s has the same name before the extension; rename one of them.",
                        path.name, by_id[doc.doc_id])
            continue
        key = hashlib.sha256(" ".join(doc.clean_text.split()).lower().encode()).hexdigest()
        if key in by_content:
            log.warning("Skipping %s: same text as %s.", path.name, by_content[key])
            continue
        by_content[key] = doc.doc_id
        by_id[doc.doc_id] = path.name
        docs.append(doc)
    if not docs:
        raise CorpusError(f"No readable articles in {folder}: every file was skipped (see warnings above).")
    return docs
