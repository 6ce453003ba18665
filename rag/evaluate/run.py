"""`rag eval --set …`: run several question sets in one process and report them in one table.

Each folder set's corpus is indexed into a temporary folder, removed afterwards; the models
are loaded once (rag.models caches them) and every set gets its own Engine.

    >>> reports = run_sets(Settings(), ["../shared/benchmarks/rgb", "own"], limit=5)   # doctest: +SKIP
    >>> reports[0].total.correct                                                       # doctest: +SKIP
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from ..answer import Answer
from ..engine import Engine, get_engine
from ..config import Settings
from ..errors import InputError
from ..generate import ChatModel
from . import own
from .llm_cache import CachedLLM
from .report import SetReport, QuestionRow, cache_note, markdown_table, summarize_set, write_json
from .rules import evidence_cited, evidence_retrieved, is_correct, markers_resolve
from .sets import OWN, Question, QuestionSet, load_set, unique_names


def load_sets(sets: Sequence[str | Path]) -> list[QuestionSet]:
    """Every set checked before any model is loaded; "own" is the bundled set."""
    loaded = [QuestionSet(OWN, None, None, []) if str(s) == OWN else load_set(Path(s)) for s in sets]
    names = unique_names([s.name for s in loaded])
    return [QuestionSet(n, s.path, s.corpus_dir, s.questions) for n, s in zip(names, loaded)]


def question_row(q: Question, answer: Answer) -> QuestionRow:
    answerable = q.answer_kind != "decline"
    return QuestionRow(
        q.id, q.type, q.question, answer.text, is_correct(q.answer_kind, q.answers, answer), answer.declined,
        answerable, evidence_retrieved(answer, q.evidence_files) if answerable else None,
        evidence_cited(answer, q.evidence_files) if answerable else None, markers_resolve(answer),
        answer.timings.total_s, answer.timings.first_token_s,
        sorted({Path(c.path).name for c in answer.citations}))


class _CallCounter:
    """Model calls per question, and how many of them the cache replayed."""

    def __init__(self, llm: ChatModel | None) -> None:
        self.llm = llm if isinstance(llm, CachedLLM) else None
        self._before = (0, 0)

    def start(self) -> None:
        if self.llm is not None:
            self._before = (self.llm.hits, self.llm.misses)

    def stamp(self, row: QuestionRow) -> None:
        if self.llm is not None:
            hits, misses = self.llm.hits - self._before[0], self.llm.misses - self._before[1]
            row.model_calls, row.cached_calls = hits + misses, hits


def _run_own(settings: Settings, limit: int | None, llm: ChatModel | None, embedder, echo: bool) -> SetReport:
    engine = Engine(settings, llm, embedder, progress=echo) if llm is not None or embedder is not None \
        else get_engine(settings, echo)
    report = SetReport(OWN, None)
    counter = _CallCounter(llm)
    results = []
    for item in own.load_items()[:limit]:
        counter.start()
        answer = engine.ask(item.question, history=item.history)
        result = own.score(item, answer)
        results.append(result)
        row = own.to_row(item, result, answer)
        counter.stamp(row)
        report.rows.append(row)
        if echo:
            print(own.progress_line(f"{OWN}/", row.correct, item.id, item.kind, row.seconds, item.question,
                                    answer.text), flush=True)
    report.totals = own.summarize(results)
    return report


def _run_folder(settings: Settings, qset: QuestionSet, limit: int | None, llm: ChatModel | None, embedder,
                echo: bool) -> SetReport:
    report = SetReport(qset.name, str(qset.path))
    index_dir = Path(tempfile.mkdtemp(prefix=f"rag-eval-{qset.name}-"))
    try:
        engine = Engine(settings.model_copy(update={"corpus_dir": qset.corpus_dir, "index_dir": index_dir}),
                        llm, embedder, progress=echo)
        counter = _CallCounter(llm)
        for q in qset.questions[:limit]:
            counter.start()
            answer = engine.ask(q.question)
            row = question_row(q, answer)
            counter.stamp(row)
            report.rows.append(row)
            if echo:
                print(own.progress_line(f"{qset.name}/", row.correct, q.id, q.type, row.seconds, q.question,
                                        answer.text), flush=True)
    finally:
        shutil.rmtree(index_dir, ignore_errors=True)
    return report


def run_sets(settings: Settings, sets: Sequence[str | Path], limit: int | None = None,
             llm_cache: Path | None = None, echo: bool = True, llm: ChatModel | None = None,
             embedder=None) -> list[SetReport]:
    """Answer and score every question of each set (the first ``limit`` of each), in order.

    ``sets``: folders holding corpus/ and questions.jsonl, or "own" (the bundled set).
    ``llm_cache``: a JSON file of model replies (see llm_cache.CachedLLM), made if missing.
    ``llm``, ``embedder``: models to use instead of rag.models' (tests pass fakes)."""
    if limit is not None and limit < 1:
        raise InputError(f"--limit {limit}: give at least 1 question per set (or leave it out for all).")
    qsets = load_sets(sets)
    if llm_cache is not None:
        if llm is None:
            from ..models import get_llm

            llm = get_llm(settings, progress=echo)
        llm = CachedLLM(llm, llm_cache)
    reports = []
    for qset in qsets:
        if echo:
            print(f"\n== {qset.name} ({qset.path or 'bundled set, ' + str(settings.corpus_dir)})", flush=True)
        rep = _run_own(settings, limit, llm, embedder, echo) if qset.path is None else \
            _run_folder(settings, qset, limit, llm, embedder, echo)
        summarize_set(rep)
        reports.append(rep)
    return reports


def eval_sets(settings: Settings, sets: Sequence[str | Path], limit: int | None = None, out: Path | None = None,
              llm_cache: Path | None = None, echo: bool = True, llm: ChatModel | None = None,
              embedder=None) -> list[SetReport]:
    """`rag eval`: run_sets, then print one Markdown table (and the bundled set's totals) and write --out."""
    reports = run_sets(settings, sets, limit, llm_cache, echo, llm, embedder)
    calls = [r for rep in reports for r in rep.rows]
    note = cache_note(llm_cache, sum(r.cached_calls or 0 for r in calls), sum(r.model_calls or 0 for r in calls))
    if echo:
        print("\n" + markdown_table(reports))
        for rep in reports:
            if rep.totals:
                print(f"\n{rep.name} totals: " + ", ".join(
                    f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in rep.totals.items()))
        if note:
            print("\n" + note)
    if out:
        write_json(out, reports, settings.model_dump(mode="json"), note)
        if echo:
            print(f"\nSaved to {out}")
    return reports
