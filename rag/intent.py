"""What a question asks, read from its words: its form, the outlets and years it names,
the dates it restricts the search to, and whether it asks about order in time.

    >>> i = read("Did TechCrunch report it before The Verge did?", ["TechCrunch", "The Verge"], date(2023, 11, 1))
    >>> i.yes_no, [sorted(o) for o in i.outlets], i.order
    (True, [['TechCrunch'], ['The Verge']], 'before')

Relative dates ("last week", "before October 30") resolve against ``today``: the
newest article in the corpus unless the caller gives a date.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from dateutil import parser as dateparser

from .answer import Window
from .text import YEAR

_YES_NO = re.compile(r"^\W*(is|are|was|were|do|does|did|has|have|had|can|could|will|would|should)\b", re.I)
_LATEST = re.compile(r"\b(latest|most recent|newest|currently|current|now|these days|as of today)\b", re.I)
_TIMELINE = re.compile(r"\b(timeline|chronology|how (?:did|has|have) .{3,80}? (?:change|evolve|develop|grow|rise|fall)d?)\b",
                       re.I)
_ORDER = re.compile(r"\b(before|prior to|earlier than|ahead of|after|later than|following|subsequent to)\b", re.I)
_MONTHS = (r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|Sept?(?:ember)?|"
           r"Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\.?")
DAY = (rf"(?:{_MONTHS}\s+\d{{1,2}}(?:st|nd|rd|th)?(?:,?\s+\d{{4}})?|\d{{1,2}}(?:st|nd|rd|th)?\s+{_MONTHS}(?:,?\s+\d{{4}})?|"
        r"\d{4}-\d{2}-\d{2})")
# Words that set the dates of the reports searched (not of the events reported).
_BOUND = re.compile(rf"\b(?P<word>before|prior to|until|up to|after|since|from)\s+(?:the\s+)?(?P<day>{DAY})", re.I)
_BETWEEN = re.compile(rf"\bbetween\s+(?P<a>{DAY})\s+and\s+(?P<b>{DAY})", re.I)
_PUBLISHED_IN = re.compile(rf"\b(?:published|reported|written|released|articles?|news|coverage|reports?)\s+"
                           rf"(?:on|in|from)\s+(?P<when>{DAY}|{_MONTHS}\s+\d{{4}}|\d{{4}})\b", re.I)
# Lower case (a sentence may open with "Last"): "Business Today" is an outlet, not a date.
_RELATIVE = re.compile(r"\b([Ll]ast|[Pp]ast|[Tt]his|[Pp]revious)\s+(week|month|year)\b|\b(yesterday|today)\b")


@dataclass(frozen=True)
class Intent:
    yes_no: bool  # "Did …?", "Is …?": answered yes or no
    outlets: tuple[frozenset[str], ...]  # each outlet named, as the index spells it (one name may fit several)
    years: frozenset[int]  # years named ("the 2010 World Cup")
    window: Window | None  # dates of the reports searched, set by the question's words
    order: str | None  # "before" or "after": whether one report or event came before another
    latest: bool  # "latest", "most recent", "currently": the newest articles first
    timeline: bool  # "timeline of …", "how did … change"
    days: int = 0  # distinct days the question names ("the article published on 2023-10-20 and the one on …")

    @property
    def multi_part(self) -> bool:
        """A yes/no question about several reports (outlets, an order in time, or reports of
        one outlet on two named days)."""
        return self.yes_no and (len(self.outlets) > 1 or (bool(self.outlets) and (self.order is not None or
                                                                                    self.days > 1)))


def _forms(source: str) -> list[str]:
    """A source's name and its short form: "The Independent - Sports" is also "The Independent"."""
    short = re.split(r"\s+[-|–—:]\s+", source)[0].strip()
    return [source] + ([short] if short != source and len(short) > 2 else [])


def find_outlets(question: str, sources: Iterable[str]) -> tuple[frozenset[str], ...]:
    """Outlets the question names, in order of mention; a name is matched as written (case
    and word boundaries: "The Age" is an outlet, "at the age of 16" is not)."""
    return tuple(names for _, _, names in outlet_mentions(question, sources))


def outlet_mentions(question: str, sources: Iterable[str]) -> list[tuple[int, int, frozenset[str]]]:
    """(start, end, outlets) of each outlet named in the question, in order."""
    spans: list[tuple[int, int, str]] = []
    for source in {s for s in sources if s}:
        for form in _forms(source):
            for m in re.finditer(rf"(?<!\w){re.escape(form)}(?!\w)", question):
                spans.append((m.start(), m.end(), source))
    spans.sort(key=lambda s: (s[0], -(s[1] - s[0])))
    mentions: list[tuple[int, int, set[str]]] = []
    for start, end, source in spans:
        if mentions and start < mentions[-1][1]:  # inside or the same as the last mention
            if (start, end) == mentions[-1][:2]:
                mentions[-1][2].add(source)
            continue
        mentions.append((start, end, {source}))
    return [(start, end, frozenset(names)) for start, end, names in mentions]


def day_of(text: str, today: date) -> date | None:
    """A date from words; a month and day without a year is the latest such day up to ``today``."""
    try:
        parsed = dateparser.parse(text.replace(".", " "), default=datetime(today.year, 1, 1)).date()
    except (ValueError, OverflowError):
        return None
    if not re.search(r"\d{4}", text) and parsed > today:
        parsed = parsed.replace(year=parsed.year - 1)
    return parsed


def _month_or_year(text: str, today: date) -> tuple[date, date] | None:
    text = text.strip()
    if re.fullmatch(r"\d{4}", text):
        return date(int(text), 1, 1), date(int(text), 12, 31)
    if m := re.fullmatch(rf"({_MONTHS})\s+(\d{{4}})", text, re.I):
        first = day_of(f"{m.group(1)} 1 {m.group(2)}", today)
        if first:
            after = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
            return first, after - timedelta(days=1)
    day = day_of(text, today)
    return (day, day) if day else None


def _days(question: str, today: date) -> set[date]:
    return {d for m in re.finditer(DAY, question) if (d := day_of(m.group(), today))}


def _window(question: str, today: date) -> Window | None:
    if m := _BETWEEN.search(question):
        a, b = day_of(m["a"], today), day_of(m["b"], today)
        if a and b:
            return Window(min(a, b), max(a, b), m.group())
    days = _days(question, today)
    if len(days) > 1 and (m := _PUBLISHED_IN.search(question)) and m["when"] and re.fullmatch(DAY, m["when"]):
        return Window(min(days), max(days), m.group())  # "published on A … the one on B": both reports
    if m := _PUBLISHED_IN.search(question):
        if span := _month_or_year(m["when"], today):
            return Window(span[0], span[1], m.group())
    since = until = None
    phrases = []
    for m in _BOUND.finditer(question):
        day = day_of(m["day"], today)
        if day is None:
            continue
        word = m["word"].lower()
        if word in ("before", "prior to"):
            until = day - timedelta(days=1)
        elif word in ("until", "up to"):
            until = day
        elif word == "after":
            since = day + timedelta(days=1)
        else:
            since = day
        phrases.append(m.group())
    if phrases:
        return Window(since, until, " and ".join(phrases))
    if m := _RELATIVE.search(question):
        word = (m.group(2) or m.group(3)).lower()
        if word in ("today", "yesterday"):
            day = today - timedelta(days=word == "yesterday")
            return Window(day, day, m.group())
        span = {"week": 7, "month": 31, "year": 366}[word]
        return Window(today - timedelta(days=span - 1), today, m.group())
    return None


def read(question: str, sources: Iterable[str] = (), today: date | None = None) -> Intent:
    """The intent of ``question`` over a corpus with these outlets, relative dates resolved
    against ``today`` (no window can be set without it)."""
    outlets = find_outlets(question, sources)
    window = _window(question, today) if today else None
    order = None
    if m := _ORDER.search(question):
        order = "before" if m.group(1).lower() in ("before", "prior to", "earlier than", "ahead of") else "after"
    years = frozenset(int(y) for y in YEAR.findall(question))
    days = len(_days(question, today or date.today()))
    return Intent(bool(_YES_NO.search(question)), outlets, years, window, order, bool(_LATEST.search(question)),
                  bool(_TIMELINE.search(question)), days)
