"""Mark which parts of an article's text are content, without rewriting a character.

Every rule here returns spans (``[start, end)`` offsets into the decoded text), so chunks
and citations point at exact places in the file. Lines of web furniture (newsletter
boxes, menus, cookie notices, page numbers, photo credits) and repeated lines are left
out; for a web page, trafilatura's main-content extraction decides which stretches of
the page are the article at all (navigation, related links and footers are not).
"""

from __future__ import annotations

import logging
import re
from bisect import bisect_left

log = logging.getLogger(__name__)

# Whole lines that are web furniture rather than article text.
_BOILERPLATE = re.compile(
    r"""^(
        (unlock|sign\ up\ (for|to)|subscribe\ to).{0,60}newsletter.*
      | get\ updates | get\ notified\ of.* | notifications? | settings | clear\ notifications
      | use\ the\ toggle\ to\ switch\ on\ notifications | block\ for\ \d+\ hours | don'?t\ block
      | gender | select\ your\ gender | male | female | others | age | select\ your\ age(\ range)?
      | under\ \d+ | \d+\ to\ \d+ | \d+\+
      | read\ the\ full\ article\ here\.? | read\ more | advertisement | share\ this\ article
      | (we|this\ (web)?site)\ uses?\ cookies.* | accept\ (all\ )?cookies | cookie\ (settings|preferences|policy)
      | (page\ )?\d{1,4}(\ (of|/)\ \d{1,4})?  # page numbers of a PDF or a printed page
      | [A-Z]{1,3}            # logo remnants such as "TT"
    )$""",
    re.IGNORECASE | re.VERBOSE,
)

# The agency credit that ends a photo caption. The credit is boilerplate; the caption
# itself is reported content (who, where, on what date) and is kept, once.
CAPTION = re.compile(
    r"\s*(\((AP|AFP|Reuters|EPA)\)|File Photo by .*|(\S+ )?via REUTERS|\S*/EPA-EFE|Getty Images)\s*$", re.IGNORECASE
)
_CAPTION_LABEL = re.compile(r"^\s*FILE PHOTO:\s*")
_SENTENCE_GAP = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"“])")
_BULLET = re.compile(r"^\s*[•·▪●◦\-\*]\s+")
_LINE = re.compile(r"[^\n\r\f\v]*")
_LIST_MARK = re.compile(r"^\s*(?:[-*•]|\d+\.)\s+")  # how trafilatura's text output marks list items


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
    adjacent kept lines merged into blocks (never across a page break)."""
    spans: list[tuple[int, int]] = []
    seen: set[str] = set()
    body = " ".join(" ".join(line.split()) for line in text.splitlines() if not CAPTION.search(line))
    dropped_promo = False
    pos = 0
    for raw in text.splitlines(keepends=True):
        start, pos = pos, pos + len(raw)
        line = raw.rstrip("\r\n\f\v\x1c\x1d\x1e\x85\u2028\u2029")
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
        if credit := CAPTION.search(line):
            a, b = _caption(line, credit, body)
            if a >= b:
                continue
            s, e = start + a, start + b
        gap = text[spans[-1][1] : s] if spans else "x"
        if not gap.strip() and "\f" not in gap:
            spans[-1] = (spans[-1][0], e)  # nothing dropped in between, and the same page
        else:
            spans.append((s, e))
    return spans


def spans_within(text: str, keep: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """``content_spans`` of the parts ``keep`` of ``text`` (sorted, disjoint), never
    reaching outside them: the line rules run with everything else blanked (offsets
    unchanged), then each block is cut to the kept parts it covers."""
    blanked = [c if c in "\n\r\f" else " " for c in text]
    for s, e in keep:
        blanked[s:e] = text[s:e]
    out: list[tuple[int, int]] = []
    k = 0
    for s, e in content_spans("".join(blanked)):
        while k < len(keep) and keep[k][1] <= s:
            k += 1
        j = k
        while j < len(keep) and keep[j][0] < e:
            a, b = max(s, keep[j][0]), min(e, keep[j][1])
            while a < b and text[a].isspace():
                a += 1
            while b > a and text[b - 1].isspace():
                b -= 1
            if a < b:
                out.append((a, b))
            j += 1
    return out


def headline(text: str, spans: list[tuple[int, int]], fallback: str) -> str:
    """The first content line, shortened at a word boundary: news files start
    with a headline or a lede, either of which names the story (a photo caption does not)."""
    for start, _ in spans:
        line = _LINE.match(text, start).group()
        if not CAPTION.search(line):
            first = " ".join(line.split())
            return first if len(first) <= 100 else first[:100].rsplit(" ", 1)[0] + "…"
    return fallback


def _squeezed(text: str) -> tuple[str, list[int]]:
    """``text`` without whitespace, and for each of its characters the offset in ``text``."""
    where = [i for i, c in enumerate(text) if not c.isspace()]
    return "".join(text[i] for i in where), where


def main_content(page: str, text: str) -> list[tuple[int, int]]:
    """Where trafilatura's main content of ``page`` (the raw HTML) lies in ``text`` (the
    page as decoded: tags blanked, entities decoded in place), as sorted, disjoint spans.

    trafilatura returns plain text with its own line breaks and spacing; each of its lines
    is found in ``text`` by comparing without whitespace (a blanked tag is whitespace),
    searching onward from the previous line's match, within <body> first."""
    import trafilatura  # heavy (lxml, dateparser): only web pages need it

    extracted = trafilatura.extract(page, output_format="txt", include_comments=False, include_tables=True,
                                    include_images=False, include_links=False, deduplicate=False)
    if not extracted:
        return []
    squeezed, where = _squeezed(text)
    body = re.search(r"<body\b", page, re.IGNORECASE)
    body_at = bisect_left(where, body.start()) if body else 0
    spans: list[tuple[int, int]] = []
    cursor = body_at
    for line in extracted.splitlines():
        for piece in re.split(r"\s\|\s", _LIST_MARK.sub("", line)):  # table cells come out as "a | b"
            key = "".join(piece.split())
            if not key:
                continue
            i = next((i for i in (squeezed.find(key, cursor), squeezed.find(key, body_at), squeezed.find(key))
                      if i >= 0), -1)
            if i < 0:
                log.debug("Content line not found in the page, left out: %r", piece[:80])
                continue
            spans.append((where[i], where[i + len(key) - 1] + 1))
            cursor = i + len(key)
    merged: list[tuple[int, int]] = []
    for s, e in sorted(spans):  # paragraphs with only markup between them are one block
        if merged and (s <= merged[-1][1] or not text[merged[-1][1] : s].strip()):
            merged[-1] = (merged[-1][0], max(e, merged[-1][1]))
        else:
            merged.append((s, e))
    return merged
