"""Check the model's citations against the passages, and repair or drop the bad ones.

A small model cites loosely: markers that point at no passage, a right fact with
the wrong number, or no marker at all. Every claim is checked by the named rules
of ``rules`` (numbers, names, units …) against the passage it cites. A failing
citation is moved to a passage that does support the claim, if one was retrieved;
a claim that no passage supports is removed, so nothing unverified reaches the user.
``question`` holds the checks of a whole answer against the question asked.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from ..text import MARKER, WORD, YEAR
from .claims import Claim, is_decline, split_answer
from .rules import RULES, Evidence, has_facts, mostly_from, new_names, register, states, supports

__all__ = ["RULES", "Verified", "verify", "is_decline", "supports", "Evidence", "split_answer"]

_SHORT_REPLY = 4  # words: an uncited sentence this short is a reply ("Yes."), not a claim

register("copied_sentence", """A sentence copied from one passage is cited to that passage, not to another that
    merely shares its names and numbers ("trained in eastern Russia" goes to the passage that says so).""")
register("joint_support", """A clause citing several passages may take its names and numbers from them together
    ("Seoul and Washington say 10,000 [1][2]").""")
register("repair", """A claim its marker does not support is cited to the first passage that does support
    it; a marker to no passage at all vanishes.""")
register("every_named_outlet", """Asked what several named outlets reported ("reported by both Engadget and
    TechCrunch"), a claim cited to one of them also cites each other named outlet's shown passage that states
    the claim's new names, so each report the question names is shown and checked.""")
register("uncited_claims", """A sentence no passage supports is dropped even when it names nothing to check
    ("This tactic involves deploying large numbers of troops" comes from the model's memory); a short
    reply such as "Yes." stays.""")


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


class _Checker:
    """The passages, the question's words and the rules in force, for one answer."""

    def __init__(self, passages: Sequence, question: str, articles: Sequence[str] | None,
                 off: frozenset[str], asked: str | None, outlets: Sequence[frozenset[int]]) -> None:
        self.texts = [p.text for p in passages]
        premise = frozenset(w.lower() for w in WORD.findall(question))
        years = frozenset(YEAR.findall(asked)) if asked is not None else frozenset()
        about = [p.meta.about() if getattr(p, "meta", None) else "" for p in passages]
        contexts = list(articles) if articles is not None else self.texts
        shown = " ".join([*contexts, *about])  # where the question's own names may be (see the names rule)
        self.evidence = [Evidence(t, a, premise, h, years, shown) for t, a, h in zip(self.texts, contexts, about)]
        self.off, self.outlets = off, [g for g in outlets if g]
        self.prefer = frozenset().union(*self.outlets)

    def on(self, rule: str) -> bool:
        return rule not in self.off

    def holds(self, i: int, claim: str) -> bool:
        return supports(claim, self.evidence[i], self.off)

    def jointly(self, cited: list[int], claim: str) -> bool:
        first = self.evidence[0]
        joint = Evidence(" ".join(self.texts[i] for i in cited), " ".join(self.evidence[i].article for i in cited),
                         first.premise, " ".join(self.evidence[i].about for i in cited), first.years, first.shown)
        return supports(claim, joint, self.off)

    def sources(self, claim: Claim) -> list[int]:
        """The passages (0-based) that end up cited for ``claim``; [] if none supports it."""
        text, n = claim.text, len(self.texts)
        facts = has_facts(text)
        cited = [m - 1 for m in dict.fromkeys(claim.markers) if 1 <= m <= n]  # invented markers vanish
        # A clause with no names or numbers is "supported" by anything, so it keeps a marker only
        # if its words are mostly in that passage (markers copied from an article's own text
        # must not become citations of unrelated passages).
        good = [i for i in cited if self.holds(i, text) and (facts or mostly_from(self.texts[i], text))]
        if good and self.on("copied_sentence") and not any(mostly_from(self.texts[i], text) for i in good):
            good = [j for j in range(n) if mostly_from(self.texts[j], text) and self.holds(j, text)][:1] or good
        if not good and len(cited) > 1 and facts and self.on("joint_support") and self.jointly(cited, text):
            good = cited
        if not good and self.on("repair"):
            if facts:
                good = [i for i in range(n) if self.holds(i, text)][:1]
            else:  # a copied sentence without names or numbers ("This is normal diplomacy.") deserves its source
                good = [i for i in range(n) if mostly_from(self.texts[i], text)][:1]
        if good and self.prefer and not set(good) & self.prefer and self.on("named_outlets"):
            # asked what an outlet reported: its passage is cited when it supports the claim too
            good = [i for i in sorted(self.prefer) if self.holds(i, text)][:1] or good
        if good and len(self.outlets) > 1 and self.on("every_named_outlet"):
            good += self.other_outlets(good, text)
        return good

    def other_outlets(self, good: list[int], text: str) -> list[int]:
        """For each named outlet ``good`` does not cite, its first shown passage that states the
        claim's new names, if the passages then support the claim together."""
        new = new_names(text, self.evidence[0].premise)
        more = []
        for group in self.outlets:
            if new and not group & set(good):
                j = next((j for j in sorted(group) if all(states(self.texts[j], n) for n in new)), None)
                if j is not None and self.jointly([*good, *more, j], text):
                    more.append(j)
        return more


def verify(text: str, passages: Sequence, question: str = "", articles: Sequence[str] | None = None,
           off: frozenset[str] = frozenset(), asked: str | None = None,
           outlets: Sequence[frozenset[int]] = ()) -> Verified:
    """Check every clause of ``text`` against ``passages`` (anything with ``.text``).
    ``question`` (with any earlier question of a follow-up) and the full text of each
    passage's article let a claim restate the question's own names (see the ``names`` rule);
    ``asked`` is the question as the user means it (its years must hold: ``asked_year``);
    ``outlets`` are, for each outlet the question names, its passages (0-based): cited when they
    support a claim too; ``off`` names rules to skip (for ablations)."""
    checker = _Checker(passages, question, articles, off, asked, outlets)
    sentences: list[list[tuple[str, list[int]]]] = []
    dropped: list[str] = []
    for clauses in split_answer(text):
        whole = "".join(c.text for c in clauses)
        if is_decline(whole) and not any(c.markers for c in clauses):
            sentences.append([(MARKER.sub("", whole).strip(), [])])  # "The articles don't say ...": nothing to cite
            continue
        kept: list[tuple[str, list[int]]] = []
        for claim in clauses:
            good = checker.sources(claim)
            if good or not has_facts(claim.text):
                kept.append((claim.text, good))  # connective text (", while", ".") has nothing to check
            else:
                dropped.append(claim.text.strip())
        words = len(WORD.findall("".join(c for c, _ in kept)))
        if any(refs for _, refs in kept) or (0 < words <= _SHORT_REPLY and not dropped) \
                or (words and not checker.on("uncited_claims")):
            sentences.append(kept)  # "Yes." or "No, it is not." before the cited sentence is kept
        elif words:
            dropped.append("".join(c for c, _ in kept).strip())
    declined = not any(refs for sentence in sentences for _, refs in sentence)
    return Verified(sentences, declined, dropped)
