"""The steps of answering one question, each a function over one ``Draft``.

rewrite → retrieve → gate → (look: generate → verify)… → check. ``Engine.events``
runs them in that order; the looks (``rag.looks``) are the strategies tried one
after another until one answers.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from . import prompt
from .answer import Answer, Citation, Delta, Timings
from .retrieve import Filter, Passage
from .verify import is_decline, verify
from .verify.question import ASKS_QUANTITY, fits_question

if TYPE_CHECKING:
    from .engine import Engine
    from .looks import Look

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
    started: float = field(default_factory=time.perf_counter)
    standalone: str = ""  # the question made to stand alone (a follow-up rewritten)
    transcript: History = field(default_factory=list)  # earlier turns the prompt shows (if the rewrite failed)
    passages: list[Passage] = field(default_factory=list)  # retrieved, best first
    shown: list[Passage] = field(default_factory=list)  # those the first look's prompt held
    retrieval_s: float = 0.0
    first_token_s: float | None = None
    text: str = prompt.DECLINE
    citations: list[Citation] = field(default_factory=list)
    declined: bool = True

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
                      Timings(self.retrieval_s, self.first_token_s, time.perf_counter() - self.started))


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


def retrieve(engine: Engine, d: Draft) -> None:
    """The passages for the question, searched also with the previous question for a follow-up."""
    s = engine.settings
    queries = [d.standalone]
    if d.history:
        queries.append(f"{d.history[-1][0]} {d.standalone}")
    bonus = s.figure_bonus if ASKS_QUANTITY.search(d.standalone) else 0.0
    d.passages = engine.retriever.search(queries, d.k, s.candidates, s.max_per_doc, d.where, s.lexical_weight,
                                         bonus)
    d.retrieval_s = time.perf_counter() - d.started


def gate(engine: Engine, d: Draft) -> bool:
    """Whether any passage is on topic; if none is, the answer declines without the LLM."""
    return bool(d.passages) and d.best_similarity >= engine.settings.min_relevance


def generate(engine: Engine, d: Draft, messages: list[dict[str, str]], stream: bool) -> Iterator[Delta]:
    """The model's reply, as ``Delta`` events if ``stream``; returns the whole reply."""
    pieces: list[str] = []
    for piece in engine.llm.stream(messages, engine.settings.max_tokens, d.temperature):
        d.first_token_s = d.first_token_s or time.perf_counter() - d.started
        pieces.append(piece)
        if stream:
            yield Delta(piece)
    return "".join(pieces)


def verify_reply(engine: Engine, d: Draft, raw: str, shown: list[Passage]) -> Result:
    """The reply with every claim checked against the passage it cites, markers renumbered
    1..n in order of first use; a reply with nothing supported declines."""
    articles = [engine.retriever.article(p.chunk.doc_id) for p in shown]
    checked = verify(raw, shown, d.premise, articles, engine.settings.rules_off)
    if checked.dropped:
        log.info("Dropped unsupported claims: %s", checked.dropped)
    text, order = checked.render()
    if checked.declined:
        return Result(text if is_decline(text) else prompt.DECLINE, [], True)
    return Result(text, [citation(n, shown[i]) for n, i in enumerate(order, start=1)], False)


def citation(marker: int, p: Passage) -> Citation:
    return Citation(marker, p.chunk.doc_id, p.title, p.path, p.chunk.start, p.chunk.end, p.text, p.similarity,
                    p.meta.source, p.meta.published, p.meta.author, p.meta.url, p.chunk.page)


def run_look(engine: Engine, d: Draft, look: Look, first: bool) -> Iterator[Delta]:
    """One look: its prompt, the model's reply (streamed only for the first look), verified;
    a later look's result replaces the draft's only if ``look.accept`` says it answers."""
    built = look.prompt(engine, d)
    if first:
        d.shown = built.passages
    raw = yield from generate(engine, d, built.messages, stream=first)
    result = verify_reply(engine, d, look.reply_text(raw, built.passages), built.passages)
    if first or (not result.declined and look.accept(engine, d, result)):
        d.text, d.citations, d.declined = result.text, result.citations, result.declined


def check(engine: Engine, d: Draft) -> None:
    """The answer must be of the kind asked for (a quantity for "how many" …), or it declines."""
    if "kind_of_answer" in engine.settings.rules_off:
        return
    if not d.declined and not fits_question(d.standalone, d.text):
        d.text, d.citations, d.declined = prompt.DECLINE, [], True
