"""The looks: strategies for getting an answer out of the passages, tried in order.

The first look asks for an answer and streams it. A small model declines some
answers it has in front of it, so when it declines although a passage is on topic
(similarity ≥ ``second_look``), a second look asks it to copy the sentence that
answers (``quote``). An answer that fails the checks of a whole answer (``steps.check``:
the kind asked for, the outlet named, the question's names) counts as a decline, so
the second look runs too, without the passages that answer cited; it counts only if
its answer passes the checks of a first answer and its own. (A third look, reading the
passages in reverse order, was measured and removed: docs/experiments.md, 2026-12-03.)
Asked for a measure ("how far …"), a last look has the model weigh the sentences that
state one (``measure``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from . import compare, measure, news, prompt, steps
from .answer import Delta
from .chunking import split_sentences
from .retrieve import Passage
from .text import content_terms
from .verify import is_decline, split_answer
from .verify.question import fits_question, on_question
from .verify.rules import register

if TYPE_CHECKING:
    from .engine import Engine
    from .steps import Draft, Result


register("quote_look", """After a decline with an on-topic passage, the model is asked to copy the sentence that
    answers; the whole sentence is shown, cited.""")
register("withhold_rejected", """The second look is not shown the passages the first look's rejected answer cited:
    asked who won the 2019 U.S. Open, the first look took the 2020 line of a list of winners; shown
    that list again, the model copies the same line, while another passage says who won in 2019.""")
register("one_quote", """The second look's reply ends with its first sentence (and the markers right after it):
    the model is asked for the one sentence that answers, and what it adds after it (more sentences,
    the question restated) costs seconds of generation on two cores.""")
register("measure_look", """Asked for a measure ("how far", "how many square kilometres"), after the other looks
    decline: the passages' sentences that state a measure of the kind asked (a length, an area, a time, a mass),
    closest to the question first, are each weighed by the model (Yes or No); those it accepts are quoted,
    one per article. Asked how far an ICBM flew, "It reached an altitude of 7,000 km and flew a distance of
    1,000 km, the Japanese government said." had been declined twice.""")
register("near_copy", """A sentence the second look copied with a word or two changed ("The Walt Disney Co.
    acquired 20th Century Fox" for "The Walt Disney Company To Acquire Twenty-First Century Fox") is shown
    as the passage's own sentence, which the checks then judge (three quarters of the meaningful words
    of each are in both).""")


@dataclass(frozen=True)
class Look:
    name: str
    status: str  # what a front end shows while this look runs (never its raw text)

    def applies(self, engine: Engine, d: Draft) -> bool:
        return True

    def passages(self, engine: Engine, d: Draft) -> list[Passage]:
        return d.shown or d.passages

    def prompt(self, engine: Engine, d: Draft) -> prompt.Prompt:
        s = engine.settings
        return prompt.build(d.standalone, self.passages(engine, d), d.transcript, engine.llm, s.max_tokens,
                            s.history_turns, extractive=self.name == "quote")

    def reply_text(self, engine: Engine, raw: str, shown: list[Passage]) -> str:
        return raw

    def enough(self, engine: Engine) -> Callable[[str], str | None] | None:
        """When the reply so far is all this look needs (see ``steps.generate``); None: all of it."""
        return None

    def run(self, engine: Engine, d: Draft, first: bool) -> Iterator[Delta]:
        """The prompt, the model's reply (streamed only for the first look), verified; a later
        look's result replaces the draft's only if ``accept`` says it answers."""
        built = self.prompt(engine, d)
        if first:
            d.shown = built.passages
        raw = yield from steps.generate(engine, d, built.messages, stream=first, enough=self.enough(engine))
        if first and not is_decline(raw):
            d.tried = [built.passages[m - 1] for clauses in split_answer(raw) for c in clauses
                       for m in c.markers if 1 <= m <= len(built.passages)]
        result = steps.verify_reply(engine, d, self.reply_text(engine, raw, built.passages), built.passages)
        if first or (not result.declined and self.accept(engine, d, result)):
            d.text, d.citations, d.declined = result.text, result.citations, result.declined

    def accept(self, engine: Engine, d: Draft, result: Result) -> bool:
        """Whether a later look's answer may replace the decline: it must be of the kind asked for."""
        return "kind_of_answer" in engine.settings.rules_off or fits_question(d.standalone, result.text)


class _Quote(Look):
    def passages(self, engine: Engine, d: Draft) -> list[Passage]:
        """The first look's passages but those its rejected answer cited (``withhold_rejected``)."""
        shown = super().passages(engine, d)
        if "withhold_rejected" in engine.settings.rules_off:
            return shown
        tried = {p.chunk.chunk_id for p in d.tried}
        return [p for p in shown if p.chunk.chunk_id not in tried] or shown

    def reply_text(self, engine: Engine, raw: str, shown: list[Passage]) -> str:
        return whole_sentences(raw, shown, near="near_copy" not in engine.settings.rules_off)

    def enough(self, engine: Engine) -> Callable[[str], str | None] | None:
        return None if "one_quote" in engine.settings.rules_off else first_sentence

    def accept(self, engine: Engine, d: Draft, result: Result) -> bool:
        """A copied sentence counts only if the passages it cites are about the question."""
        if not super().accept(engine, d, result):
            return False
        previous = d.history[-1][0] if d.history else None
        return "quote_on_question" in engine.settings.rules_off or \
            on_question(d.standalone, previous, [c.text for c in result.citations])


class _Measure(Look):
    """Asked for a measure, the sentences that state one of the kind asked, each weighed by
    the model as the answer or not (see ``rag.measure``): no text is generated."""

    def passages(self, engine: Engine, d: Draft) -> list[Passage]:
        """Those of the outlets the question names, if it names any and they are shown ("per the FT")."""
        shown = super().passages(engine, d)
        named = set().union(*d.intent.outlets)
        return [p for p in shown if p.meta.source in named] or shown

    def applies(self, engine: Engine, d: Draft) -> bool:
        return "measure_look" not in engine.settings.rules_off and \
            bool(measure.candidates(d.standalone, self.passages(engine, d)))

    def run(self, engine: Engine, d: Draft, first: bool) -> Iterator[Delta]:
        shown = self.passages(engine, d)
        raw = measure.answer(engine, d.standalone, shown)
        if raw is not None:
            result = steps.verify_reply(engine, d, raw, shown)
            if not result.declined and self.accept(engine, d, result):
                d.text, d.citations, d.declined = result.text, result.citations, result.declined
        yield from ()


class _Timeline(Look):
    """"Timeline of …", "how did … change": one dated, cited event per article, in date order,
    from the passages themselves (no model call: the order is the dates')."""

    def applies(self, engine: Engine, d: Draft) -> bool:
        return d.intent.timeline and news.changed(d)

    def run(self, engine: Engine, d: Draft, first: bool) -> Iterator[Delta]:
        entries = news.timeline(d.standalone, d.passages)
        d.shown = [p for _, p in entries]
        d.timeline = [e for e, _ in entries]
        d.citations = [steps.citation(e.marker, p, engine.index) for e, p in entries]
        d.text = " ".join(f"{news.when(e.published)}" + (f" ({e.source})" if e.source else "") +
                          f": {e.text.rstrip('.')} [{e.marker}]." for e in d.timeline)
        d.declined = False
        yield from ()


class _Compare(Look):
    """A yes/no question about several reports: each found and checked on its own, dates
    compared in code, the answer composed from the parts (see ``rag.compare``)."""

    def applies(self, engine: Engine, d: Draft) -> bool:
        return d.intent.multi_part and len(compare.reports(engine, d)) > 1

    def run(self, engine: Engine, d: Draft, first: bool) -> Iterator[Delta]:
        result = compare.answer(engine, d)
        if result is None:  # a report the question names is not in the articles
            d.text, d.citations, d.declined = prompt.DECLINE, [], True
            return
        yes, lines = result
        d.shown = [p for _, p in lines]
        d.citations = [steps.citation(n, p, engine.index) for n, (_, p) in enumerate(lines, start=1)]
        d.text = ("Yes." if yes else "No.") + "".join(f" {text} [{n}]." for n, (text, _) in enumerate(lines, start=1))
        d.declined = False
        yield from ()


ANSWER = Look("answer", "Reading the passages…")
COMPARE = _Compare("compare", "Checking each report the question names…")
TIMELINE = _Timeline("timeline", "Putting the reports in date order…")
QUOTE = _Quote("quote", "Checking the passages again…")
MEASURE = _Measure("measure", "Weighing the sentences that give a measure…")


def looks_for(engine: Engine, d: Draft) -> list[Look]:
    """The looks to try for this question, first to last."""
    if TIMELINE.applies(engine, d):
        return [TIMELINE]
    if COMPARE.applies(engine, d):
        return [COMPARE]
    s = engine.settings
    if not (s.second_look and d.best_similarity >= s.second_look):  # no passage on topic enough to look again
        return [ANSWER]
    return [ANSWER, *([QUOTE] if "quote_look" not in s.rules_off else []), MEASURE]


_CITED_SPAN = re.compile(r"([^\[\]]+?)\s*\[(\d+)\]")
_PASSAGE = r"passage(?:\s+(?:number|no\.?))?\s*:?\s*"  # the label a small model puts before a marker
_LABEL = re.compile(rf"[\s(]*\b{_PASSAGE}$", re.IGNORECASE)  # "… Passage [1]"


def whole_sentences(raw: str, shown: list[Passage], near: bool = True) -> str:
    """The quote look often copies a fragment ("Tomahawk missiles [1]", "Tomahawk missiles
    Passage [1]"), frames a sentence ("The sentence that best answers the question is:
    "…" [1]") or changes a word or two while copying ("The Walt Disney Co. acquired 20th
    Century Fox" from "The Walt Disney Company To Acquire Twenty-First Century Fox"): show
    the whole sentence of the cited passage it came from, which answers in context and is a
    verbatim quote. Anything not found in its passage is left for the verifier."""
    out: list[str] = []
    for m in _CITED_SPAN.finditer(raw):
        said = " ".join(m.group(1).split())
        copied = _LABEL.sub("", said)
        fragment, n = copied.strip(" .,;:").lower(), int(m.group(2))
        quote = m.group().strip() if copied == said else f"{copied.strip()} [{n}]"
        if fragment and 1 <= n <= len(shown):
            text = shown[n - 1].text
            sentences = [" ".join(text[a:b].split()) for a, b in split_sentences(text)]
            holds = [s for s in sentences if fragment in s.lower()]  # the fragment is part of a sentence
            within = [s for s in sentences if len(s) > 20 and s.strip(" .,;:").lower() in fragment]  # or framed
            close = [s for s in sentences if near and near_copy(fragment, s)]  # or copied with a word or two changed
            quote = next((f"{s.rstrip('.')} [{n}]." for s in holds or within or close), quote)
        if quote not in out:
            out.append(quote)
    return " ".join(out) or raw


# Markers right after a sentence, each perhaps labelled: " [1]", '"\nPassage number: [1]', " (Passage [2]"
_GAP = "\\s(\"'”’"
_MARKERS = re.compile(rf"(?:[{_GAP}]*(?:{_PASSAGE})?\[[^\[\]]*\])*", re.IGNORECASE)


def first_sentence(reply: str) -> str | None:
    """The reply's first sentence with the markers right after it, once the reply goes on
    past them; None before that. The second look is asked for the one sentence that answers,
    then its passage number: what a small model adds after it (more copied sentences, the
    question restated) costs seconds and is not shown (``one_quote``)."""
    spans = split_sentences(reply)
    if len(spans) < 2:
        return None
    end = _MARKERS.match(reply, spans[0][1]).end()
    after = re.sub(rf"^[{_GAP}]+", "", reply[end:])
    word = re.match(r"[a-z]*", after.lower()).group()
    coming = after.startswith("[") or (word and "passage".startswith(word))  # a marker or its label, half written
    return reply[:end] if after and not coming else None


def near_copy(reply: str, sentence: str, share: float = 0.75) -> bool:
    """Whether ``reply`` is ``sentence`` copied with a few words changed: of the meaningful
    words of either, at least ``share`` are in both (and the reply has five or more)."""
    said, source = content_terms(reply), content_terms(sentence)
    return len(said) >= 5 and len(said & source) >= share * max(len(said), len(source))
