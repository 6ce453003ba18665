"""`rag bench`'s rows for scale-out: answers/s from Ray Serve with 1 and with 2 LLM replicas.

Both on the two-node Ray cluster of ``rag.cluster.trial`` (one logical CPU and one LLM
thread per replica; each replica a node), in private namespaces on 127.0.0.1, the same
questions asked with as many in flight as there are replicas. Without the cluster extra,
the rows say so and hold no figure.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from .config import Settings

NEEDS = ("ray", "pymilvus", "milvus_lite")


def cluster_rows(settings: Settings, questions: list[str], row):  # noqa: ANN001,ANN201 (row: bench.Row)
    """Rows: answers/s with 1 vs 2 replicas (baseline 1, ours 2) and each count's answer p50."""
    metric = "Ray Serve throughput, answers/s (1 vs 2 replicas)"
    if missing := [m for m in NEEDS if importlib.util.find_spec(m) is None]:
        return [row(f"{metric}: skipped, cluster extra not installed ({', '.join(missing)})", "answers/s",
                    None, None)]
    from .cluster.local import run_isolated

    work = Path(tempfile.mkdtemp(prefix="rag-bench-cluster-"))
    (work / "questions.json").write_text(json.dumps(questions))
    done = run_isolated([sys.executable, "-m", "rag.cluster.trial", "--out", str(work / "report.json"),
                         "--questions", str(work / "questions.json"), "--corpus-dir", str(settings.corpus_dir),
                         "--replicas", "1,2"], timeout_s=3600, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                        text=True)
    if done.returncode != 0:
        raise RuntimeError(f"The cluster run failed:\n{done.stdout[-3000:]}")
    rounds = {r["replicas"]: r for r in json.loads((work / "report.json").read_text())["rounds"]}

    def p50(r: dict) -> float:
        times = sorted(a["seconds"] for a in r["answers"])
        return times[len(times) // 2]

    return [row(metric, "answers/s", rounds[1]["answers_per_s"], rounds[2]["answers_per_s"]),
            row("Ray Serve answer latency p50 (1 vs 2 replicas)", "s", p50(rounds[1]), p50(rounds[2]))]
