"""``ask()``: question in, cited answer out, with the models and index loaded once.

``Engine.events`` is the whole answer pipeline, top to bottom (the steps are in
``rag.steps``, the looks in ``rag.looks``); ``Engine.ask`` and ``ask`` wrap it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator, Sequence
from datetime import date
from pathlib import Path
from typing import Any

from . import looks, prompt, steps
from .answer import Answer, AnswerStream, Event, Final, Retrieved, Status
from .config import Settings
from .errors import InputError
from .generate import ChatModel
from .index import Index
from .ingest import SUFFIXES
from .ingest.sidecar import SIDECARS
from .models import get_embedder, get_llm
from .retrieve import Filter, Passage, Retriever
from .store import sync

History = Sequence[tuple[str, str]]  # (question, answer) pairs, oldest first


def _corpus_snapshot(folder: Path) -> tuple:
    """Names, sizes and mtimes of the articles and the metadata sidecar: cheap enough to
    check before every question."""
    try:
        return tuple(sorted((e.name, e.stat().st_size, e.stat().st_mtime_ns) for e in os.scandir(folder)
                            if e.is_file() and (e.name.lower().endswith(SUFFIXES) or e.name in SIDECARS)))
    except FileNotFoundError:
        return ()


class Engine:
    """The loaded index, retriever and models for one Settings."""

    def __init__(self, settings: Settings, llm: ChatModel | None = None, embedder=None,
                 progress: bool = False) -> None:
        self.settings = settings
        # The LLM worker process starts first, so the model loads while the embedder and the index do.
        self.llm = llm or get_llm(settings, progress=progress)
        self.embedder = embedder or get_embedder(settings)
        self._lock = threading.Lock()
        self._progress = progress
        self.refresh(force=True)

    def refresh(self, force: bool = False) -> Index:
        """Re-sync the index when the corpus folder changed since the last look."""
        with self._lock:
            snap = _corpus_snapshot(self.settings.corpus_dir)
            if force or snap != self._snapshot:
                self.index = sync(self.settings, self.embedder, progress=self._progress)
                self.retriever = Retriever(self.index, self.embedder)
                self._snapshot = snap
            return self.index

    def retrieve(self, question: str, history: History = (), k: int | None = None,
                 where: Filter | None = None) -> list[Passage]:
        """The passages ``ask`` would give the model for ``question`` (a follow-up is not rewritten)."""
        d = steps.Draft(question, list(history), k or self.settings.top_k, where or Filter(), 0.0,
                        standalone=question)
        steps.retrieve(self, d)
        return d.passages

    def events(self, question: str, history: History | None = None, *, k: int | None = None,
               doc_ids: Iterable[str] | None = None, sources: Iterable[str] | None = None,
               since: date | str | None = None, until: date | str | None = None, today: date | str | None = None,
               temperature: float | None = None) -> Iterator[Event]:
        """Answer ``question``, as events: Retrieved, Delta…, Status…, Final. ``doc_ids``,
        ``sources`` (outlets), ``since`` and ``until`` (dates or ISO strings, inclusive)
        restrict the articles searched; ``today`` is what relative dates in the question ("last
        week") count from (default: the newest article's date)."""
        question = prompt.clean_question(question)
        prompt.check_fits(prompt.neutralize(question), self.llm, self.settings.max_tokens)  # before any work
        where = Filter(frozenset(doc_ids) if doc_ids is not None else None,
                       frozenset(sources) if sources is not None else None,
                       as_date(since, "since"), as_date(until, "until"))
        self.refresh()
        d = steps.Draft(question, list(history or []), k or self.settings.top_k, where,
                        self.settings.temperature if temperature is None else temperature, as_date(today, "today"))
        return self._run(d)

    def _run(self, d: steps.Draft) -> Iterator[Event]:
        steps.rewrite(self, d)
        steps.understand(self, d)
        steps.retrieve(self, d)
        yield Retrieved(d.passages)
        if steps.gate(self, d):
            for n, look in enumerate(looks.looks_for(self, d)):
                if n and not look.applies(self, d):
                    continue
                if n:
                    yield Status(look.status)
                yield from look.run(self, d, first=n == 0)
                steps.check(self, d)  # an answer that fails the checks is a decline: the next look tries
                if not d.declined:
                    break
            steps.annotate(self, d)
        yield Final(d.answer())

    def ask(self, question: str, history: History | None = None, *, stream: bool = False,
            **options: Any) -> Answer | AnswerStream:
        """The verified answer (or, with ``stream``, an AnswerStream); ``options`` as for ``events``."""
        answer = AnswerStream(self.events(question, history, **options))
        if stream:
            return answer
        for _ in answer:
            pass
        assert answer.answer is not None
        return answer.answer


def as_date(value: date | str | None, name: str) -> date | None:
    """A date given as a date or an ISO string (2024-10-29); InputError names a bad one."""
    if value is None or isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise InputError(f"{name}={value!r} is not a date: give it as YYYY-MM-DD, e.g. 2024-10-29.") from None


_engines: dict[Settings, Engine] = {}
_engines_lock = threading.Lock()


def get_engine(settings: Settings | None = None, progress: bool = False) -> Engine:
    """The process-wide Engine for these settings, created on first use."""
    settings = settings or Settings()
    with _engines_lock:
        if settings not in _engines:
            _engines[settings] = Engine(settings, progress=progress)
        return _engines[settings]


def ask(question: str, *, history: History | None = None, stream: bool = False, settings: Settings | None = None,
        **options: Any) -> Answer | AnswerStream:
    """Answer ``question`` from the indexed articles, with verified citations.

    Options: ``k`` (passages), ``doc_ids``, ``sources`` (outlets), ``since`` and ``until``
    (dates or ISO strings) to restrict the search, ``temperature``.

    >>> a = ask("How many North Korean troops are in Russia according to the Pentagon?")  # doctest: +SKIP
    >>> a.text, a.citations[0].doc_id                                                      # doctest: +SKIP
    ('The Pentagon says about 10,000 North Korean troops are in Russia [1].', '000_3aae16b9763f2444')
    """
    return get_engine(settings).ask(question, history, stream=stream, **options)
