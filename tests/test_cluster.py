"""Scale-out for real: a two-node Ray cluster (one logical CPU per node) and a milvus-lite
server, on 127.0.0.1 inside private network and process namespaces (so Ray binds loopback
only and nothing outlives the test). `rag index --ray` must run its work on both nodes, and
`rag serve --ray --replicas 2` must answer from replicas on both nodes, over the OpenAI wire
format. Skipped only when the cluster extra is not installed."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import pytest

from .conftest import ROOT, SEEDS

CLUSTER = all(importlib.util.find_spec(m) is not None for m in ("ray", "pymilvus", "milvus_lite"))
pytestmark = pytest.mark.skipif(not CLUSTER, reason="the cluster extra is not installed "
                                "(pip install -e '.[cluster]' brings ray, pymilvus and milvus-lite)")

QUESTIONS = ["How many North Korean troops are in Russia according to the Pentagon?",
             "Which NATO leader said North Korean forces were in Kursk?",
             "Who is visiting Moscow?",
             "What does the US call the North Korean troops sent to Russia?"]


def test_import_rag_loads_neither_ray_nor_milvus() -> None:
    code = "import rag, rag.store, rag.cli, sys; print(sorted(m for m in ('ray', 'pymilvus', 'milvus_lite') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


@pytest.mark.slow
def test_two_node_cluster_indexes_and_answers_on_both_nodes(tmp_path) -> None:
    from rag.cluster.local import run_isolated

    # The bundled articles plus ~600 chunks of their sentences reshuffled (as `rag bench` makes
    # them): enough batches that both embedders stay busy.
    import shutil

    from rag.bench import _synthetic_corpus
    from rag.chunking import chunk_document
    from rag.ingest import load_corpus

    corpus = tmp_path / "corpus"
    _synthetic_corpus(corpus, SEEDS, 600, 400)
    for f in SEEDS.iterdir():
        shutil.copy(f, corpus / f.name)
    docs = load_corpus(corpus)
    questions = tmp_path / "questions.json"
    questions.write_text(json.dumps(QUESTIONS))
    out = tmp_path / "report.json"
    done = run_isolated([sys.executable, "-m", "rag.cluster.trial", "--out", str(out), "--questions", str(questions),
                         "--corpus-dir", str(corpus), "--replicas", "2"], timeout_s=1500, cwd=ROOT,
                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert done.returncode == 0, done.stdout[-4000:]
    report = json.loads(out.read_text())
    nodes = set(report["nodes"])
    print(f"Ray node ids: {sorted(nodes)}")  # shown with -s, or in the report of a failure
    assert len(nodes) == 2
    ingest = report["ingest"]
    assert ingest["documents"] == len(docs)
    assert ingest["chunks"] == sum(len(chunk_document(d, 400, 100)) for d in docs)  # as `rag index` cuts them
    assert set(ingest["nodes"]["embed"]) == nodes  # an embedder on each node did some of the work
    assert set(ingest["nodes"]["read"]) | set(ingest["nodes"]["write"]) <= nodes
    answers = report["rounds"][0]["answers"]
    assert {a["node"] for a in answers} == nodes  # replicas on both nodes answered
    by_question = {a["question"]: a for a in answers}
    assert "10,000" in by_question[QUESTIONS[0]]["text"] and by_question[QUESTIONS[0]]["citations"] >= 1
    assert "Rutte" in by_question[QUESTIONS[1]]["text"]
