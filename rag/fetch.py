"""Bring articles in from outside for `rag add`: web pages fetched and saved as .html,
RSS and Atom feeds turned into one Markdown article per item.

A feed item becomes a Markdown file whose YAML front matter holds its title, the feed's
title as ``source``, its author, date and link, followed by the item's title and its
content (or summary) with the HTML stripped. Nothing here writes to the corpus: the
files go to a temporary folder and ``corpus.add_files`` checks and copies them.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from .errors import SourceError
from .ingest import MAX_FILE_BYTES, parse_date

log = logging.getLogger(__name__)

TIMEOUT_S = 20
USER_AGENT = "rag/0.1 (news question answering; one page per request)"
FEED_SUFFIXES = (".rss", ".atom", ".xml")
_FEED_TYPES = ("application/rss+xml", "application/atom+xml", "application/rdf+xml", "application/xml", "text/xml")
_FEED_ROOT = re.compile(rb"^(?:\xef\xbb\xbf)?\s*(?:<\?xml[^>]*>\s*)?(?:<!--.*?-->\s*)*<(?:rss|feed|rdf:RDF)\b", re.DOTALL)


@dataclass(frozen=True)
class Fetched:
    url: str  # after redirects
    content_type: str  # e.g. "text/html", lower case, no parameters
    charset: str | None
    data: bytes


def _opener(host: str) -> urllib.request.OpenerDirector:
    """This machine is reached directly, whatever proxy the environment names."""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    return urllib.request.build_opener(urllib.request.ProxyHandler({})) if loopback else urllib.request.build_opener()


def fetch(url: str, max_bytes: int = MAX_FILE_BYTES) -> Fetched:
    """GET ``url``; SourceError saying why when it cannot be had."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SourceError(url, "it is not a web address (http:// or https://)")
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    try:
        with _opener(parts.hostname).open(request, timeout=TIMEOUT_S) as response:
            data = response.read(max_bytes + 1)
            kind = response.headers.get_content_type().lower()
            charset = response.headers.get_content_charset()
            final = response.geturl()
    except urllib.error.HTTPError as exc:
        raise SourceError(url, f"the server answered {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise SourceError(url, f"it could not be fetched ({reason}); check the address and that this machine "
                               "is online, or save the page and add the file") from exc
    if len(data) > max_bytes:
        raise SourceError(url, f"it is larger than {max_bytes:,} bytes")
    return Fetched(final, kind, charset, data)


def looks_like_feed(data: bytes, content_type: str = "", name: str = "") -> bool:
    """An RSS/Atom document, by its root element, its content type or its file name."""
    return (bool(_FEED_ROOT.match(data[:4096])) or content_type in _FEED_TYPES
            or name.lower().endswith(FEED_SUFFIXES))


def html_to_text(fragment: str) -> str:
    """The text of an HTML fragment, one paragraph per block element."""
    import lxml.html

    if not fragment.strip():
        return ""
    try:
        root = lxml.html.fragment_fromstring(fragment, create_parent="div")
    except (ValueError, lxml.etree.ParserError):
        return " ".join(fragment.split())
    for el in root.iter("p", "div", "br", "li", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "tr", "figcaption"):
        el.tail = "\n\n" + (el.tail or "")
    for el in root.iter("script", "style"):
        el.drop_tree()
    lines = (" ".join(line.split()) for line in root.text_content().splitlines())
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _slug(text: str) -> str:
    return re.sub(r"[^\w]+", "-", text.lower()).strip("-")[:60].strip("-") or "item"


def _item_file(entry: dict, feed_title: str | None, origin: str) -> tuple[str, str]:
    """(file name, Markdown with front matter) for one feed item."""
    import yaml

    title = " ".join((entry.get("title") or "").split())
    contents = entry.get("content") or []
    body = html_to_text(contents[0].get("value", "") if contents else entry.get("summary", ""))
    raw_date = entry.get("published") or entry.get("updated")
    published = None
    if raw_date:
        try:
            published = parse_date(raw_date).isoformat()  # the date as the feed wrote it, not moved to UTC
        except ValueError as exc:
            log.warning("%s: item %r has the date %r, which is %s; it is left unknown.", origin, title, raw_date, exc)
    fields = {"title": title or None, "source": feed_title, "author": entry.get("author"),
              "date": published, "url": entry.get("link")}
    front = yaml.safe_dump({k: v for k, v in fields.items() if v}, allow_unicode=True, sort_keys=False)
    ident = entry.get("id") or entry.get("link") or title + body
    name = f"{_slug(title)}-{hashlib.sha256(ident.encode()).hexdigest()[:8]}.md"
    return name, f"---\n{front}---\n{title}\n\n{body}\n" if body else ""


def feed_items(data: bytes, origin: str) -> list[tuple[str, str]]:
    """(file name, Markdown) per item of an RSS or Atom feed ("" for an item without
    text); SourceError if it is no feed or has no items."""
    import feedparser

    if not data.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<"):
        start = data[:40].decode("utf-8", "replace")
        raise SourceError(origin, f"it is not an RSS or Atom feed: it is not XML (it starts with {start!r}); "
                                  "check the address or the file")
    parsed = feedparser.parse(data)
    if parsed.get("bozo") and not parsed.entries:
        raise SourceError(origin, f"it is not an RSS or Atom feed: its XML is broken ({parsed.get('bozo_exception')}); "
                                  "check the address or the file")
    if not parsed.get("version"):
        raise SourceError(origin, "it is XML but neither RSS nor Atom; give the address of the feed itself")
    if not parsed.entries:
        raise SourceError(origin, "the feed has no items")
    if parsed.get("bozo"):
        log.warning("%s is not well-formed XML (%s); the items that could be read are added.",
                    origin, parsed.get("bozo_exception"))
    feed_title = " ".join((parsed.feed.get("title") or "").split()) or None
    return [_item_file(entry, feed_title, origin) for entry in parsed.entries]


def page_file(fetched: Fetched) -> tuple[str, bytes]:
    """(file name, UTF-8 bytes) to save a fetched web page as."""
    last = Path(urllib.parse.urlsplit(fetched.url).path).name
    stem = _slug(Path(last).stem) if last else ""
    host = urllib.parse.urlsplit(fetched.url).hostname or "page"
    name = f"{stem if stem != 'item' else _slug(host)}-{hashlib.sha256(fetched.url.encode()).hexdigest()[:8]}.html"
    for charset in (fetched.charset, "utf-8"):
        try:
            return name, fetched.data.decode(charset or "utf-8").encode("utf-8")
        except (LookupError, UnicodeDecodeError):
            continue
    meta = re.search(rb"<meta[^>]+charset=[\"']?([\w-]+)", fetched.data[:4096], re.IGNORECASE)
    charset = meta.group(1).decode() if meta else "cp1252"
    try:
        return name, fetched.data.decode(charset, "replace").encode("utf-8")
    except LookupError:
        return name, fetched.data.decode("cp1252", "replace").encode("utf-8")
