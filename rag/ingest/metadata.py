"""An article's outlet, date, title, author and URL, from what the file itself says.

Each format offers layers of fields, best first (for a web page: the
``article:published_time`` tag, then JSON-LD, ``og:site_name``, ``og:title``, ``<time>``,
the canonical link and ``<title>``); per field the first layer that gives a usable value
wins, and a sidecar (see ``sidecar``) goes before them all. Nothing is guessed: a file's
mtime is no publication date, and "Oct. 29" without a year is no date. A date that does
not parse is reported (file and value) and left out; the other fields are kept.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import date, datetime
from pathlib import Path

log = logging.getLogger(__name__)

Layer = tuple[str, Mapping[str, object]]  # (where the fields were found, field -> raw value)

_MISSING = {"", "none", "null", "n/a", "na", "unknown", "-"}


@dataclass(frozen=True)
class ArticleMeta:
    """What is known about an article besides its text; None where it is unknown."""

    title: str | None = None
    source: str | None = None  # the outlet that published it, e.g. "Reuters"
    author: str | None = None
    published: date | None = None
    url: str | None = None

    def about(self) -> str:
        """The outlet and date as the model is shown them: "TechCrunch, October 6, 2023" (the date
        in the form answers write it, so a claim "on October 6" can be checked against it)."""
        when = self.published and f"{self.published:%B} {self.published.day}, {self.published.year}"
        return ", ".join(part for part in (self.source, when) if part)

    def to_json(self) -> dict[str, str | None]:
        return {f.name: (v.isoformat() if isinstance(v := getattr(self, f.name), date) else v) for f in fields(self)}

    @classmethod
    def from_json(cls, data: Mapping[str, str | None]) -> ArticleMeta:
        published = data.get("published")
        return cls(data.get("title"), data.get("source"), data.get("author"),
                   date.fromisoformat(published) if published else None, data.get("url"))


FIELDS = tuple(f.name for f in fields(ArticleMeta))


def parse_date(value: object) -> date:
    """A full calendar date (year, month and day) from what a file or sidecar says;
    raises ValueError saying why there is none.

    >>> parse_date("2023-09-28 (September 28, 2023)"), parse_date("Oct. 29, 2024")
    (datetime.date(2023, 9, 28), datetime.date(2024, 10, 29))
    """
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = re.sub(r"\s*\([^()]*\)\s*$", "", str(value)).strip().rstrip(".")
    if m := re.match(r"(\d{4})-(\d\d)-(\d\d)(?![\d])", text):  # ISO: the date as written, not moved to local time
        return date(int(m[1]), int(m[2]), int(m[3]))
    from dateutil import parser

    try:  # parsed against two different defaults: a part the text lacks comes out different
        a = parser.parse(text, default=datetime(1, 1, 1))
        b = parser.parse(text, default=datetime(2, 2, 2))
    except (ValueError, OverflowError) as exc:
        raise ValueError("not a date") from exc
    if (a.year, a.month, a.day) != (b.year, b.month, b.day):
        raise ValueError("not a full date (year, month and day)")
    return a.date()


def _clean(value: object) -> str | None:
    if isinstance(value, (list, tuple)):
        value = ", ".join(v for v in (_clean(x) for x in value) if v)
    if value is None or isinstance(value, (dict, bool)):
        return None
    text = " ".join(str(value).split())
    return None if text.lower() in _MISSING else text


def combine(layers: Iterable[Layer], path: Path, fallback_title: str) -> ArticleMeta:
    """Per field, the value of the first layer that gives a usable one."""
    found: dict[str, object] = {}
    for where, layer in layers:
        for name in FIELDS:
            if name in found or layer.get(name) is None:
                continue
            raw = layer[name]
            if name != "published":
                if (text := _clean(raw)) is not None:
                    found[name] = text
                continue
            if _clean(raw) is None and not isinstance(raw, date):
                continue
            try:
                found[name] = parse_date(raw)
            except ValueError as exc:
                log.warning("%s: the publication date %r (from %s) is %s; it is left unknown. "
                            "Write it as YYYY-MM-DD to use it.", path, str(raw), where, exc)
    found.setdefault("title", fallback_title)
    return ArticleMeta(**found)  # type: ignore[arg-type]


# --- web pages ---------------------------------------------------------------------------------


def _names(value: object) -> object:
    """A JSON-LD person or organisation (or a list of them) as names."""
    if isinstance(value, dict):
        return value.get("name")
    if isinstance(value, list):
        return [_names(v) for v in value]
    return value


def _json_ld(tree) -> dict:
    """The page's JSON-LD article object (NewsArticle, BlogPosting …), or {}."""
    items: list[dict] = []

    def walk(node: object) -> None:
        if isinstance(node, list):
            for n in node:
                walk(n)
        elif isinstance(node, dict):
            items.append(node)
            walk(node.get("@graph"))

    for script in tree.xpath('//script[contains(translate(@type, "LDJSON", "ldjson"), "ld+json")]'):
        try:
            walk(json.loads(script.text or ""))
        except ValueError:
            continue

    def is_article(item: dict) -> bool:
        kinds = item.get("@type") if isinstance(item.get("@type"), list) else [item.get("@type")]
        return any(isinstance(k, str) and k.endswith(("Article", "Posting")) for k in kinds)

    return next((i for i in items if is_article(i)), next((i for i in items if "headline" in i), {}))


def html_layers(page: str) -> list[Layer]:
    """A web page's metadata layers, best first."""
    import lxml.html  # comes with trafilatura; only web pages need it

    try:
        tree = lxml.html.document_fromstring(re.sub(r"^\s*<\?xml[^>]*>", "", page))
    except (ValueError, lxml.etree.ParserError):
        return []

    def meta(*keys: str) -> str | None:
        for el in tree.iter("meta"):
            key = (el.get("property") or el.get("name") or "").strip().lower()
            if key in keys and (el.get("content") or "").strip():
                return el.get("content")
        return None

    def first(xpath: str) -> str | None:
        hits = tree.xpath(xpath)
        return str(hits[0]) if hits else None

    ld = _json_ld(tree)
    return [
        ("the article:published_time tag", {"published": meta("article:published_time")}),
        ("JSON-LD", {"published": ld.get("datePublished"), "author": _names(ld.get("author")),
                     "source": _names(ld.get("publisher")), "title": ld.get("headline")}),
        ("og:site_name", {"source": meta("og:site_name")}),
        ("og:title", {"title": meta("og:title")}),
        ("the <time> element", {"published": first("//article//time/@datetime") or first("//time/@datetime")}),
        ("the canonical link", {"url": first('//link[contains(concat(" ", normalize-space(@rel), " "), '
                                             '" canonical ")]/@href')}),
        ("<title>", {"title": tree.findtext(".//title")}),
        ("the author and og:url tags", {"author": meta("author"), "url": meta("og:url")}),
    ]


# --- text files: front matter, header lines, datelines ---------------------------------------

_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?\r?\n)?(?:---|\.\.\.)[ \t]*(?:\r?\n|\Z)", re.DOTALL)
_FRONT_KEYS = {"title": "title", "source": "source", "publisher": "source", "outlet": "source",
               "author": "author", "authors": "author", "date": "published", "published": "published",
               "url": "url", "link": "url"}


def front_matter(text: str) -> tuple[Layer | None, int, str | None]:
    """A Markdown file's YAML front matter as a layer, where the article after it starts,
    and what is wrong with it, if anything."""
    m = _FRONT_MATTER.match(text)
    if not m:
        return None, 0, None
    import yaml

    try:
        data = yaml.safe_load(m.group(1) or "")
    except yaml.YAMLError as exc:
        return None, m.end(), (f"its front matter is not valid YAML ({str(exc).splitlines()[0]}); "
                               "its fields are not used")
    if not isinstance(data, dict):
        return None, m.end(), "its front matter is not a list of fields (key: value); it is not used"
    return ("front matter", {_FRONT_KEYS[k.lower()]: v for k, v in data.items()
                             if isinstance(k, str) and k.lower() in _FRONT_KEYS}), m.end(), None


_HEADER_LABELS = {"source": "source", "outlet": "source", "publisher": "source", "author": "author",
                  "authors": "author", "byline": "author", "published": "published", "date": "published",
                  "url": "url", "link": "url", "title": "title"}
_HEADER_FIELD = re.compile(rf"(?:^|(?<=[.;|])\s+)({'|'.join(_HEADER_LABELS)})\s*:\s*", re.IGNORECASE)
_HEADER_SCAN_LINES = 6  # header lines sit right under the headline, if anywhere


def header_lines(text: str, start: int = 0) -> tuple[Layer | None, list[tuple[int, int]]]:
    """Fields from lines such as "Source: X. Author: Y. Published: 2023-09-28." near the top
    of a text file, and where those lines are (they are metadata, not article text)."""
    found: dict[str, str] = {}
    where: list[tuple[int, int]] = []
    seen = 0
    for m in re.finditer(r"[^\n]*\n?", text[start:]):
        line = m.group().strip()
        if not line:
            if not m.group():
                break
            continue
        seen += 1
        if seen > _HEADER_SCAN_LINES:
            break
        labels = list(_HEADER_FIELD.finditer(line))
        if not labels or labels[0].start() != 0:
            continue
        for label, after in zip(labels, [*labels[1:], None]):
            value = line[label.end(): after.start() if after else len(line)].strip().rstrip(".;|").strip()
            found.setdefault(_HEADER_LABELS[label.group(1).lower()], value)
        where.append((start + m.start(), start + m.end()))
    return (("the header line", found) if found else None), where


_MONTH = (r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|Sept?(?:ember)?"
          r"|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\.?")
# "WASHINGTON (Reuters) -", "KYIV, Ukraine (AP) —", "Oct. 29 (UPI) —", "LONDON, Oct 29, 2024 (Reuters) -"
_DATELINE = re.compile(
    rf"^(?:[A-Z][A-Z.'\- ]*[A-Z.](?:,\s*[A-Z][A-Za-z.'\- ]*[A-Za-z.])?,?\s+)?"
    rf"(?:(?P<date>{_MONTH}\s+\d{{1,2}}(?:,\s*(?P<year>\d{{4}}))?)\s+)?"
    r"\((?P<agency>[A-Za-z][A-Za-z&.']*(?: [A-Z][A-Za-z&.']*){0,3})\)\s*[—–-]+\s")


# "Oct 23, 2019 ... Tesla reported …": a full date opening the text, as search snippets and
# many news exports print it.
_LEADING_DATE = re.compile(rf"^(?P<date>{_MONTH}\s+\d{{1,2}},\s*\d{{4}})\s*(?:\.\.\.|…|—|–|-)\s")


def dateline(lines: Iterable[str]) -> Layer | None:
    """The outlet (and the date, if it has a year) of a dateline opening one of the first
    content lines, or a full date opening the text. A month and day alone are not a date:
    the year is never guessed."""
    for line in lines:
        if m := _DATELINE.match(line.strip()):
            fields_ = {"source": m["agency"]}
            if m["year"]:
                fields_["published"] = m["date"]
            return "the dateline", fields_
        if m := _LEADING_DATE.match(line.strip()):
            return "the leading date", {"published": m["date"]}
    return None
