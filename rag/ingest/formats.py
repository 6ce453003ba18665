"""Decode each article format into the text that chunk and citation offsets refer to.

- .txt and .md: the file's UTF-8 text as written.
- .html: the same, with every tag blanked to spaces and every entity decoded in place
  (``&amp;`` becomes four spaces and ``&``), so each word lies where it lies in the file
  and nothing has to be re-found later.
- .pdf: the text layer of each page (pypdf), pages joined by a form feed ``\\f``; the
  same bytes always give the same text, so offsets stay exact for a given pypdf.
"""

from __future__ import annotations

import html
import io
import re
from functools import cache
from pathlib import Path

HTML_SUFFIXES = (".html", ".htm")
PDF_SUFFIX = ".pdf"
PAGE_BREAK = "\f"

# Markup to blank: script/style bodies and comments are not article text either.
_TAG = re.compile(r"<(script|style)\b.*?</\1\s*>|<!--.*?-->|<[^>]*>", re.IGNORECASE | re.DOTALL)
_TOKEN_WITH_ENTITY = re.compile(r"[^\s&]*&[^\s]*")


class Unreadable(Exception):
    """A file that cannot be read as an article; the message says why, in a user's words
    ("it looks like a binary file, not text"), to follow "<name> was skipped:"."""


def text_of(data: bytes, path: Path) -> str:
    """The text of a file as the index reads it; raises Unreadable."""
    suffix = path.suffix.lower()
    if suffix == PDF_SUFFIX:
        return pdf_text(data)
    if b"\x00" in data[:8192]:
        raise Unreadable("it looks like a binary file, not text")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise Unreadable(f"it is not valid UTF-8 text (byte {exc.start}); re-save it as UTF-8 to index it") from exc
    return html_text(text) if suffix in HTML_SUFFIXES else text


def html_text(page: str) -> str:
    """The page with tags blanked and entities decoded, each the same length as in the file.

    An entity is decoded inside its word and the word padded with spaces outside it
    ("don&rsquo;t" becomes "don’t" and six spaces, "&ldquo;We" six spaces and "“We"), so
    the word reads whole and stays within its place in the file. The markup is never
    rendered."""
    text = _TAG.sub(lambda m: " " * len(m.group()), page)

    def decode(m: re.Match[str]) -> str:
        token = m.group()
        plain = html.unescape(token)
        if len(plain) > len(token):
            return token
        return plain.rjust(len(token)) if token.startswith("&") else plain.ljust(len(token))

    return _TOKEN_WITH_ENTITY.sub(decode, text)


def pdf_text(data: bytes) -> str:
    """The text layer of every page, joined by form feeds; raises Unreadable for a PDF
    that cannot be opened or has no text to read."""
    from pypdf import PdfReader  # pure Python, but only PDFs need it
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise Unreadable("it is an encrypted PDF; save an unprotected copy to index it")
        pages = [(page.extract_text() or "") for page in reader.pages]
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, OSError) as exc:
        raise Unreadable(f"it is not a readable PDF ({type(exc).__name__}: {exc})") from exc
    # A form feed inside a page would read as a page break, a NUL as binary.
    pages = [p.replace(PAGE_BREAK, " ").replace("\x00", " ") for p in pages]
    if not any(p.strip() for p in pages):
        raise Unreadable("no text layer: run OCR on it first (it holds only images of text, or nothing)")
    return PAGE_BREAK.join(pages)


def page_starts(text: str, path: Path) -> tuple[int, ...]:
    """Offsets at which each page of a PDF's text starts (empty for other formats)."""
    if path.suffix.lower() != PDF_SUFFIX:
        return ()
    return (0, *(m.end() for m in re.finditer(PAGE_BREAK, text)))


@cache
def reader_version(suffix: str) -> str:
    """The library that turns this format into indexed text, with its version: a new
    version may read a page differently, so it is part of an article's fingerprint."""
    from importlib.metadata import PackageNotFoundError, version

    name = {PDF_SUFFIX: "pypdf", ".html": "trafilatura", ".htm": "trafilatura"}.get(suffix.lower())
    if name is None:
        return ""
    try:
        return f"{name} {version(name)}"
    except PackageNotFoundError:
        return name
