"""A smoke run of the benchmark: every measurement runs and lands in the table and the JSON.
Timings are reported, never asserted (they belong to the benchmark, not to tests)."""

import importlib.util
import json

import pytest

pytestmark = pytest.mark.slow


def test_quick_benchmark_measures_everything(real_settings, real_engine, tmp_path, capsys):
    from rag.bench import run_bench

    out = tmp_path / "bench.json"
    rows = run_bench(real_settings, quick=True, out=out)
    metrics = {r.metric for r in rows}
    for expected in ("cold start: new process to first answer", "warm start: next question, same process",
                     "query embedding", "index build, bundled corpus",
                     "retrieval p50 @ 10,000 vectors", "retrieval recall@10 vs exact @ 10,000 vectors",
                     "LLM time to first token", "LLM generation", "answer latency p50 (eval questions)",
                     "eval: answers correct", "API: first content chunk p50, streamed",
                     "API: overhead over its ask() p50", "peak memory (RSS) of this process"):
        assert expected in metrics
    cluster = [r for r in rows if r.metric.startswith("Ray Serve")]
    if importlib.util.find_spec("ray") and importlib.util.find_spec("milvus_lite"):  # the cluster extra
        assert {r.metric for r in cluster} == {"Ray Serve throughput, answers/s (1 vs 2 replicas)",
                                               "Ray Serve answer latency p50 (1 vs 2 replicas)"}
    else:
        assert len(cluster) == 1 and "skipped" in cluster[0].metric and cluster[0].ours is None
        rows = [r for r in rows if r not in cluster]
    assert all(r.ours is not None and r.ours == r.ours for r in rows)  # measured, not NaN
    saved = json.loads(out.read_text())
    assert [r["metric"] for r in saved] == [r.metric for r in rows]
    assert "baseline" in capsys.readouterr().out
