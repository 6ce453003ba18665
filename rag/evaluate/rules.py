"""Scoring rules shared by every question set: citations that resolve, and the
benchmark rules for `span`, `yesno` and `decline` answers.

    >>> span_correct("The 2004 Games were held in Athéns [1].", ["athens"], declined=False)
    True
    >>> first_yes_no("Not really: no, it did not [2]. Yes, the earlier one did.")
    'no'
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from pathlib import Path

from ..answer import Answer
from ..ingest import read_source
from ..text import RENDERED_MARKER

_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}\b)")  # "10,000" -> "10000", "12, 2020" untouched
_NOT_WORD = re.compile(r"[\W_]+")


def markers_resolve(answer: Answer) -> bool:
    """Every [n] has a citation, and every citation's text is exactly its file's text[start:end]."""
    by_marker = {c.marker: c for c in answer.citations}
    if any(int(m) not in by_marker for m in RENDERED_MARKER.findall(answer.text)):
        return False
    for c in answer.citations:
        source = read_source(Path(c.path))
        if source is None or source[c.start : c.end] != c.text:
            return False
    return True


def normalize(text: str) -> str:
    """Lower case, accents dropped, thousands separators removed, every run of
    punctuation or spaces one space, padded with a space on each side so that
    `" athens " in normalize(answer)` matches whole words only.

    >>> normalize("Nov. 12, 2020: 10,000 Bankman-Fried’s")
    ' nov 12 2020 10000 bankman fried s '
    """
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    words = _NOT_WORD.sub(" ", _THOUSANDS.sub("", plain)).split()
    return f" {' '.join(words)} "


def declines(answer: Answer) -> bool:
    """A decline claims nothing and cites nothing."""
    return answer.declined and not answer.citations


def span_correct(text: str, accepted: Iterable[str], declined: bool) -> bool:
    """Not declined, and an accepted string occurs in the answer as whole words."""
    said = normalize(text)
    return not declined and any(normalize(a) in said for a in accepted if normalize(a).strip())


def first_yes_no(text: str) -> str | None:
    """The first word "yes" or "no" of the answer ("eyes" and "nobody" are other words)."""
    return next((w for w in normalize(text).split() if w in ("yes", "no")), None)


def yesno_correct(text: str, expected: str, declined: bool) -> bool:
    return not declined and first_yes_no(text) == expected.strip().lower()


def is_correct(answer_kind: str, answers: list[str], answer: Answer) -> bool:
    """The benchmark rule for one answer kind (see /benchmarks README: span, yesno, decline)."""
    if answer_kind == "decline":
        return declines(answer)
    if answer_kind == "yesno":
        return yesno_correct(answer.text, answers[0], answer.declined)
    if answer_kind == "span":
        return span_correct(answer.text, answers, answer.declined)
    raise ValueError(f"unknown answer kind {answer_kind!r}")


def evidence_retrieved(answer: Answer, evidence_files: Iterable[str]) -> bool:
    """Some retrieved passage comes from an evidence file."""
    wanted = set(evidence_files)
    return any(p.path.name in wanted for p in answer.passages)


def evidence_cited(answer: Answer, evidence_files: Iterable[str]) -> bool:
    """Some citation leads into an evidence file."""
    wanted = set(evidence_files)
    return any(Path(c.path).name in wanted for c in answer.citations)
