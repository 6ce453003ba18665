"""``ask()``: question in, cited answer out.

retrieve → build prompt → generate → verify citations → Answer. Models and the
index are loaded once per process (see ``models``) and shared by every caller.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from . import cite, prompt
from .chunking import split_sentences
from .config import Settings
from .generate import ChatModel
from .index import Index, sync
from .ingest import SUFFIXES
from .models import get_embedder, get_llm
from .retrieve import Passage, Retriever, content_terms

log = logging.getLogger(__name__)

History = Sequence[tuple[str, str]]  # (question, answer) pairs, oldest first


@dataclass(frozen=True)
class Citation:
    """Where a marker like [1] leads: an exact passage of a source file."""

    marker: int
    doc_id: str
    title: str
    path: Path
    start: int  # character offsets into the file's text
    end: int
    text: str
    score: float  # cosine similarity of the passage to the question
    # The article's metadata, None where unknown (never guessed: a file's mtime is no publication date).
    source: str | None = None  # the outlet, e.g. "Reuters"
    published: date | None = None
    author: str | None = None
    url: str | None = None
    page: int | None = None  # 1-based page of a PDF, None for other formats


@dataclass(frozen=True)
class Timings:
    retrieval_s: float
    first_token_s: float | None  # None when the LLM was not called
    total_s: float


@dataclass(frozen=True)
class Answer:
    question: str
    text: str  # with inline markers [1], [2] … that all resolve to ``citations``
    citations: list[Citation]
    passages: list[Passage]  # everything retrieved, best first
    declined: bool  # True when the articles do not answer the question
    timings: Timings


class AnswerStream(Iterator[str]):
    """Text deltas as the model writes them; ``.answer`` holds the verified Answer
    once the iterator is exhausted (the verified text may drop or renumber markers)."""

    def __init__(self, deltas: Iterator[str]) -> None:
        self._deltas = deltas
        self.answer: Answer | None = None

    def __next__(self) -> str:
        return next(self._deltas)

    def close(self) -> None:
        close = getattr(self._deltas, "close", None)
        if close:
            close()


def _corpus_snapshot(folder: Path) -> tuple:
    """Names, sizes and mtimes: cheap enough to check before every question."""
    try:
        return tuple(sorted((e.name, e.stat().st_size, e.stat().st_mtime_ns) for e in os.scandir(folder)
                            if e.is_file() and e.name.lower().endswith(SUFFIXES)))
    except FileNotFoundError:
        return ()


class Engine:
    """The loaded index, retriever and models for one Settings."""

    def __init__(self, settings: Settings, llm: ChatModel | None = None, embedder=None,
                 progress: bool = False) -> None:
        self.settings = settings
        # The LLM worker process starts first, so the model loads while the embedder and the index do.
        self._llm = llm or get_llm(settings, progress=progress)
        self.embedder = embedder or get_embedder(settings)
        self._lock = threading.Lock()
        self._progress = progress
        self.refresh(force=True)

    @property
    def llm(self) -> ChatModel:
        return self._llm

    def refresh(self, force: bool = False) -> Index:
        """Re-sync the index when the corpus folder changed since the last look."""
        with self._lock:
            snap = _corpus_snapshot(self.settings.corpus_dir)
            if force or snap != self._snapshot:
                self.index = sync(self.settings, self.embedder, progress=self._progress)
                self.retriever = Retriever(self.index, self.embedder)
                self._snapshot = snap
            return self.index

    def retrieve(self, question: str, history: History, k: int,
                 doc_ids: Iterable[str] | None = None) -> list[Passage]:
        queries = [question]
        if history:  # follow-ups: also search with the previous question as context
            queries.append(f"{history[-1][0]} {question}")
        s = self.settings
        # Twice as many chunks as will be shown: the sentence-level look decides the final k.
        wide = 2 * k if s.passage_chars else k
        bonus = s.figure_bonus if _ASKS_QUANTITY.search(question) else 0.0
        passages = self.retriever.search(queries, wide, s.candidates, s.max_per_doc, doc_ids, s.lexical_weight, bonus)
        return self.retriever.focus(passages, queries, s.passage_chars, k)

    def _standalone(self, question: str, history: History) -> str:
        """The follow-up rewritten to stand alone ("Who will she meet there?" → "Who will
        Choe Son Hui meet in Moscow?"), or the question itself if the rewrite fails."""
        messages = prompt.build_rewrite(question, history, self.settings.history_turns)
        reply = "".join(self.llm.stream(messages, 3 * self.llm.count_tokens(question) + 40, 0.0))
        rewritten = prompt.parse_rewrite(reply, question)
        log.info("Follow-up %r rewritten as %r", question, rewritten)
        return rewritten or question

    def ask(self, question: str, history: History | None = None, k: int | None = None,
            stream: bool = False, doc_ids: Iterable[str] | None = None,
            temperature: float | None = None) -> Answer | AnswerStream:
        question = prompt.clean_question(question)
        prompt.check_fits(prompt.neutralize(question), self.llm, self.settings.max_tokens)  # before any work
        history = list(history or [])
        self.refresh()
        t0 = time.perf_counter()
        standalone = self._standalone(question, history) if history else question
        # A follow-up made standalone needs no transcript; if the rewrite failed, the model gets one.
        context = [] if standalone != question else history
        passages = self.retrieve(standalone, history, k or self.settings.top_k, doc_ids)
        retrieval_s = time.perf_counter() - t0
        relevant = bool(passages) and max(p.similarity for p in passages) >= self.settings.min_relevance
        temp = self.settings.temperature if temperature is None else temperature
        premise = " ".join([question, standalone, *(history[-1][:1] if history else [])])

        def run() -> Iterator[str]:
            if not relevant:  # nothing on topic: decline without spending seconds in the LLM
                yield prompt.DECLINE
                stream_obj.answer = Answer(question, prompt.DECLINE, [], passages, True,
                                           Timings(retrieval_s, None, time.perf_counter() - t0))
                return
            first: float | None = None
            look = self.settings.second_look
            looks = ["answer"]
            if look and max(p.similarity for p in passages) >= look:
                # The second look, while the model keeps declining although a passage is on
                # topic: ask it to quote the answer, then to answer again with the passages in
                # reverse order (a 1.5B model reads the first passage hardest, and a near miss
                # there can make it decline an answer that sits in another).
                looks += ["quote", "reversed"]
            shown = passages
            for n, kind in enumerate(looks):
                if kind == "reversed" and len(shown) < 2:
                    break  # one passage reads the same either way
                extractive = kind == "quote"
                built = prompt.build(standalone, shown[::-1] if kind == "reversed" else shown, context, self.llm,
                                     self.settings.max_tokens, self.settings.history_turns, extractive=extractive)
                if n == 0:
                    shown = built.passages  # those that fitted, so reversing them keeps the best
                else:
                    yield "\n\n"  # each look streams below the one before
                pieces: list[str] = []
                for delta in self.llm.stream(built.messages, self.settings.max_tokens, temp):
                    first = first or time.perf_counter() - t0
                    pieces.append(delta)
                    yield delta
                raw = "".join(pieces)
                result = _finish(_whole_sentences(raw, built.passages) if extractive else raw, built.passages, premise,
                                 [self.retriever.article(p.chunk.doc_id) for p in built.passages])
                # A later look counts only if it answers, with the kind of answer asked for, and a
                # quote only if the passages it cites are about the question.
                if n == 0 or (not result[2] and _fits_question(standalone, result[0])
                              and (not extractive or _on_question(standalone, history, result[1]))):
                    text, citations, declined = result
                if not declined:
                    break
            if not declined and not _fits_question(standalone, text):
                text, citations, declined = prompt.DECLINE, [], True
            stream_obj.answer = Answer(question, text, citations, passages, declined,
                                       Timings(retrieval_s, first, time.perf_counter() - t0))

        stream_obj = AnswerStream(run())
        if stream:
            return stream_obj
        for _ in stream_obj:
            pass
        assert stream_obj.answer is not None
        return stream_obj.answer


_ASKS_QUANTITY = re.compile(r"^\W*((and|so|roughly|approximately|about|exactly)\W+)?"
                            r"(how (many|much|long|far|high|big|large|old)|what (percentage|share|proportion|number))\b",
                            re.IGNORECASE)
_HAS_QUANTITY = re.compile(r"\d|\b(one|two|three|four|five|six|seven|eight|nine|ten|dozens?|hundreds?|thousands?|"
                           r"millions?|billions?|several|few|half)\b", re.IGNORECASE)


_ASKS_MONEY = re.compile(r"^\W*(how much\b.*\b(pay|pays|paying|paid|cost|costs|spend|spent|worth|charge[sd]?)\b|"
                         r"what\b.*\b(dollar value|price|cost|sum)\b)", re.IGNORECASE)
_HAS_MONEY = re.compile(r"[$€£¥₩]\s*\d|\d[\d,.]*\s*(thousand|million|billion|trillion|mn|bn)?\s*"
                        r"(dollars?|euros?|pounds?|won|roubles?|rubles?|yuan|yen|usd|eur)\b", re.IGNORECASE)


def _fits_question(question: str, text: str) -> bool:
    """A "how many" question is not answered by a sentence without any quantity, nor
    a question about money by one without a currency ("10 per cent" is no dollar value)."""
    said = prompt.strip_markers(text)
    if _ASKS_MONEY.search(question) and not _HAS_MONEY.search(said):
        return False
    return not _ASKS_QUANTITY.search(question) or bool(_HAS_QUANTITY.search(said))


_CITED_SPAN = re.compile(r"([^\[\]]+?)\s*\[(\d+)\]")


def _whole_sentences(raw: str, shown: list[Passage]) -> str:
    """The second look often copies a fragment ("Tomahawk missiles [1]"): show the whole
    sentence of the cited passage it came from, which answers in context and is a
    verbatim quote. Anything not found in its passage is left for the verifier."""
    out: list[str] = []
    for m in _CITED_SPAN.finditer(raw):
        fragment, n = " ".join(m.group(1).split()).strip(" .,;:").lower(), int(m.group(2))
        quote = m.group().strip()
        if fragment and 1 <= n <= len(shown):
            text = shown[n - 1].text
            sentences = [" ".join(text[a:b].split()) for a, b in split_sentences(text)]
            quote = next((f"{s.rstrip('.')} [{n}]." for s in sentences if fragment in s.lower()), quote)
        if quote not in out:
            out.append(quote)
    return " ".join(out) or raw


# Stems of words that say how a question is put, not what it is about: "What type of
# missile did Kyiv reportedly ask for?" is about a missile and Kyiv.
_FRAMING = frozenset({"type", "kind", "sort", "report", "name"})


def _on_question(question: str, history: History, citations: list[Citation], share: float = 0.6) -> bool:
    """A copied sentence answers the question only if the passages it cites are about it:
    most of the question's content words (with the previous question's, for a
    follow-up) occur there."""
    wanted = content_terms(question)
    if history:
        wanted |= content_terms(history[-1][0])
    wanted -= _FRAMING
    found = content_terms(" ".join(c.text for c in citations))
    return bool(wanted) and len(wanted & found) / len(wanted) >= share


def _finish(raw: str, shown: list[Passage], question: str, articles: list[str]) -> tuple[str, list[Citation], bool]:
    """Verified text with markers renumbered 1..n in order of first use."""
    checked = cite.verify(raw, shown, question, articles)
    if checked.dropped:
        log.info("Dropped unsupported claims: %s", checked.dropped)
    text, order = checked.render()
    if checked.declined:
        return text if cite.is_decline(text) else prompt.DECLINE, [], True
    citations = [Citation(n, shown[i].chunk.doc_id, shown[i].title, shown[i].path, shown[i].chunk.start,
                          shown[i].chunk.end, shown[i].text, shown[i].similarity, shown[i].meta.source,
                          shown[i].meta.published, shown[i].meta.author, shown[i].meta.url, shown[i].chunk.page)
                 for n, i in enumerate(order, start=1)]
    return text, citations, False


_engines: dict[Settings, Engine] = {}
_engines_lock = threading.Lock()


def get_engine(settings: Settings | None = None, progress: bool = False) -> Engine:
    """The process-wide Engine for these settings, created on first use."""
    settings = settings or Settings()
    with _engines_lock:
        if settings not in _engines:
            _engines[settings] = Engine(settings, progress=progress)
        return _engines[settings]


def ask(question: str, *, history: History | None = None, k: int | None = None, stream: bool = False,
        settings: Settings | None = None, doc_ids: Iterable[str] | None = None,
        temperature: float | None = None) -> Answer | AnswerStream:
    """Answer ``question`` from the indexed articles, with verified citations.

    >>> a = ask("How many North Korean troops are in Russia according to the Pentagon?")  # doctest: +SKIP
    >>> a.text, a.citations[0].doc_id                                                      # doctest: +SKIP
    ('The Pentagon says about 10,000 North Korean troops are in Russia [1].', '000_3aae16b9763f2444')
    """
    return get_engine(settings).ask(question, history, k, stream, doc_ids, temperature)
