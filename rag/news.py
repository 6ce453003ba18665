"""What makes an answer about news: "as of" dates, figures that differ by source, timelines.

All of it is computed in code from the passages and their articles' metadata, never
left to the model: dates are compared as dates, figures as numbers, and every figure
or event shown is cited to the passage that states it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

from .answer import Figure, TimelineEntry
from .chunking import split_sentences
from .retrieve import Passage
from .text import DATE, content_terms, normalize_numbers, strip_markers
from .verify.question import ASKS_QUANTITY
from .verify.rules import MEASURE, register

register("sharpen_dates", """Asked "when", an answer gives the date as exactly as its cited passages: "released in 2017"
    becomes "released on December 1, 2017" when they give exactly one fuller date in that year; else a shown
    passage whose sentence holds all the question's content words lends (and cites) its date.""")
register("figures_by_source", """When the passages shown for a "how many" question give different figures, each is
    listed with its outlet and date and cited (unless the question asks for one source's figure).""")
register("newest_figure", """When the figures shown differ by date and the answer gave only an older article's, the answer
    leads with the newest article's sentence stating its figure, "As of <date> (<outlet>)".""")
register("as_of", """A changing fact (a running count, who holds an office, "latest") is answered "As of <date>
    (<outlet>)", from the newest cited article.""")

if TYPE_CHECKING:
    from .steps import Draft

_MONTH_NAMES = (r"Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|Sept?(?:ember)?|"
                r"Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?")
_MONTHS_FULL = {m[:3].lower(): m for m in ("January", "February", "March", "April", "May", "June", "July", "August",
                                          "September", "October", "November", "December")}
# A changing fact: a running count ("how many … are"), an office ("who is the …"), or "latest".
_CHANGING = re.compile(r"^\W*(?:(?:and|so)\W+)?(?:how (?:many|much)\b.*\b(?:are|is|remain|have|has)\b|"
                       r"who (?:is|are)\b.*\b(?:president|chair|ceo|head|leader|minister|chief|director|"
                       r"manager|coach|captain|owner|governor|mayor|secretary)\b)", re.IGNORECASE)
_COUNT = re.compile(r"(?<![\d.,])\d+(?:[.,]\d+)*(?:\s*(?:million|billion|thousand|mn|bn)\b)?", re.IGNORECASE)
_MONEY_BEFORE = re.compile(r"[^\W\d_]?\$$|[\u00a2-\u00a5\u20a0-\u20c0]$")
_SHARE_AFTER = re.compile(r"\s*(?:%|per ?cent\b|percent\b)", re.IGNORECASE)
_QUANTITY_WORDS = re.compile(r"how (?:many|much)\s+([\w'’\- ]+?)\s+(?:are|is|were|was|have|has|had|did|do|does|will|"
                             r"would|could|remain|died|live)\b", re.IGNORECASE)
# "according to the Pentagon": the question asks for one source's figure, not every source's.
_ATTRIBUTED = re.compile(r"\b(?:according to|per|as (?:reported|stated|said|estimated|put) by|in the view of)\b",
                         re.IGNORECASE)
# A sentence that refers back to the one before it: a pronoun first, or "the number", "that figure" …
_REFERS_BACK = re.compile(r"^\W*(?:he|she|it|they|this|that|these|those)\b|"
                          r"\b(?:the|that|this|its|their) (?:number|figure|total|count|tally|toll|estimate)\b",
                          re.IGNORECASE)
_MARKUP = re.compile(r"^(?:#+|[>*\-]|\d+\.)\s+")  # a Markdown heading, quote or list item's leading mark
_ABOUT = 0.5  # share of the question's content words a sentence needs to be about the same thing


_ASKS_DATE = re.compile(r"^\W*when\b|\b(?:what|which) (?:is|was) the (?:\w+ )?date\b", re.IGNORECASE)
_BARE_YEAR = re.compile(r"\b(?:(?:in|on)\s+)?(?:(" + _MONTH_NAMES + r")\.?\s+)?((?:19|20)\d\d)\b")
_DATES = re.compile(r"\b(" + _MONTH_NAMES + r")\.?\s+(?:(\d{1,2}),?\s+)?((?:19|20)\d\d)\b|"
                    r"\b(\d{1,2})\s+(" + _MONTH_NAMES + r")\.?,?\s+((?:19|20)\d\d)\b")


def _said_dates(texts: list[str]) -> set[tuple[str, int | None, str]]:
    """(month, day or None, year) of every date the texts write with at least a month."""
    out = set()
    for t in texts:
        for m in _DATES.finditer(t):
            month, day, year = (m.group(1), m.group(2), m.group(3)) if m.group(1) else (m.group(5), m.group(4), m.group(6))
            out.add((_MONTHS_FULL[month[:3].lower()], int(day) if day else None, year))
    return out


def sharpen_dates(question: str, text: str, cited: Sequence[Passage],
                  shown: Sequence[Passage] = ()) -> tuple[str, Passage | None]:
    """Asked "when", an answer gives the date as exactly as its sources: "released in 2017 [1]"
    becomes "released on December 1, 2017 [1]" when the cited passages give exactly one more
    exact date in that year (and month, if the answer named one). Failing that, a passage shown
    but not cited lends its date when one of its sentences holds every content word of the
    question ("OpenAI Inc was founded in December 2015"): the text then cites it, and that
    passage is returned so that it joins the citations."""
    if not _ASKS_DATE.search(question):
        return text, None
    sharper = _sharpen(text, _said_dates([p.text for p in cited]), "")
    if sharper != text:
        return sharper, None
    wanted = content_terms(question)
    for p in shown:
        if p in cited:
            continue
        alike = [p.text[a:b] for a, b in split_sentences(p.text) if wanted <= content_terms(p.text[a:b])]
        sharper = _sharpen(text, _said_dates(alike), CITE_HERE)
        if sharper != text:
            return sharper, p
    return text, None


CITE_HERE = "\x00"  # where the marker of a lending passage goes


def _sharpen(text: str, said: set[tuple[str, int | None, str]], cite: str) -> str:
    def sharper(m: re.Match[str]) -> str:
        month = _MONTHS_FULL[m.group(1)[:3].lower()] if m.group(1) else None
        if re.match(r"\s*\d", text[m.end():m.end() + 3]) or re.search(r"\d\s*,?\s*$", text[:m.start()]):
            return m.group()  # part of a fuller date already ("December 1, 2017", "1 December 2017")
        fits = {(mo, d) for mo, d, y in said if y == m.group(2) and (month is None or mo == month)}
        days = {f for f in fits if f[1] is not None}
        best = days if days else (fits if month is None else set())
        if len(best) != 1:
            return m.group()
        mo, d = best.pop()
        return (f"on {mo} {d}, {m.group(2)}" if d else f"in {mo} {m.group(2)}") + cite

    return _BARE_YEAR.sub(sharper, text)


def when(d: date | None) -> str:
    return f"{d:%B} {d.day}, {d.year}" if d else ""


def _who(p: Passage) -> str:
    return ", ".join(x for x in (p.meta.source, when(p.meta.published)) if x) or (p.meta.title or p.chunk.doc_id)


@dataclass(frozen=True)
class _Stated:
    value: str  # as the passage writes it
    key: str  # normalised, to compare
    passage: Passage
    sentence: str  # the passage's sentence that states it


def _counts(sentence: str) -> list[tuple[str, str]]:
    """(as written, normalised) counts in a sentence: dates, percentages, amounts of money and
    measures ("600 sq km", "50 kilometres") aside."""
    plain = DATE.sub(lambda m: " " * len(m.group()), sentence)
    plain = MEASURE.sub(lambda m: " " * len(m.group()), plain)
    out = []
    for m in _COUNT.finditer(plain):
        if _MONEY_BEFORE.search(plain[max(0, m.start() - 2):m.start()].rstrip()) or _SHARE_AFTER.match(plain, m.end()):
            continue
        value = m.group().strip()
        out.append((value, normalize_numbers(value).lower().replace(" ", "")))
    return out


def _stated(question: str, passages: list[Passage]) -> list[_Stated]:
    """Each figure a passage states in a sentence about the question, first mention kept. A
    sentence that refers back ("the number", "He added …") is read with the one before it:
    "The US estimates 10,000 North Korean troops are in Russia. Seoul believes the number
    has increased to 11,000."."""
    wanted = content_terms(question) - content_terms("how many much number figure")
    if not wanted:
        return []
    out: list[_Stated] = []
    seen: set[tuple[str, str]] = set()
    for p in passages:
        before: set[str] = set()
        for a, b in split_sentences(p.text):
            sentence = p.text[a:b]
            terms = content_terms(sentence)
            context = terms | before if _REFERS_BACK.search(sentence) else terms
            about = len(wanted & context) >= _ABOUT * len(wanted)
            before = terms
            if not about:
                continue
            for value, key in _counts(sentence):
                if (key, p.chunk.doc_id) not in seen:
                    seen.add((key, p.chunk.doc_id))
                    out.append(_Stated(value, key, p, " ".join(sentence.split())))
    return out


def quantity_of(question: str) -> str:
    m = _QUANTITY_WORDS.search(question)
    return m.group(1).strip() if m else "figure"


def differing_figures(question: str, answer_text: str, shown: list[Passage]) -> list[_Stated]:
    """The figures the shown passages give for what a "how many" question asks, one per value,
    newest article first; empty unless they differ and the answer gave one of them (and
    unless the question asks for one source's figure: "according to the Pentagon")."""
    if not ASKS_QUANTITY.search(question) or _ATTRIBUTED.search(question):
        return []
    stated = _stated(question, shown)
    answered = {key for _, key in _counts(strip_markers(answer_text))}
    values = {s.key for s in stated}
    if len(values) < 2 or not values & answered:
        return []
    by_value: dict[str, _Stated] = {}
    for s in sorted(stated, key=lambda s: s.passage.meta.published or date.min, reverse=True):
        by_value.setdefault(s.key, s)
    return list(by_value.values())


def superseded(answer_text: str, stated: list[_Stated]) -> _Stated | None:
    """The newest figure, when the answer gave only figures of older articles: a revised
    count ("rises to 19", then "23") is answered with the newest report, never an older one."""
    newest = stated[0]  # differing_figures orders them newest first
    answered = {key for _, key in _counts(strip_markers(answer_text))}
    older = [s for s in stated[1:] if s.key in answered]
    if newest.key in answered or not older or not newest.passage.meta.published:
        return None
    if all(s.passage.meta.published and s.passage.meta.published < newest.passage.meta.published for s in older):
        return newest
    return None


def changing_fact(question: str) -> bool:
    """Whether the question asks for a fact that changes with time (a count, an office holder)."""
    return bool(_CHANGING.search(question))


def as_of(passages: list[Passage]) -> str:
    """"As of March 6, 2025 (The Harbour Courier): " for the newest dated passage, or ""."""
    dated = [p for p in passages if p.meta.published]
    if not dated:
        return ""
    newest = max(dated, key=lambda p: p.meta.published)  # type: ignore[arg-type,return-value]
    return f"As of {when(newest.meta.published)}" + (f" ({newest.meta.source})" if newest.meta.source else "") + ": "


def figure_rows(question: str, stated: list[_Stated], marker_of: dict[str, int]) -> list[Figure]:
    quantity = quantity_of(question)
    return [Figure(quantity, s.value, s.passage.meta.source, s.passage.meta.published, marker_of[s.passage.chunk.chunk_id])
            for s in stated]


def figures_sentence(stated: list[_Stated], marker_of: dict[str, int]) -> str:
    """"Figures differ by source: 23 (The Harbour Courier, March 6, 2025) [1]; 19 (…) [2]."."""
    parts = [f"{s.value} ({_who(s.passage)}) [{marker_of[s.passage.chunk.chunk_id]}]" for s in stated]
    return "Figures differ by source: " + "; ".join(parts) + "."


def timeline(question: str, passages: list[Passage], first_marker: int = 1) -> list[tuple[TimelineEntry, Passage]]:
    """One dated event per article, in date order: the sentence of each dated passage most about
    the question (ties: the first). Undated passages cannot be placed on a timeline."""
    wanted = content_terms(question) - content_terms("timeline how did has have change changed evolve")
    best: dict[str, tuple[date, str, Passage]] = {}
    for p in passages:
        if not p.meta.published:
            continue
        sentences = [p.text[a:b] for a, b in split_sentences(p.text)]
        if not sentences:
            continue
        top = max(sentences, key=lambda s: len(wanted & content_terms(s)))
        if not wanted & content_terms(top) or p.chunk.doc_id in best:
            continue
        best[p.chunk.doc_id] = (p.meta.published, _MARKUP.sub("", " ".join(top.split())), p)
    ordered = sorted(best.values(), key=lambda e: e[0])
    return [(TimelineEntry(day, text, p.meta.source, first_marker + i), p) for i, (day, text, p) in enumerate(ordered)]


def changed(draft: Draft) -> bool:
    """Whether a timeline question found at least two dated events to put in order."""
    return len(timeline(draft.standalone, draft.passages)) > 1
