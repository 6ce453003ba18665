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

_MARKER = re.compile(r"\[\s*(\d+(?:\s*[,;]\s*\d+)*)\s*\]")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_WORD = re.compile(r"[A-Za-z][A-Za-z'’\-]+")
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
_DECLINE = re.compile(
    r"(articles?|passages?|sources?|context|text|information)\b[^.]{0,40}\b(do(es)?n[’']?t|do(es)? not|"
    r"did not|didn[’']?t)\s+(say|state|mention|contain|provide|specify|include|answer)|"
    r"\b(no|not enough) information\b|\bnot (mentioned|stated|specified|provided)\b|\bcannot (be )?(answer|determine|find)",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Claim:
    """A piece of the answer and the passage numbers (1-based) it cites."""

    text: str
    markers: tuple[int, ...]


def is_decline(text: str) -> bool:
    return bool(_DECLINE.search(text))


def key_terms(text: str) -> tuple[set[str], set[str]]:
    """The numbers and the names a claim states: what a passage must contain to support it."""
    plain = normalize_numbers(_MARKER.sub(" ", text))
    numbers = {n.rstrip(".,") for n in _NUMBER.findall(plain)}
    names = {w.lower().strip("'’-") for w in _WORD.findall(plain)
             if w[0].isupper() and w.lower().strip("'’-") not in _COMMON}
    return numbers, {n for n in names if len(n) > 1}


def _stem(word: str) -> str:
    """'Koreans' ~ 'Korean' ~ 'Korea'; 'Ukrainian' ~ 'Ukraine'."""
    return word[: max(4, len(word) - 3)]


def supports(passage_text: str, claim: str) -> bool:
    numbers, names = key_terms(claim)
    haystack = normalize_numbers(passage_text).lower()
    passage_numbers = {n.rstrip(".,") for n in _NUMBER.findall(haystack)}
    if any(n not in passage_numbers for n in numbers):
        return False
    return all(_stem(n) in haystack for n in names)


def has_facts(claim: str) -> bool:
    numbers, names = key_terms(claim)
    return bool(numbers or names)


def split_claims(text: str) -> list[Claim]:
    """Sentences with their markers; a marker placed after the full stop
    ("... Russia. [1]") belongs to the sentence before it."""
    claims: list[Claim] = []
    for s, e in split_sentences(text):
        sentence = text[s:e]
        markers = tuple(int(n) for group in _MARKER.findall(sentence) for n in re.split(r"[,;]", group))
        body = _MARKER.sub("", sentence).strip()
        if not re.search(r"\w", body) and claims:  # only markers: attach to the previous sentence
            prev = claims[-1]
            claims[-1] = Claim(prev.text, prev.markers + markers)
            continue
        body = re.sub(r"\s+([.,;:!?])", r"\1", body)
        claims.append(Claim(body, markers))
    return claims


@dataclass(frozen=True)
class Verified:
    """The answer after checking: each kept claim with the passages (0-based) that support it."""

    claims: list[tuple[str, list[int]]]
    declined: bool
    dropped: list[str]  # claims removed because no passage supports them


def verify(text: str, passages: Sequence[Passage]) -> Verified:
    texts = [p.text for p in passages]
    kept: list[tuple[str, list[int]]] = []
    dropped: list[str] = []
    for claim in split_claims(text):
        if is_decline(claim.text) and not claim.markers:
            kept.append((claim.text, []))  # "The articles don't say ...": nothing to cite
            continue
        cited = [m - 1 for m in dict.fromkeys(claim.markers) if 1 <= m <= len(texts)]  # invented markers vanish
        good = [i for i in cited if supports(texts[i], claim.text)]
        if not good and has_facts(claim.text):
            # Repair: the first retrieved passage that does hold the claim.
            good = [i for i in range(len(texts)) if supports(texts[i], claim.text)][:1]
        if good:
            kept.append((claim.text, good))
        elif has_facts(claim.text) or cited:
            dropped.append(claim.text)
        else:
            kept.append((claim.text, []))  # connective text ("It is unclear when.") with nothing to check
    declined = not any(refs for _, refs in kept)
    return Verified(kept, declined, dropped)
