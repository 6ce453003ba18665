"""Questions that ask for a measure ("how far", "how many square kilometres"): the sentences
of the passages that state one, each weighed by the model as the answer or not.

A small model often declines such a question with the answer in front of it ("It reached
an altitude of 7,000 km and flew a distance of 1,000 km, the Japanese government said."),
or copies a number from the wrong part of a sentence. The question's own words say what
kind of answer it needs (a length, an area, a time, a mass: ``asked_dimensions``), so the
candidates are the passages' sentences that state a measure of that kind, closest to the
question first (by the embedder); the model only answers Yes or No for each ("does this
sentence give the answer?"), which costs one short prompt and no generation. The answer
quotes the sentences it accepts, one per article, so two articles' different figures are
both shown.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from .chunking import split_sentences
from .generate import says_yes
from .retrieve import Passage
from .verify.question import asked_dimensions
from .verify.rules import measures

if TYPE_CHECKING:
    from .engine import Engine

SYSTEM = "You check whether a sentence from a news article answers a question. Answer with one word: Yes or No."
CANDIDATES = 3  # sentences weighed by the model, closest to the question first


def candidates(question: str, passages: Sequence[Passage]) -> list[tuple[str, int]]:
    """(sentence, passage index) for each sentence stating a measure of the kind asked, in passage order."""
    wanted = asked_dimensions(question)
    out = []
    for i, p in enumerate(passages):
        for a, b in split_sentences(p.text):
            sentence = " ".join(p.text[a:b].split())
            if any(dim in wanted for _, dim in measures(sentence)):
                out.append((sentence, i))
    return out


def _answers(engine: Engine, question: str, sentence: str, p: Passage) -> bool:
    about = p.meta.about()
    user = (f"Passage{f' ({about})' if about else ''}: {p.text}\n\nSentence: {sentence}\n\nQuestion: {question}\n\n"
            "Does the sentence give the answer to the question? Answer Yes or No.")
    return says_yes(engine.llm, SYSTEM, user)


def answer(engine: Engine, question: str, passages: Sequence[Passage]) -> str | None:
    """The sentences that answer, each with its passage's marker ("… 1,000 km … [2]."), at most
    one per article; None when the passages state no measure of the kind asked or the model
    accepts none of the closest ``CANDIDATES``."""
    found = candidates(question, passages)
    if not found:
        return None
    vectors = engine.embedder.embed([question, *(s for s, _ in found)])
    closest = np.argsort(-(vectors[1:] @ vectors[0]), kind="stable")[:CANDIDATES]
    chosen: dict[str, str] = {}
    for j in closest:
        sentence, i = found[j]
        doc = passages[i].chunk.doc_id
        if doc not in chosen and _answers(engine, question, sentence, passages[i]):
            chosen[doc] = f"{sentence.rstrip('.')} [{i + 1}]."
    return " ".join(chosen.values()) or None
