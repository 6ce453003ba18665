"""The bundled question set ("own", rag/eval_set.json over seeds/) and its own scores.

Scores (all over the bundled corpus):
- correct: every expected fact appears in the answer (answerable questions), or the
  answer declines and cites nothing (unanswerable ones);
- recall@k: every expected fact appears in some retrieved passage;
- citation validity: every marker in the text resolves to a citation whose text is
  exactly the source file's text at [start, end);
- citation support: for each answer sentence stating an expected fact and citing
  passages, a cited passage holds that fact;
- abstention: share of unanswerable questions declined; latency p50/p95.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path

from ..answer import Answer
from ..engine import Engine, get_engine
from ..chunking import split_sentences
from ..config import Settings
from ..text import RENDERED_MARKER, normalize_numbers
from .report import QuestionRow
from .rules import markers_resolve



@dataclass(frozen=True)
class Item:
    id: str
    kind: str  # fact | unanswerable | disagree | followup
    question: str
    history: list[tuple[str, str]]
    expected: list[list[str]]  # facts; each a list of acceptable spellings
    docs: list[str]


@dataclass
class Result:
    id: str
    kind: str
    question: str
    answer: str
    correct: bool
    recalled: bool | None  # None for unanswerable questions
    markers_valid: bool
    supported: int
    support_checked: int
    declined: bool
    seconds: float
    first_token_s: float | None


@dataclass
class Report:
    results: list[Result] = field(default_factory=list)
    totals: dict[str, float] = field(default_factory=dict)
    rows: list[QuestionRow] = field(default_factory=list)  # the same questions, as every set reports them

    @property
    def ok(self) -> bool:
        return targets_met(self.totals)


def targets_met(t: dict[str, float]) -> bool:
    """The bundled set's targets (`rag eval --strict`)."""
    return (t["answers_correct"] >= 0.9 and t["markers_valid"] == 1.0 and t["citations_supported"] >= 0.9
            and t["unanswerable_declined"] >= 0.9)


def load_items(path: Path | None = None) -> list[Item]:
    text = path.read_text() if path else resources.files("rag").joinpath("eval_set.json").read_text()
    return [Item(d["id"], d["kind"], d["question"], [tuple(h) for h in d["history"]], d["expected"], d["docs"])
            for d in json.loads(text)]


def _norm(text: str) -> str:
    return " ".join(normalize_numbers(text).lower().replace("’", "'").split())


def has_fact(text: str, alternatives: list[str]) -> bool:
    t = _norm(text)
    return any(_norm(a) in t for a in alternatives)


def support(answer: Answer, facts: list[list[str]]) -> tuple[int, int]:
    """(supported, checked) over (sentence, fact) pairs where a citing sentence states a fact."""
    by_marker = {c.marker: c for c in answer.citations}
    ok = checked = 0
    for s, e in split_sentences(answer.text):
        sentence = answer.text[s:e]
        cited = [by_marker[int(m)] for m in RENDERED_MARKER.findall(sentence) if int(m) in by_marker]
        if not cited:
            continue
        for fact in facts:
            if has_fact(sentence, fact):
                checked += 1
                ok += any(has_fact(c.text, fact) for c in cited)
    return ok, checked


def score(item: Item, answer: Answer) -> Result:
    answerable = item.kind != "unanswerable"
    if answerable:
        correct = not answer.declined and all(has_fact(answer.text, f) for f in item.expected)
        recalled = all(any(has_fact(p.text, f) for p in answer.passages) for f in item.expected)
    else:
        correct, recalled = answer.declined and not answer.citations, None
    ok, checked = support(answer, item.expected)
    return Result(item.id, item.kind, item.question, answer.text, correct, recalled, markers_resolve(answer),
                  ok, checked, answer.declined, answer.timings.total_s, answer.timings.first_token_s)


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def summarize(results: list[Result]) -> dict[str, float]:
    answerable = [r for r in results if r.kind != "unanswerable"]
    unanswerable = [r for r in results if r.kind == "unanswerable"]
    checked = sum(r.support_checked for r in results)
    times = [r.seconds for r in results]
    ttft = [r.first_token_s for r in results if r.first_token_s is not None]
    return {
        "questions": len(results),
        "unanswerable": len(unanswerable),
        "answers_correct": sum(r.correct for r in results) / len(results),
        "answerable_correct": sum(r.correct for r in answerable) / max(1, len(answerable)),
        "recall_at_k": sum(bool(r.recalled) for r in answerable) / max(1, len(answerable)),
        "markers_valid": sum(r.markers_valid for r in results) / len(results),
        "citations_supported": sum(r.supported for r in results) / checked if checked else 1.0,
        "unanswerable_declined": sum(r.declined for r in unanswerable) / max(1, len(unanswerable)),
        "latency_p50_s": statistics.median(times),
        "latency_p95_s": _pct(times, 0.95),
        "first_token_p50_s": statistics.median(ttft) if ttft else float("nan"),
    }


def to_row(item: Item, result: Result, answer: Answer) -> QuestionRow:
    """The question in the form every set reports; evidence = the item's documents (by id)."""
    answerable = item.kind != "unanswerable"
    docs = set(item.docs)
    return QuestionRow(
        item.id, item.kind, item.question, answer.text, result.correct, answer.declined, answerable,
        any(p.chunk.doc_id in docs for p in answer.passages) if answerable else None,
        any(c.doc_id in docs for c in answer.citations) if answerable else None,
        result.markers_valid, result.seconds, result.first_token_s,
        sorted({Path(c.path).name for c in answer.citations}))


def progress_line(prefix: str, correct: bool, qid: str, kind: str, seconds: float, question: str,
                  answer: str) -> str:
    flag = "ok " if correct else "BAD"
    return (f"{flag} {prefix}{qid:<4} {kind:<12} {seconds:5.1f}s  {question}\n"
            f"             -> {' '.join(answer.split())[:300]}")


def run_eval(settings: Settings, limit: int | None = None, out: Path | None = None,
             items: list[Item] | None = None, echo: bool = True, engine: Engine | None = None) -> Report:
    engine = engine or get_engine(settings, progress=echo)
    items = (items or load_items())[:limit]
    report = Report()
    for item in items:
        answer = engine.ask(item.question, history=item.history)
        r = score(item, answer)
        report.results.append(r)
        report.rows.append(to_row(item, r, answer))
        if echo:
            print(progress_line("", r.correct, r.id, r.kind, r.seconds, item.question, r.answer), flush=True)
    report.totals = summarize(report.results)
    if echo:
        print("\nTotals")
        for key, value in report.totals.items():
            print(f"  {key:<24} {value:.3f}" if isinstance(value, float) else f"  {key:<24} {value}")
    if out:
        out.write_text(json.dumps({"totals": report.totals, "results": [asdict(r) for r in report.results]},
                                  indent=1))
    return report
