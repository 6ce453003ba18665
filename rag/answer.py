"""What a question turns into: a cited ``Answer``, and the events that lead to it.

The pipeline (``rag.engine``) emits events as it works: ``Retrieved`` (the passages),
``Delta`` (text of the first look, as the model writes it), ``Status`` (a later look
is checking the passages again; its raw text is never shown) and ``Final`` (the
verified answer). The CLI, the web UI, the HTTP API and ``ask(stream=True)`` all
consume the same events.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from .retrieve import Passage


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
    also: tuple[str, ...] = ()  # the other outlets (or articles) that carried the same text: a wire copy


@dataclass(frozen=True)
class Timings:
    retrieval_s: float
    first_token_s: float | None  # None when the LLM was not called
    total_s: float


@dataclass(frozen=True)
class Figure:
    """One source's figure for a quantity the cited passages disagree on."""

    quantity: str  # what is counted, e.g. "dead"
    value: str  # as the passage writes it, e.g. "19"
    source: str | None  # the outlet
    published: date | None
    marker: int  # the citation that states it


@dataclass(frozen=True)
class TimelineEntry:
    """A dated, cited event of a timeline answer."""

    published: date | None
    text: str
    source: str | None
    marker: int


@dataclass(frozen=True)
class Window:
    """The dates a question's own words restricted the search to ("before October 30",
    "last week"), resolved against ``today`` or the newest article."""

    since: date | None
    until: date | None
    phrase: str  # the words of the question that set it


@dataclass(frozen=True)
class Answer:
    question: str
    text: str  # with inline markers [1], [2] … that all resolve to ``citations``
    citations: list[Citation]
    passages: list[Passage]  # everything retrieved, best first
    declined: bool  # True when the articles do not answer the question
    timings: Timings
    disagreements: list[Figure] = field(default_factory=list)  # each source's figure, when they differ
    timeline: list[TimelineEntry] = field(default_factory=list)  # for "timeline of …" questions, in date order
    window: Window | None = None  # the dates the question's words searched


# --- events ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Retrieved:
    passages: list[Passage]


@dataclass(frozen=True)
class Delta:
    text: str  # raw model text of the first look; the verified answer may differ


@dataclass(frozen=True)
class Status:
    text: str  # "Checking the passages again…": a later look is running


@dataclass(frozen=True)
class Final:
    answer: Answer


Event = Retrieved | Delta | Status | Final


class AnswerStream(Iterator[str]):
    """Text deltas as the model writes them; ``.answer`` holds the verified Answer
    once the iterator is exhausted (the verified text may drop or renumber markers).
    ``.statuses`` lists the status lines seen so far."""

    def __init__(self, events: Iterator[Event]) -> None:
        self._events = events
        self.answer: Answer | None = None
        self.statuses: list[str] = []

    def __next__(self) -> str:
        for event in self._events:
            if isinstance(event, Delta):
                return event.text
            if isinstance(event, Status):
                self.statuses.append(event.text)
            elif isinstance(event, Final):
                self.answer = event.answer
        raise StopIteration

    def close(self) -> None:
        close = getattr(self._events, "close", None)
        if close:
            close()
