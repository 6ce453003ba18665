"""Yes/no questions about several reports, answered in parts.

"Did TechCrunch report X before The Verge reported Y?" needs two articles, and a
small model reading both at once mostly says "yes". So the question is cut into
parts, one per report it names (an outlet, or a publication date); each part finds
its own passage and is checked on its own (the model weighs "Yes" against "No" for
one passage and one claim); dates are compared in code; and the answer is composed
from the parts, each cited:

    No. Fortune, November 18, 2023: "But it was ChatGPT's explosion … that thrust
    Altman into the spotlight" [1]. TechCrunch, November 18, 2023: "…" [2].
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import date
from typing import TYPE_CHECKING

from .chunking import split_sentences
from .generate import says_yes
from .intent import DAY, day_of, outlet_mentions
from .retrieve import Passage
from .text import content_terms

if TYPE_CHECKING:
    from .engine import Engine
    from .steps import Draft

# Words that join the parts of a question about several reports: the strong ones first.
_JOIN = re.compile(r",?\s+(?:while|whereas|compared (?:to|with)|as compared to|than|before|after|in a way that|"
                   r"consistent with|between)\s+", re.IGNORECASE)
_WEAK_JOIN = re.compile(r",?\s+(?:and|or|with)\s+", re.IGNORECASE)
_DATED = re.compile(rf"\b(?:published|reported|report|article|piece|story|one)\s+(?:on|from|of|dated)\s+(?P<day>{DAY})",
                    re.IGNORECASE)
_BOUND = re.compile(rf"\b(?P<word>before|after|since|until)\s+(?P<day>{DAY})", re.IGNORECASE)
_LEAD = re.compile(r"^\W*(?:is|are|was|were|do|does|did|has|have|had|can|could|will|would)\s+", re.IGNORECASE)
_SUBORDINATE = re.compile(r"(?:before|after|prior to|following|subsequent to|earlier than|later than)\b", re.I)
_SAME = re.compile(r"\b(consistent|same|unchanged|agree|align|similar|remain(?:ed|s)?)\b", re.IGNORECASE)
_DIFFERENT = re.compile(r"\b(chang\w*|inconsisten\w*|differ\w*|dissimilar|contradict\w*|revis\w*)\b", re.IGNORECASE)
SYSTEM = "You check whether a news passage supports a statement. Answer with one word: Yes or No."


@dataclass(frozen=True)
class Part:
    """The words of the question about one report, and what identifies the report."""

    clause: str
    outlets: frozenset[str] | None  # the outlet named for it
    since: date | None = None  # its publication dates, as the question gives them
    until: date | None = None


def _anchors(question: str, sources: list[str], today: date | None) -> list[list]:
    """[start, end, outlets, day] of each outlet or "article published on <day>" named, in order;
    an outlet and a date of one report ("the Fortune article published on …") are one anchor."""
    found = [[a, b, names, None] for a, b, names in outlet_mentions(question, sources)]
    for m in _DATED.finditer(question) if today else ():
        day = day_of(m["day"], today)
        if day and not any(a <= m.start() < b for a, b, _, _ in found):
            found.append([m.start(), m.end(), None, day])
    found.sort(key=lambda a: a[0])
    merged: list[list] = []
    for anchor in found:
        last = merged[-1] if merged else None
        one_each = (last is not None and (last[2] is None) != (anchor[2] is None)
                    and (last[3] is None) != (anchor[3] is None))
        if last and one_each and anchor[0] - last[1] < 40 and not _JOIN.search(question[last[1]:anchor[0]]):
            last[1], last[2], last[3] = anchor[1], last[2] or anchor[2], last[3] or anchor[3]
        else:
            merged.append(anchor)
    return merged


def _cut(question: str, start: int, end: int) -> int:
    """Where the part ending in ``question[start:end]`` gives way to the next: at the last
    strong joining word ("while", "compared to", "before"), else the last weak one ("and")."""
    for join in (_JOIN, _WEAK_JOIN):
        joins = list(join.finditer(question, start, end))
        if joins:
            return joins[-1].start()
    return end


def parts(question: str, sources: list[str], today: date | None) -> list[Part]:
    """One part per report the question names (an outlet, or "the article published on …"),
    each with the words around it. With one outlet named and several dates, every dated
    report is that outlet's."""
    anchors = _anchors(question, sources, today)
    cuts = [0] + [_cut(question, a[1], b[0]) for a, b in zip(anchors, anchors[1:])] + [len(question)]
    out = []
    for (_, _, names, day), a, b in zip(anchors, cuts, cuts[1:]):
        clause = _LEAD.sub("", question[a:b]).strip(" ,?")
        since = until = day
        for m in _BOUND.finditer(clause) if today and not day else ():
            bound = day_of(m["day"], today)
            if bound and m["word"].lower() in ("after", "since"):
                since = bound
            elif bound:
                until = bound
        out.append(Part(clause, names, since, until))
    outlets = {p.outlets for p in out if p.outlets}
    if len(outlets) == 1 and any(p.since or p.until for p in out):
        only = outlets.pop()
        out = [replace(p, outlets=only) for p in out if p.since or p.until or p.outlets is None]
    if len(out) == 1 and out[0].outlets and asks_agreement(question):
        out = [out[0], out[0]]  # "has X's account remained consistent": two of its reports, compared
    return out


def asks_agreement(question: str) -> bool:
    """Whether the question asks if reports agree or differ ("remained consistent", "changed")."""
    return bool(_SAME.search(question) or _DIFFERENT.search(question))


def _evidence(engine: Engine, d: Draft, part: Part, taken: set[str]) -> Passage | None:
    """The best passage for the part from its outlet and date, from an article not yet taken."""
    s = engine.settings
    where = replace(d.where, sources=part.outlets or d.where.sources,
                    since=part.since or d.where.since, until=part.until or d.where.until)
    found = engine.retriever.search([part.clause, d.standalone], 8 + 2 * len(taken), s.candidates, 2,
                                    where, s.lexical_weight)  # two passages an article: a headline and its body
    fresh = [p for p in found if p.chunk.doc_id not in taken and p.similarity >= s.min_relevance]
    if not fresh:
        return None
    best = fresh[0]  # the best article; its body rather than its headline alone, which states nothing to compare
    return next((p for p in fresh if p.chunk.doc_id == best.chunk.doc_id and not _headline_only(p)), best)


def _headline_only(p: Passage) -> bool:
    return " ".join(p.text.split()) == " ".join((p.meta.title or "").split())


def _sentence(part: Part, p: Passage) -> str:
    """The passage's sentence most about the part."""
    wanted = content_terms(part.clause)
    sentences = [" ".join(p.text[a:b].split()) for a, b in split_sentences(p.text)] or [p.text]
    body = [s for s in sentences if s != " ".join((p.meta.title or "").split())] or sentences  # not the headline
    return max(body, key=lambda s: len(wanted & content_terms(s)))


def _supported(engine: Engine, part: Part, p: Passage) -> bool:
    """Whether the model finds the part's claim in its passage: "Yes" weighed against "No"."""
    about = p.meta.about()
    user = (f"Passage{f' ({about})' if about else ''}: {p.text}\n\n"
            f"Statement: {part.clause}\n\nDoes the passage support the statement? Answer Yes or No.")
    return says_yes(engine.llm, SYSTEM, user)


def _agree(engine: Engine, question: str, a: Passage, b: Passage) -> bool:
    user = (f"Passage A ({a.meta.about()}): {a.text}\n\nPassage B ({b.meta.about()}): {b.text}\n\n"
            f"Question: {question}\nDo passages A and B say the same thing about what the question asks? "
            "Answer Yes or No.")
    return says_yes(engine.llm, SYSTEM, user)


def verdict(engine: Engine, d: Draft, found: list[tuple[Part, Passage]]) -> bool:
    """Yes or no, from the parts: "did it change / stay the same" from whether the reports
    agree; an order in time from the articles' dates (and the main clause's claim); otherwise
    every part's claim must hold."""
    dates = [p.meta.published for _, p in found]
    if len(found) >= 2 and asks_agreement(d.standalone):
        agree = _agree(engine, d.standalone, found[0][1], found[1][1])
        return agree if _SAME.search(d.standalone) else not agree
    if d.intent.order and len(found) >= 2 and all(dates[:2]):  # the articles' dates decide, not the model
        in_order = dates[0] < dates[1] if d.intent.order == "before" else dates[0] > dates[1]  # type: ignore[operator]
        # "Was X reported as worse by A after B reported Y?": A's claim must hold too; the clause
        # after "before"/"after" only dates the other report
        return in_order and all(_supported(engine, part, p) for part, p in found if not _SUBORDINATE.match(part.clause))
    return all(_supported(engine, part, p) for part, p in found)


def reports(engine: Engine, d: Draft) -> list[Part]:
    """The parts of the question, one per report it names (fewer than two: not a comparison)."""
    docs = engine.index.docs.values()
    today = d.today or max((date.fromisoformat(i.published) for i in docs if i.published), default=None)
    return parts(d.standalone, [i.source for i in docs if i.source], today)


def answer(engine: Engine, d: Draft) -> tuple[bool, list[tuple[str, Passage]]] | None:
    """Yes or no, and the quoted sentence of each report's passage; None when a report the
    question names cannot be found (then the articles do not answer it)."""
    found: list[tuple[Part, Passage]] = []
    taken: set[str] = set()
    for part in reports(engine, d):
        p = _evidence(engine, d, part, taken)
        if p is None:
            return None
        taken.add(p.chunk.doc_id)
        found.append((part, p))
    lines = [(f'{p.meta.about() or p.meta.title}: "{_sentence(part, p)}"', p) for part, p in found]
    return verdict(engine, d, found), lines
