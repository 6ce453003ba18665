"""`rag eval`: answer question sets and score answers, retrieval and citations.

- `own`: the bundled set (rag/eval_set.json over seeds/) with its own scores (own.py);
- folder sets: `corpus/` + `questions.jsonl` (sets.py), scored by the benchmark rules
  (rules.py), reported per set and per type (report.py), run by run.py;
- `--llm-cache`: replies memoised across runs (llm_cache.py).
"""

from .llm_cache import CachedLLM
from .own import Item, Report, Result, has_fact, load_items, run_eval, score, summarize, support
from .report import GroupStats, QuestionRow, SetReport, markdown_table
from .run import eval_sets, load_sets, run_sets
from .rules import markers_resolve
from .sets import Question, QuestionSet, load_set

__all__ = [
    "run_eval", "load_items", "score", "summarize", "markers_resolve", "has_fact", "support",
    "Item", "Result", "Report",
    "run_sets", "eval_sets", "load_sets", "load_set", "Question", "QuestionSet",
    "SetReport", "GroupStats", "QuestionRow", "markdown_table", "CachedLLM",
]
