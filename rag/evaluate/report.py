"""Per-set reports: one row per question, statistics per type and per set, a Markdown
table over every set run, and the whole as JSON."""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path

TOTAL = "all"


@dataclass
class QuestionRow:
    id: str
    type: str
    question: str
    answer: str
    correct: bool
    declined: bool
    answerable: bool
    evidence_retrieved: bool | None  # None for questions the corpus does not answer
    evidence_cited: bool | None
    markers_valid: bool
    seconds: float
    ttft: float | None  # None when the model was not called
    cited_files: list[str]
    model_calls: int | None = None  # counted only when the LLM cache is on
    cached_calls: int | None = None  # of model_calls, replayed from the LLM cache


@dataclass
class GroupStats:
    type: str  # a question type, or "all" for the set's total
    n: int
    correct: float  # shares, 0..1
    declined: float
    evidence_retrieved: float | None  # None when no question of the group is answerable
    evidence_cited: float | None
    markers_valid: float
    latency_p50_s: float
    latency_p95_s: float
    ttft_p50_s: float | None


@dataclass
class SetReport:
    name: str
    path: str | None
    rows: list[QuestionRow] = field(default_factory=list)
    groups: list[GroupStats] = field(default_factory=list)  # per type in order of first use, then "all"
    totals: dict[str, float] = field(default_factory=dict)  # the bundled set's own scores (rag.evaluate.summarize)

    @property
    def total(self) -> GroupStats:
        return self.groups[-1]


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (the one rag bench uses)."""
    if not values:
        return math.nan
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def _share(flags: list[bool]) -> float:
    return sum(flags) / len(flags) if flags else math.nan


def group_stats(label: str, rows: list[QuestionRow]) -> GroupStats:
    answerable = [r for r in rows if r.answerable]
    times = [r.seconds for r in rows]
    ttft = [r.ttft for r in rows if r.ttft is not None]
    return GroupStats(
        label, len(rows), _share([r.correct for r in rows]), _share([r.declined for r in rows]),
        _share([bool(r.evidence_retrieved) for r in answerable]) if answerable else None,
        _share([bool(r.evidence_cited) for r in answerable]) if answerable else None,
        _share([r.markers_valid for r in rows]),
        statistics.median(times) if times else math.nan, percentile(times, 0.95),
        statistics.median(ttft) if ttft else None)


def summarize_set(report: SetReport) -> None:
    """Fill ``report.groups``: one row per question type, then the set's total."""
    types = list(dict.fromkeys(r.type for r in report.rows))
    report.groups = [group_stats(t, [r for r in report.rows if r.type == t]) for t in types]
    report.groups.append(group_stats(TOTAL, report.rows))


def _pct(value: float | None) -> str:
    return "—" if value is None or math.isnan(value) else f"{100 * value:.0f}%"


def _sec(value: float | None) -> str:
    return "—" if value is None or math.isnan(value) else f"{value:.1f}"


HEADER = ("| set | type | n | correct | declined | evidence retrieved | evidence cited | markers valid "
          "| latency p50 s | latency p95 s | TTFT p50 s |")


def markdown_table(reports: list[SetReport]) -> str:
    lines = [HEADER, "|" + "---|" * HEADER.count(" | ") + "---|"]
    for rep in reports:
        for g in rep.groups:
            label = f"**{TOTAL}**" if g.type == TOTAL else g.type
            lines.append(f"| {rep.name} | {label} | {g.n} | {_pct(g.correct)} | {_pct(g.declined)} | "
                         f"{_pct(g.evidence_retrieved)} | {_pct(g.evidence_cited)} | {_pct(g.markers_valid)} | "
                         f"{_sec(g.latency_p50_s)} | {_sec(g.latency_p95_s)} | {_sec(g.ttft_p50_s)} |")
    return "\n".join(lines)


def cache_note(path: Path | None, hits: int, calls: int) -> str:
    if path is None:
        return ""
    if hits == 0:
        return (f"LLM cache on ({path}): none of {calls} model replies was replayed from it (all generated and "
                "saved), so these latencies are real.")
    return (f"LLM cache on ({path}): {hits} of {calls} model replies were replayed from it. Latencies and "
            "time to first token of questions with replayed replies are not real latencies.")


def _clean(value: object) -> object:
    """NaN is not JSON: write null."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def write_json(path: Path, reports: list[SetReport], settings: dict, note: str) -> None:
    data = {"llm_cache": note or None, "settings": settings,
            "sets": [asdict(r) for r in reports]}
    Path(path).write_text(json.dumps(_clean(data), indent=1, ensure_ascii=False, default=str), encoding="utf-8")
