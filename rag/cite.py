"""Check the model's citations against the passages, and repair or drop the bad ones.

A small model cites loosely: markers that point at no passage, a right fact with
the wrong number, or no marker at all. Every claim is checked: the numbers and
names it states must occur in the passage it cites. A failing citation is moved
to a passage that does support the claim, if one was retrieved; a claim that no
passage supports is removed, so nothing unverified reaches the user.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from .chunking import split_sentences
from .retrieve import Passage, normalize_numbers

MARKER = re.compile(r"\[\s*(\d+(?:\s*[,;]\s*\d+)*)\s*\]")  # [1], [2, 3]: shared with prompt
# A number with its scale: "$10 billion" is not supported by "10 per cent".
_QUANTITY = re.compile(r"(\d+(?:[.,]\d+)*)\s*(%|(?:per ?cent|percent|mn|million|bn|billion|trillion)\b)?",
                       re.IGNORECASE)
_SCALE = {"per cent": "%", "percent": "%", "mn": "million", "bn": "billion"}
# A quantity in words is a figure too: "several hundred square kilometres" is not
# supported by "some 600 sq km", nor by "several hundred special forces".
_VAGUE_NUMBER = (r"(?:several|a few|a couple(?: of)?)\s+(?:dozen|hundred|thousand|million)|"
                 r"(?:dozens|hundreds|thousands|millions)\s+of")
_VAGUE = re.compile(rf"\b(?:{_VAGUE_NUMBER})\b", re.IGNORECASE)
# A number with a unit of measure: "3,000 square kilometres" is not supported by "3,000
# of them", nor "73 minutes" by "73 km". Area comes before length ("sq km" is not "km").
_MEASURE = re.compile(
    rf"(\d+(?:[.,]\d+)*|{_VAGUE_NUMBER})[\s-]*(?:"
    r"(?P<area>(?:sq\.?|square)\s*(?:km|kilomet(?:re|er)s?|miles?|met(?:re|er)s?)|km2|km²|hectares?)|"
    r"(?P<length>km|kilomet(?:re|er)s?|miles?|met(?:re|er)s?|feet|foot|ft)|"
    r"(?P<time>seconds?|minutes?|mins?|hours?|hrs?|days?|weeks?|months?|years?)|"
    r"(?P<mass>tonnes?|tons?|kg|kilograms?))\b", re.IGNORECASE)
_WORD = re.compile(r"[A-Za-z][A-Za-z'’\-]+")
# A compass word is part of a place's name: "North Korea's defence minister Kim Yong-hyun"
# is not supported by "South Korean Defense Minister Kim Yong-hyun".
_COMPASS_PLACE = re.compile(r"\b(north|south|east|west)(?:ern)?[\s-]+([a-z]{4,})", re.IGNORECASE)
_FULL_NAME = re.compile(r"\b[A-Z][\w'’\-]+(?:\s+[A-Z][\w'’\-]+)+")  # "Kim Yong-hyun", "Lloyd Austin"
_TITLE_REACH = 60  # characters before a name that can hold its title ("South Korean Defense Minister")
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
# "According to passage [1], ..." and "(see passage 2)": the marker says it already.
# "… in both passage [1] and passage [2]" too.
_SOURCE_TALK = re.compile(r"\(?\b(according to|as (stated|mentioned|reported) in|see|from|in) (both )?(the )?passages?\s*"
                          r"(?P<refs>(?:\[\s*\d+\s*\]\s*|\d+\s*)"
                          r"(?:(?:,|and)\s*(?:passages?\s*)?(?:\[\s*\d+\s*\]|\d+)\s*)*)?\)?,?\s*",
                          re.IGNORECASE)
_META = re.compile(r"^(this|that|these|it|the) ?((information|figure|fact|number|detail|answer)?s? (is|are|was|were|can be) "
                   r"(found|stated|given|mentioned|provided|reported)\b[^.]*|\w+ (is|are|was|were) "
                   r"(stated|given|mentioned|reported))\s*\.?$", re.IGNORECASE)
_DECLINE = re.compile(
    r"(articles?|passages?|sources?|context|text|information)\b[^.]{0,40}\b(do(es)?n[’']?t|do(es)? not|"
    r"did not|didn[’']?t)\s+(say|state|mention|contain|provide|specify|include|answer)|"
    r"\b(no|not enough) information\b|\bnot (mentioned|stated|specified|provided)\b|\bcannot (be )?(answer|determine|find)",
    re.IGNORECASE,
)


_SHORT_REPLY = 4  # words: an uncited sentence this short is a reply ("Yes."), not a claim


@dataclass(frozen=True)
class Claim:
    """A clause of the answer and the passage numbers (1-based) it cites."""

    text: str
    markers: tuple[int, ...]


def is_decline(text: str) -> bool:
    return bool(_DECLINE.search(text))


def _quantities(text: str) -> set[str]:
    out = set()
    for number, scale in _QUANTITY.findall(text):
        scale = (scale or "").lower()
        out.add(number.rstrip(".,") + _SCALE.get(scale, scale))
    return out


def _measures(text: str) -> set[tuple[str, str]]:
    """(number, dimension) pairs: {("3000", "area")} for "3,000 sq km"."""
    return {(" ".join(m.group(1).lower().rstrip(".,").split()), m.lastgroup or "")
            for m in _MEASURE.finditer(normalize_numbers(text))}


def key_terms(text: str) -> tuple[set[str], set[str]]:
    """The numbers (with their scale) and the names a claim states: what a passage must contain to support it."""
    plain = normalize_numbers(MARKER.sub(" ", text))
    numbers = _quantities(plain)
    names = {w.lower().strip("'’-") for w in _WORD.findall(plain)
             if w[0].isupper() and w.lower().strip("'’-") not in _COMMON}
    return numbers, {n for n in names if len(n) > 1}


def _stem(word: str) -> str:
    """'Koreans' ~ 'Korean' ~ 'Korea'; 'Ukrainian' ~ 'Ukraine'."""
    return word[: max(4, len(word) - 3)]


def premise_stems(question: str) -> frozenset[str]:
    """Every word of the question, stemmed: what the user already said."""
    return frozenset(_stem(w.lower().strip("'’-")) for w in _WORD.findall(question))


def supports(passage_text: str, claim: str, premise: frozenset[str] = frozenset(), article: str = "") -> bool:
    """Numbers and new names must be in the passage itself. A name the question
    already used ("What altitude did the North Korean missile reach?") is the
    premise, not the claim: the passage may just say "the missile", so it is
    enough that the passage's article names it."""
    numbers, names = key_terms(claim)
    haystack = normalize_numbers(passage_text).lower()
    passage_numbers = _quantities(haystack)
    if any(n not in passage_numbers for n in numbers):
        return False
    if not _measures(MARKER.sub(" ", claim)) <= _measures(haystack):  # the number measures the same thing
        return False
    if any(" ".join(v.lower().split()) not in " ".join(haystack.split()) for v in _VAGUE.findall(claim)):
        return False
    if _misplaced(passage_text, claim):
        return False
    context = article.lower() if article else haystack

    def found(name: str) -> bool:
        return _stem(name) in haystack or (_stem(name) in premise and _stem(name) in context)

    # "the Blinken-Yermak meeting": a compound of names is there when each of them is.
    return all(found(n) or ("-" in n and all(found(part) for part in n.split("-") if len(part) > 1))
               for n in names)


def _compass_places(text: str) -> set[tuple[str, str]]:
    """{("north", "kore")} for "North Korea's" or "North Korean"."""
    return {(d.lower(), _stem(p.lower())) for d, p in _COMPASS_PLACE.findall(text)}


def _misplaced(passage_text: str, claim: str) -> bool:
    """Whether the claim puts a person in North X where the passage, every time it
    names them, puts them in South X (or East/West): the small model swaps them."""
    claimed = _compass_places(claim)
    if not claimed:
        return False
    places = {place for _, place in claimed}

    def contradicts(title: set[tuple[str, str]]) -> bool:  # "South Korean" where the claim says only "North Korea"
        return any(place in places and (direction, place) not in claimed for direction, place in title)

    for name in _FULL_NAME.findall(MARKER.sub(" ", claim)):
        if _compass_places(name):
            continue  # the place itself, not a person
        titles = [_compass_places(passage_text[max(0, m.start() - _TITLE_REACH):m.start()])
                  for m in re.finditer(re.escape(name), passage_text, re.IGNORECASE)]
        if titles and all(contradicts(t) for t in titles):
            return True
    return False


def _mostly_from(passage_text: str, claim: str, share: float = 0.7) -> bool:
    words = {w.lower() for w in _WORD.findall(claim) if len(w) > 3}
    if len(words) < 3:
        return False
    haystack = passage_text.lower()
    return sum(w in haystack for w in words) / len(words) >= share


def has_facts(claim: str) -> bool:
    numbers, names = key_terms(claim)
    return bool(numbers or names)


def _marker_numbers(group: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", group))


def split_sentence(sentence: str) -> list[Claim]:
    """Clauses of one sentence, each with the markers that cite it.

    "A said 10 [1], while B said 12 [2]." gives ("A said 10", [1]), (", while B said 12", [2]), (".", []).
    Small models sometimes put markers first ("[1] 10,000 [3] 11,000"); then each
    marker cites the text after it.
    """
    groups = list(re.finditer(r"(?:\s*\[\s*\d+(?:\s*[,;]\s*\d+)*\s*\])+", sentence))
    if not groups:
        return [Claim(sentence, ())]
    claims: list[Claim] = []
    if groups[0].start() == 0 or not sentence[: groups[0].start()].strip():  # markers first
        for g, nxt in zip(groups, groups[1:] + [None]):
            claims.append(Claim(sentence[g.end() : nxt.start() if nxt else len(sentence)], _marker_numbers(g.group())))
        return claims
    pos = 0
    for g in groups:
        claims.append(Claim(sentence[pos : g.start()], _marker_numbers(g.group())))
        pos = g.end()
    claims.append(Claim(sentence[pos:], ()))
    return claims


_LEADING_MARKERS = re.compile(r"^(?:\[\s*\d+(?:\s*[,;]\s*\d+)*\s*\]\s*)+")


def _extend_last(sentences: list[list[Claim]], markers: tuple[int, ...]) -> None:
    """Add markers to the last clause with words of the last sentence."""
    last = sentences[-1]
    i = max(j for j, c in enumerate(last) if re.search(r"\w", c.text) or j == 0)
    last[i] = Claim(last[i].text, last[i].markers + markers)


def split_answer(text: str) -> list[list[Claim]]:
    """Sentences as lists of clauses. A sentence that only points at a source
    ("This is stated in passage [1].", or a lone "[1]") lends its markers to the
    sentence before it; "According to passage [1]," is cut (the marker says it)."""
    sentences: list[list[Claim]] = []
    pending: tuple[int, ...] = ()
    for s, e in split_sentences(text):
        raw = text[s:e]
        talk = tuple(n for m in _SOURCE_TALK.finditer(raw) for n in _marker_numbers(m.group("refs") or ""))
        raw = _SOURCE_TALK.sub("", raw).strip(" ,")
        body = MARKER.sub("", raw).strip(" ,")
        markers = tuple(n for group in MARKER.findall(raw) for n in _marker_numbers(group)) + talk
        if _META.match(body) or not re.search(r"\w", body):
            if sentences:
                _extend_last(sentences, markers)
            else:
                pending += markers
            continue
        lead = _LEADING_MARKERS.match(raw)
        if lead and sentences and re.search(r"\]\W*$", raw):
            # "… 10,000. [1] Seoul said 11,000 [2]." — the first group closes the previous sentence.
            _extend_last(sentences, _marker_numbers(lead.group()))
            raw = raw[lead.end():]
        clauses = split_sentence(raw[0].upper() + raw[1:])
        if pending or talk:
            clauses[0] = Claim(clauses[0].text, pending + talk + clauses[0].markers)
            pending = ()
        sentences.append(clauses)
    return sentences


@dataclass(frozen=True)
class Verified:
    """The answer after checking: sentences of (clause, supporting passages 0-based)."""

    sentences: list[list[tuple[str, list[int]]]]
    declined: bool
    dropped: list[str]  # clauses removed because no passage supports them

    def render(self) -> tuple[str, list[int]]:
        """Text with markers renumbered 1..n by first use, and the passage index of each marker."""
        order: dict[int, int] = {}
        out = []
        for sentence in self.sentences:
            parts = []
            for clause, refs in sentence:
                marks = "".join(f"[{order.setdefault(i, len(order) + 1)}]" for i in refs)
                clause = re.sub(r"\s+([.,;:!?])", r"\1", clause)
                if marks:  # "… 10,000 [1]." rather than "… 10,000. [1]"
                    body, end = re.match(r"(.*?)([.!?]*)\s*$", clause, re.DOTALL).groups()
                    clause = f"{body.rstrip()} {marks}{end}"
                parts.append(clause)
            out.append(re.sub(r"(\])([.!?])[.!?]+", r"\1\2", "".join(parts).strip()))  # "D.C. [1]." → "D.C [1]."
        return " ".join(out), list(order)


def verify(text: str, passages: Sequence[Passage], question: str = "",
           articles: Sequence[str] | None = None) -> Verified:
    """Check every clause of ``text`` against ``passages``. ``question`` (with any
    earlier question of a follow-up) and the full text of each passage's article
    let a claim restate the question's own names (see ``supports``)."""
    texts = [p.text for p in passages]
    premise = premise_stems(question)
    contexts = list(articles) if articles is not None else texts

    def holds(i: int, claim: str) -> bool:
        return supports(texts[i], claim, premise, contexts[i])

    sentences: list[list[tuple[str, list[int]]]] = []
    dropped: list[str] = []
    for clauses in split_answer(text):
        whole = "".join(c.text for c in clauses)
        if is_decline(whole) and not any(c.markers for c in clauses):
            sentences.append([(MARKER.sub("", whole).strip(), [])])  # "The articles don't say ...": nothing to cite
            continue
        kept: list[tuple[str, list[int]]] = []
        for claim in clauses:
            cited = [m - 1 for m in dict.fromkeys(claim.markers) if 1 <= m <= len(texts)]  # invented markers vanish
            # A clause with no names or numbers is "supported" by anything, so it keeps a
            # marker only if its words are mostly in that passage (markers copied from an
            # article's own text must not become citations of unrelated passages).
            good = [i for i in cited if holds(i, claim.text)
                    and (has_facts(claim.text) or _mostly_from(texts[i], claim.text))]
            if good and not any(_mostly_from(texts[i], claim.text) for i in good):
                # A sentence copied from another passage is cited to that one: the names and
                # numbers of "10,000 troops are trained in eastern Russia" are in several passages.
                source = [j for j in range(len(texts)) if _mostly_from(texts[j], claim.text) and holds(j, claim.text)]
                good = source[:1] or good
            if not good and len(cited) > 1 and has_facts(claim.text) and supports(
                    " ".join(texts[i] for i in cited), claim.text, premise, " ".join(contexts[i] for i in cited)):
                good = cited  # a clause that combines facts from the passages it cites
            if not good and has_facts(claim.text):
                # Repair: the first retrieved passage that does hold the claim.
                good = [i for i in range(len(texts)) if holds(i, claim.text)][:1]
            if not good and not has_facts(claim.text):
                # A sentence copied from a passage without names or numbers ("This is normal
                # diplomacy.") still deserves its source.
                good = [i for i in range(len(texts)) if _mostly_from(texts[i], claim.text)][:1]
            if good or not has_facts(claim.text):
                kept.append((claim.text, good))  # connective text (", while", ".") has nothing to check
            else:
                dropped.append(claim.text.strip())
        words = len(_WORD.findall("".join(c for c, _ in kept)))
        if any(refs for _, refs in kept) or (0 < words <= _SHORT_REPLY and not dropped):
            sentences.append(kept)  # "Yes." or "No, it is not." before the cited sentence is kept
        elif words:
            # No passage holds it, yet it names nothing to check ("This tactic involves deploying
            # large numbers of troops"): it comes from the model's memory, so it goes.
            dropped.append("".join(c for c, _ in kept).strip())
    declined = not any(refs for sentence in sentences for _, refs in sentence)
    return Verified(sentences, declined, dropped)
