"""The steps of answering one question, each a function over one ``Draft``.

rewrite → retrieve → gate → (look: generate → verify)… → check. ``Engine.events``
runs them in that order; the looks (``rag.looks``) are the strategies tried one
after another until one answers.
"""

from __future__ import annotations

import logging
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import date
from typing import TYPE_CHECKING

from . import news, prompt
from .answer import Answer, Citation, Delta, Figure, TimelineEntry, Timings, Window
from .intent import Intent
from .intent import read as intent_of
from .index import Index
from .retrieve import Filter, Passage
from .verify import is_decline, verify
from .verify.question import ASKS_QUANTITY, cites_named_outlet, fits_question, holds_role, names_the_topic

if TYPE_CHECKING:
    from .engine import Engine

log = logging.getLogger(__name__)

History = list[tuple[str, str]]  # (question, answer) pairs, oldest first


@dataclass
class Draft:
    """One question on its way through the pipeline, and the best answer so far."""

    question: str  # as asked (cleaned)
    history: History
    k: int
    where: Filter
    temperature: float
    today: date | None = None  # what "last week" counts from; None: the newest article's date
    started: float = field(default_factory=time.perf_counter)
    standalone: str = ""  # the question made to stand alone (a follow-up rewritten)
    intent: Intent = field(default_factory=lambda: intent_of(""))  # what the question asks (see rag.intent)
    window: Window | None = None  # the dates the question's own words restricted the search to
    transcript: History = field(default_factory=list)  # earlier turns the prompt shows (if the rewrite failed)
    passages: list[Passage] = field(default_factory=list)  # retrieved, best first
    shown: list[Passage] = field(default_factory=list)  # those the first look's prompt held
    tried: list[Passage] = field(default_factory=list)  # those the first look's answer cited (before checks)
    retrieval_s: float = 0.0
    first_token_s: float | None = None
    text: str = prompt.DECLINE
    citations: list[Citation] = field(default_factory=list)
    declined: bool = True
    disagreements: list[Figure] = field(default_factory=list)
    timeline: list[TimelineEntry] = field(default_factory=list)

    @property
    def premise(self) -> str:
        """Everything the user said that a claim may restate: the question as asked and as
        rewritten, and the previous question of a follow-up."""
        return " ".join([self.question, self.standalone, *(self.history[-1][:1] if self.history else [])])

    @property
    def best_similarity(self) -> float:
        return max((p.similarity for p in self.passages), default=-1.0)

    def answer(self) -> Answer:
        return Answer(self.question, self.text, self.citations, self.passages, self.declined,
                      Timings(self.retrieval_s, self.first_token_s, time.perf_counter() - self.started),
                      self.disagreements, self.timeline, self.window)


@dataclass(frozen=True)
class Result:
    """One look's verified reply."""

    text: str
    citations: list[Citation]
    declined: bool


def rewrite(engine: Engine, d: Draft) -> None:
    """A follow-up ("Who will she meet there?") becomes a standalone question by a short model
    call; if the rewrite fails, the prompt shows the transcript instead."""
    d.standalone = d.question
    if not d.history:
        return
    messages = prompt.build_rewrite(d.question, d.history, engine.settings.history_turns)
    reply = "".join(engine.llm.stream(messages, 3 * engine.llm.count_tokens(d.question) + 40, 0.0))
    rewritten = prompt.parse_rewrite(reply, d.question)
    log.info("Follow-up %r rewritten as %r", d.question, rewritten)
    d.standalone = rewritten or d.question
    d.transcript = [] if rewritten else d.history


def understand(engine: Engine, d: Draft) -> None:
    """Read the question: the outlets and years it names, its form, and the dates its words
    set ("before October 30", "last week"), which narrow the search unless the question
    compares several reports (then each report has its own dates)."""
    docs = engine.index.docs.values()
    today = d.today or max((date.fromisoformat(i.published) for i in docs if i.published), default=None)
    d.intent = intent_of(d.standalone, [i.source for i in docs if i.source], today)
    window = d.intent.window
    if window and not d.intent.multi_part:
        since = max(filter(None, (d.where.since, window.since)), default=None)
        until = min(filter(None, (d.where.until, window.until)), default=None)
        d.where, d.window = replace(d.where, since=since, until=until), window


def retrieve(engine: Engine, d: Draft) -> None:
    """The passages for the question, searched also with the previous question for a follow-up."""
    s = engine.settings
    queries = [d.standalone]
    if d.history:
        queries.append(f"{d.history[-1][0]} {d.standalone}")
    bonus = s.figure_bonus if ASKS_QUANTITY.search(d.standalone) else 0.0

    def search(where: Filter, k: int) -> list[Passage]:
        return engine.retriever.search(queries, k, s.candidates, s.max_per_doc, where, s.lexical_weight, bonus)

    d.passages = search(d.where, d.k)
    for outlets, wanted in Counter(d.intent.outlets).items():  # each outlet named is heard
        have = {p.chunk.doc_id for p in d.passages if p.meta.source in outlets}
        if len(have) < wanted:
            extra = [p for p in search(replace(d.where, sources=outlets), wanted + len(have))
                     if p.chunk.doc_id not in have][: wanted - len(have)]
            d.passages = _make_room(d.passages, extra, d.intent, d.k)
    if d.intent.latest:  # "the latest estimate": the newest articles first (undated ones last)
        d.passages.sort(key=lambda p: p.meta.published or date.min, reverse=True)
    d.retrieval_s = time.perf_counter() - d.started


def _make_room(passages: list[Passage], extra: list[Passage], intent: Intent, k: int) -> list[Passage]:
    """``extra`` joins the passages, replacing the weakest ones not from an outlet the question names."""
    named = set().union(*intent.outlets)
    keep = list(passages)
    for p in extra:
        if len(keep) >= k:
            weakest = next((i for i in range(len(keep) - 1, -1, -1) if keep[i].meta.source not in named), None)
            if weakest is None:
                break
            del keep[weakest]
        keep.append(p)
    return keep


def gate(engine: Engine, d: Draft) -> bool:
    """Whether any passage is on topic; if none is, the answer declines without the LLM."""
    return bool(d.passages) and d.best_similarity >= engine.settings.min_relevance


def generate(engine: Engine, d: Draft, messages: list[dict[str, str]], stream: bool,
             enough: Callable[[str], str | None] | None = None) -> Iterator[Delta]:
    """The model's reply, as ``Delta`` events if ``stream``; returns the whole reply, or as much
    of it as ``enough`` says is all that is needed (it returns that part, or None to go on)."""
    pieces: list[str] = []
    replies = engine.llm.stream(messages, engine.settings.max_tokens, d.temperature)
    for piece in replies:
        d.first_token_s = d.first_token_s or time.perf_counter() - d.started
        pieces.append(piece)
        if stream:
            yield Delta(piece)
        done = enough("".join(pieces)) if enough else None
        if done is None and _SENTENCE_END.search(piece):
            done = repetition("".join(pieces))  # a small model's loop ("Germany was … Germany was …")
        if done is not None:
            replies.close()  # stop paying for the rest
            return done
    return "".join(pieces)


_SENTENCE_END = re.compile(r"[.!?]\W*$")


def repetition(text: str) -> str | None:
    """A reply that has just said one of its sentences (of some length) a second time, cut
    before the repeat; None if it has not."""
    starts = [0] + [m.end() for m in re.finditer(r"(?<=[.!?])\s+", text.rstrip())]
    last = " ".join(text[starts[-1]:].split())
    before = {" ".join(text[a:b].split()) for a, b in zip(starts, starts[1:])}
    return text[:starts[-1]].rstrip() if len(last) >= 20 and last in before else None


def verify_reply(engine: Engine, d: Draft, raw: str, shown: list[Passage]) -> Result:
    """The reply with every claim checked against the passage it cites, markers renumbered
    1..n in order of first use; a reply with nothing supported declines."""
    articles = [engine.retriever.article(p.chunk.doc_id) for p in shown]
    outlets = [frozenset(i for i, p in enumerate(shown) if p.meta.source in group) for group in d.intent.outlets]
    checked = verify(raw, shown, d.premise, articles, engine.settings.rules_off, asked=d.standalone, outlets=outlets)
    if checked.dropped:
        log.info("Dropped unsupported claims: %s", checked.dropped)
    text, order = checked.render()
    if checked.declined:
        return Result(text if is_decline(text) else prompt.DECLINE, [], True)
    return Result(text, [citation(n, shown[i], engine.index) for n, i in enumerate(order, start=1)], False)


def citation(marker: int, p: Passage, index: Index | None = None) -> Citation:
    """The citation of passage ``p``; ``index`` names the outlets of its wire copies."""
    also = tuple((index.meta(d).source or d) if index else d for d in p.copies)
    return Citation(marker, p.chunk.doc_id, p.title, p.path, p.chunk.start, p.chunk.end, p.text, p.similarity,
                    p.meta.source, p.meta.published, p.meta.author, p.meta.url, p.chunk.page, also)


def check(engine: Engine, d: Draft) -> None:
    """The answer must be of the kind asked for (a quantity for "how many" …), be about what the
    question names (and the role it asks for) and, asked what an outlet reported, cite that
    outlet; or it declines."""
    off = engine.settings.rules_off
    if d.declined:
        return
    kind = "kind_of_answer" in off or fits_question(d.standalone, d.text)
    outlets = "named_outlets" in off or cites_named_outlet(d.intent, [c.source for c in d.citations])
    articles = [engine.retriever.article(c.doc_id) + " " + c.title for c in d.citations]
    topic = "question_names" in off or names_the_topic(d.standalone, d.intent, articles)
    role = "question_role" in off or holds_role(d.standalone, articles)
    if not (kind and outlets and topic and role):
        d.text, d.citations, d.declined = prompt.DECLINE, [], True


def annotate(engine: Engine, d: Draft) -> None:
    """News: a changing fact (a running count, who holds an office) is answered "as of" its
    newest cited article; when the passages shown give different figures for what was asked,
    each figure is listed with its outlet and date, cited (``Answer.disagreements``)."""
    if d.declined:
        return
    markers = {(c.doc_id, c.start): c.marker for c in d.citations}

    def marker(p: Passage) -> int:
        key = (p.chunk.doc_id, p.chunk.start)
        if key not in markers:
            markers[key] = len(d.citations) + 1
            d.citations.append(citation(markers[key], p, engine.index))
        return markers[key]

    off = engine.settings.rules_off
    shown = d.shown or d.passages
    cited = [p for p in shown if (p.chunk.doc_id, p.chunk.start) in markers]
    if "sharpen_dates" not in off:
        d.text, lender = news.sharpen_dates(d.standalone, d.text, cited, shown)
        if lender is not None:
            d.text = d.text.replace(news.CITE_HERE, f" [{marker(lender)}]")
    stated = news.differing_figures(d.standalone, d.text, shown) if "figures_by_source" not in off else []
    if stated:
        numbers = {s.passage.chunk.chunk_id: marker(s.passage) for s in stated}
        d.disagreements = news.figure_rows(d.standalone, stated, numbers)
        newest = news.superseded(d.text, stated) if "newest_figure" not in off else None
        if newest:  # the lead is the newest report's own sentence, "as of" its date
            lead = f"{news.as_of([newest.passage])}{newest.sentence.rstrip('.')} [{numbers[newest.passage.chunk.chunk_id]}]."
            d.text = f"{lead} {news.figures_sentence(stated, numbers)}"
            return
        d.text = f"{d.text} {news.figures_sentence(stated, numbers)}"
    if "as_of" not in off and (news.changing_fact(d.standalone) or d.intent.latest):
        d.text = news.as_of(cited) + d.text
