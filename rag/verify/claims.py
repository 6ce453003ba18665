"""An answer cut into claims: sentences, their clauses, and the passage markers each cites.

Small models cite loosely: "According to passage [1], …", a lone "[1]" after the
sentence, markers before the text they cite, "This is stated in passage 2." All of
these become plain (clause, markers) pairs here, so the rules only see claims.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..chunking import split_sentences
from ..text import MARKER, marker_numbers

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


@dataclass(frozen=True)
class Claim:
    """A clause of the answer and the passage numbers (1-based) it cites."""

    text: str
    markers: tuple[int, ...]


def is_decline(text: str) -> bool:
    return bool(_DECLINE.search(text))


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
            claims.append(Claim(sentence[g.end() : nxt.start() if nxt else len(sentence)], marker_numbers(g.group())))
        return claims
    pos = 0
    for g in groups:
        claims.append(Claim(sentence[pos : g.start()], marker_numbers(g.group())))
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
        talk = tuple(n for m in _SOURCE_TALK.finditer(raw) for n in marker_numbers(m.group("refs") or ""))
        raw = _SOURCE_TALK.sub("", raw).strip(" ,")
        body = MARKER.sub("", raw).strip(" ,")
        markers = tuple(n for group in MARKER.findall(raw) for n in marker_numbers(group)) + talk
        if _META.match(body) or not re.search(r"\w", body):
            if sentences:
                _extend_last(sentences, markers)
            else:
                pending += markers
            continue
        lead = _LEADING_MARKERS.match(raw)
        if lead and sentences and re.search(r"\]\W*$", raw):
            # "… 10,000. [1] Seoul said 11,000 [2]." — the first group closes the previous sentence.
            _extend_last(sentences, marker_numbers(lead.group()))
            raw = raw[lead.end():]
        clauses = split_sentence(raw[0].upper() + raw[1:])
        if pending or talk:
            clauses[0] = Claim(clauses[0].text, pending + talk + clauses[0].markers)
            pending = ()
        sentences.append(clauses)
    return sentences
