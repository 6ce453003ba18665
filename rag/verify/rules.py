"""The named rules a claim must pass against the passage it cites.

Each rule is a function ``(claim, evidence) -> bool`` registered under a name in
``RULES``; its docstring says what it catches, with an example. ``rag eval
--without NAME`` switches one off to measure what it is worth. The rules are
written for any English news, not for one corpus: whole words, real stems,
names in any script, numbers in digits or words.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from ..chunking import split_sentences
from ..text import MARKER, WORD, YEAR, normalize_numbers, same_word

RULES: dict[str, str] = {}  # name -> what the rule catches (its docstring)
_CLAIM_RULES: list[tuple[str, Callable[[str, Evidence], bool]]] = []


def register(name: str, doc: str) -> None:
    """Name a rule that lives in the verification flow rather than in a function here."""
    RULES[name] = " ".join(doc.split())


def claim_rule(name: str) -> Callable:
    def add(fn: Callable[[str, Evidence], bool]) -> Callable[[str, Evidence], bool]:
        register(name, fn.__doc__ or "")
        _CLAIM_RULES.append((name, fn))
        return fn
    return add


@dataclass(frozen=True)
class Evidence:
    """A cited passage and what else a claim may lean on."""

    text: str
    article: str = ""  # the whole article the passage is from ("" = only the passage)
    premise: frozenset[str] = frozenset()  # the question's own words, lowercased
    about: str = ""  # the article's outlet and date as the prompt showed them ("TechCrunch, October 6, 2023")
    years: frozenset[str] = frozenset()  # the years the question names ("the 2010 World Cup")
    shown: str = ""  # everything the model was shown: every passage's article and article line
    _words: list[str] = field(default_factory=list, compare=False, repr=False)

    @property
    def haystack(self) -> str:
        """The passage and its article line: a claim may name the outlet or the date."""
        return normalize_numbers(f"{self.about}\n{self.text}").lower()

    def words(self) -> list[str]:
        if not self._words:
            self._words.extend({w.lower() for w in WORD.findall(f"{self.about}\n{self.text}")})
        return self._words


def supports(claim: str, evidence: Evidence, off: frozenset[str] = frozenset()) -> bool:
    """Whether every rule not switched off accepts ``claim`` against ``evidence``."""
    return all(check(claim, evidence) for name, check in _CLAIM_RULES if name not in off)


# --- numbers ---------------------------------------------------------------------------------

# A number with its scale: "$10 billion" is not supported by "10 per cent". Digits written on
# to letters ("Q3", "G7", "A380") are part of a name, which the names rule checks.
_QUANTITY = re.compile(r"(?<![^\W\d_])(\d+(?:[.,]\d+)*)\s*(%|(?:per ?cent|percent|mn|million|bn|billion|trillion)\b)?",
                       re.IGNORECASE)
_SCALE = {"per cent": "%", "percent": "%", "mn": "million", "bn": "billion"}
_VAGUE_NUMBER = (r"(?:several|a few|a couple(?: of)?)\s+(?:dozen|hundred|thousand|million)|"
                 r"(?:dozens|hundreds|thousands|millions)\s+of")
_VAGUE = re.compile(rf"\b(?:{_VAGUE_NUMBER})\b", re.IGNORECASE)
# The units of each dimension; area comes before length ("sq km" is not "km").
UNITS = {
    "area": r"(?:sq\.?|square)\s*(?:km|kilomet(?:re|er)s?|miles?|met(?:re|er)s?)|km2|km²|hectares?|acres?",
    "length": r"km|kilomet(?:re|er)s?|miles?|met(?:re|er)s?|feet|foot|ft|yards?",
    "time": r"seconds?|minutes?|mins?|hours?|hrs?|days?|weeks?|months?|years?",
    "mass": r"tonnes?|tons?|kg|kilograms?|pounds?|lbs?",
}
MEASURE = re.compile(rf"(\d+(?:[.,]\d+)*|{_VAGUE_NUMBER})[\s-]*(?:" +
                      "|".join(f"(?P<{dim}>{units})" for dim, units in UNITS.items()) + r")\b", re.IGNORECASE)


def quantities(text: str) -> set[str]:
    out = set()
    for number, scale in _QUANTITY.findall(normalize_numbers(text)):
        scale = (scale or "").lower()
        out.add(number.rstrip(".,") + _SCALE.get(scale, scale))
    return out


def measures(text: str) -> set[tuple[str, str]]:
    """(number, dimension) pairs: {("3000", "area")} for "3,000 sq km"."""
    return {(" ".join(m.group(1).lower().rstrip(".,").split()), m.lastgroup or "")
            for m in MEASURE.finditer(normalize_numbers(text))}


@claim_rule("numbers")
def _numbers(claim: str, evidence: Evidence) -> bool:
    """Every number a claim states, with its scale, is in the cited passage: "11,000 troops"
    is not supported by a passage saying 10,000, nor "$10 billion" by "10 per cent"."""
    found = quantities(evidence.haystack)
    return all(n in found for n in quantities(MARKER.sub(" ", claim)))


@claim_rule("measures")
def _same_dimension(claim: str, evidence: Evidence) -> bool:
    """A number with a unit measures the same thing in the passage: "3,000 square kilometres"
    is not supported by "3,000 of them", nor "73 minutes" by "73 km"."""
    return measures(MARKER.sub(" ", claim)) <= measures(evidence.haystack)


@claim_rule("vague_quantities")
def _vague(claim: str, evidence: Evidence) -> bool:
    """A quantity in words is in the passage too: "several hundred square kilometres" is not
    supported by "some 600 sq km", nor "hundreds of officers" by "500 officers"."""
    haystack = " ".join(evidence.haystack.split())
    return all(" ".join(v.lower().split()) in haystack for v in _VAGUE.findall(claim))


# --- names ----------------------------------------------------------------------------------

# Capitalised words that start sentences or clauses without naming anything.
_COMMON = frozenset(
    """a an the this that these those there it its he she they we i you his her their our
    and but or so yet nor if when while as at by for from in into of on to with without about
    above after before around up over under near some many most more several all both each
    according however also meanwhile although though because since no yes not only one two
    three four five six seven eight nine ten hundred thousand million
    what who whom which where why how estimates estimate officials official reports report
    around approximately roughly nearly almost least sources source passage passages article articles
    monday tuesday wednesday thursday friday saturday sunday""".split()
)


def names(text: str) -> set[str]:
    """The capitalised words a claim uses to name people, places and things."""
    plain = MARKER.sub(" ", text)
    out = {w.lower().strip("'’-") for w in WORD.findall(plain) if w[0].isupper()}
    return {n for n in out if len(n) > 1 and n not in _COMMON}


def name_phrases(text: str) -> list[frozenset[str]]:
    """The names a text uses, each run of capitalised words kept together: "Brandon Maxwell"
    and "Maxwell Award" are two names, though both hold "Maxwell"."""
    plain = MARKER.sub(" ", text)
    runs: list[list[str]] = []
    end = None
    for m in WORD.finditer(plain):
        if not m.group()[0].isupper():
            end = None
            continue
        if end is not None and not plain[end:m.start()].strip():
            runs[-1].append(m.group())
        else:
            runs.append([m.group()])
        end = m.end()
    return [p for p in (frozenset(names(" ".join(run))) for run in runs) if p]


def _mentions(words: list[str], name: str) -> bool:
    return any(same_word(name, w) for w in words)


@claim_rule("names")
def _names(claim: str, evidence: Evidence) -> bool:
    """Every name a claim states is in the cited passage, as a whole word up to its ending
    ("Koreans" is "Korea"; "Austin" is not "Australia"); a compound ("the Blinken-Yermak
    meeting") when each part is. A name the question itself used may instead be elsewhere in
    the passage's article (asked about "the North Korean missile", a passage may say "the
    missile"), or, when the passage's own text states something of the claim, anywhere shown
    (asked what "both Reuters and AP" reported, one passage names neither). The passage's own
    text must state something of a claim that names anything: an article that says "PWNED"
    cannot lend it to another passage, nor an article line its outlet's name to any claim."""
    words = evidence.words()
    own = WORD.findall(evidence.article.lower()) if evidence.article else words
    said = {w.lower() for w in WORD.findall(evidence.text)}
    anchored = any(_mentions(list(said), n) for n in names(claim)) or \
        bool(quantities(MARKER.sub(" ", claim)) & quantities(evidence.text))
    shown = WORD.findall(evidence.shown.lower()) if anchored and evidence.shown else own

    def found(name: str) -> bool:
        if _mentions(words, name):
            return True
        asked = any(same_word(name, p) for p in evidence.premise)
        return asked and (_mentions(own, name) or _mentions(shown, name))

    if names(claim) and not anchored:
        return False  # only the article line names it: "The New York Times led the department [1]"
    return all(found(n) or ("-" in n and all(found(part) for part in n.split("-") if len(part) > 1))
               for n in names(claim))


# --- descriptors ----------------------------------------------------------------------------

_COMPASS_PLACE = re.compile(r"\b(north|south|east|west)(?:ern)?[\s-]+([a-z]{4,})", re.IGNORECASE)
_FULL_NAME = re.compile(r"\b[A-Z][\w'’\-]+(?:\s+[A-Z][\w'’\-]+)+")  # "Kim Yong-hyun", "Lloyd Austin"
_TITLE_REACH = 60  # characters before a name that can hold its title ("South Korean Defense Minister")


def _places(text: str) -> list[tuple[str, str]]:
    """[("north", "korea")] for "North Korea's", [("north", "korean")] for "North Korean", in order."""
    return [(d.lower(), p.lower()) for d, p in _COMPASS_PLACE.findall(text)]


@claim_rule("compass_places")
def _compass(claim: str, evidence: Evidence) -> bool:
    """A person keeps the compass place the passage gives them: "North Korea's defence minister
    Kim Yong-hyun" is not supported by a passage that, every time it names him, calls him
    "South Korean Defense Minister Kim Yong-hyun". Only the nearest place before the name is
    his title ("South Korean officials said North Korean leader Kim Jong Un" makes Kim North Korean)."""
    claimed = _places(claim)
    if not claimed:
        return True

    def contradicts(title: tuple[str, str]) -> bool:  # the same place, another compass point
        same_place = [d for d, p in claimed if same_word(p, title[1])]
        return bool(same_place) and title[0] not in same_place

    for name in _FULL_NAME.findall(MARKER.sub(" ", claim)):
        if _places(name):
            continue  # the place itself, not a person
        titles = [_places(evidence.text[max(0, m.start() - _TITLE_REACH):m.start()])[-1:]
                  for m in re.finditer(re.escape(name), evidence.text, re.IGNORECASE)]
        if titles and all(t and contradicts(t[0]) for t in titles):
            return False
    return True


# --- what the question asked ------------------------------------------------------------------


def new_names(claim: str, premise: frozenset[str]) -> list[str]:
    """The names a claim uses that the question (``premise``, its lowercased words) did not."""
    return [n for n in names(claim) if not any(same_word(n, p) for p in premise)]


def _new_facts(claim: str, evidence: Evidence) -> list[str]:
    """What the claim adds to the question: its numbers, and names the question did not use."""
    plain = MARKER.sub(" ", claim)
    facts = [n for n in quantities(plain) if n not in evidence.years]
    return facts + new_names(claim, evidence.premise)


_RECORD = re.compile(r"\s[;|]\s|;\s")


@claim_rule("asked_year")
def _asked_year(claim: str, evidence: Evidence) -> bool:
    """A claim answers a question about a year only from a passage about that year: the
    passage or its article's date names the year, and the sentence that states the claim's
    answer does not tie it to another year. Asked about "the 2010 World Cup", "Germany"
    from "World Cup 2014 winner - Germany" (beside "World Cup 2010 winner - Spain") is no answer."""
    if not evidence.years:
        return True
    facts = _new_facts(claim, evidence)
    for a, b in split_sentences(evidence.text):
        for record in _RECORD.split(evidence.text[a:b]):  # a list's entries: "2020, Naomi Osaka ; 2019, …"
            years = set(YEAR.findall(record))
            if years and not years & evidence.years and any(states(record, f) for f in facts):
                return False
    return any(y in evidence.haystack for y in evidence.years)


def states(sentence: str, fact: str) -> bool:
    if fact[0].isdigit():
        return fact in quantities(sentence)
    return _mentions([w.lower() for w in WORD.findall(sentence)], fact)


_FORMER = re.compile(r"\b(?:former|ex-|one-time|onetime|erstwhile|outgoing|late|then-)", re.IGNORECASE)
_PRESENT = re.compile(r"\b(?:is|are|currently|current|now|serves as|remains)\b", re.IGNORECASE)


@claim_rule("former_titles")
def _former(claim: str, evidence: Evidence) -> bool:
    """A claim that someone holds a title now is not supported by a passage that calls them its
    former holder: "Sepp Blatter is the president of FIFA" is no answer from "Sepp Blatter, the
    former president of FIFA" (nor from "ex-president", "outgoing", "late", "then-")."""
    if not _PRESENT.search(claim) or _FORMER.search(claim):
        return True
    for name in _FULL_NAME.findall(MARKER.sub(" ", claim)):
        spots = [m.start() for m in re.finditer(re.escape(name), evidence.text)]
        around = [evidence.text[max(0, i - _TITLE_REACH):i + len(name) + _TITLE_REACH] for i in spots]
        if around and all(_FORMER.search(context) for context in around):
            return False
    return True


# --- helpers the verification flow uses ------------------------------------------------------


def has_facts(claim: str) -> bool:
    """Whether a claim states anything checkable: a number or a name."""
    return bool(quantities(MARKER.sub(" ", claim)) or names(claim))


def mostly_from(passage: str, claim: str, share: float = 0.7) -> bool:
    """Whether most of a claim's longer words are in the passage: it was copied from there."""
    words = {w.lower() for w in WORD.findall(claim) if len(w) > 3}
    if len(words) < 3:
        return False
    haystack = passage.lower()
    return sum(w in haystack for w in words) / len(words) >= share
