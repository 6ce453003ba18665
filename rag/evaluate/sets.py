"""Question sets: the bundled one ("own") and folders holding `corpus/` and `questions.jsonl`.

A folder set's questions.jsonl has one JSON object per line:

    {"id": "q1", "question": "Which city hosted the 2004 Olympics?", "answers": ["athens"],
     "type": "answerable", "answer_kind": "span", "evidence_files": ["a.txt"]}

`answer_kind` is `span` (an accepted string must occur), `yesno` (answers is ["yes"] or
["no"]) or `decline` (the corpus does not answer; evidence_files is empty). Other fields
(noise_files, source …) are kept but not used.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError

OWN = "own"
KINDS = ("span", "yesno", "decline")
_FIELDS = ("id", "question", "answers", "type", "answer_kind", "evidence_files")


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    answers: list[str]
    type: str  # the set's own grouping, e.g. "answerable", "comparison", "null"
    answer_kind: str  # span | yesno | decline
    evidence_files: list[str]  # file names in the set's corpus/


@dataclass(frozen=True)
class QuestionSet:
    name: str  # "own", or the folder's name
    path: Path | None  # the folder; None for the bundled set
    corpus_dir: Path | None
    questions: list[Question]


def _fail(where: str, problem: str) -> InputError:
    return InputError(f"{where}: {problem}. Fix the file, or pass --set a folder holding corpus/ and "
                      "questions.jsonl (one JSON object a line: id, question, answers, type, answer_kind, "
                      "evidence_files).")


def _question(data: object, where: str) -> Question:
    if not isinstance(data, dict):
        raise _fail(where, "not a JSON object")
    missing = [f for f in _FIELDS if f not in data]
    if missing:
        raise _fail(where, f"missing field(s) {', '.join(missing)}")
    kind, answers, evidence = data["answer_kind"], data["answers"], data["evidence_files"]
    if kind not in KINDS:
        raise _fail(where, f"answer_kind {kind!r} is not one of {', '.join(KINDS)}")
    if not isinstance(answers, list) or not all(isinstance(a, str) for a in answers) or \
            (kind != "decline" and not answers):
        raise _fail(where, "answers must be a list of strings, not empty unless answer_kind is decline")
    if kind == "yesno" and (len(answers) != 1 or answers[0].lower() not in ("yes", "no")):
        raise _fail(where, f"a yesno question's answers must be [\"yes\"] or [\"no\"], not {answers!r}")
    if not isinstance(evidence, list) or not all(isinstance(e, str) for e in evidence):
        raise _fail(where, "evidence_files must be a list of file names")
    if not isinstance(data["question"], str) or not data["question"].strip():
        raise _fail(where, "question must be a non-empty string")
    return Question(str(data["id"]), data["question"], answers, str(data["type"]), kind, evidence)


def load_set(folder: Path) -> QuestionSet:
    """Read and check a folder set; every error names the file (and line) and what to do."""
    folder = Path(folder)
    corpus, questions_file = folder / "corpus", folder / "questions.jsonl"
    if not corpus.is_dir() or not questions_file.is_file():
        raise InputError(f"Question set {folder} needs a corpus/ folder and a questions.jsonl file. "
                         "Pass --set own for the bundled set, or a folder laid out like that.")
    questions: list[Question] = []
    seen: set[str] = set()
    for n, line in enumerate(questions_file.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{questions_file} line {n}"
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise _fail(where, f"not valid JSON ({exc.msg})") from exc
        q = _question(data, where)
        if q.id in seen:
            raise _fail(where, f"id {q.id!r} is used twice")
        absent = [f for f in q.evidence_files if not (corpus / f).is_file()]
        if absent:
            raise _fail(where, f"evidence file(s) {', '.join(absent)} not in {corpus}")
        seen.add(q.id)
        questions.append(q)
    if not questions:
        raise _fail(str(questions_file), "holds no questions")
    return QuestionSet(folder.resolve().name, folder, corpus, questions)


def unique_names(names: list[str]) -> list[str]:
    """Two folders both called "news" are reported as "news" and "news#2"."""
    out: list[str] = []
    for name in names:
        label, n = name, 2
        while label in out:
            label, n = f"{name}#{n}", n + 1
        out.append(label)
    return out
