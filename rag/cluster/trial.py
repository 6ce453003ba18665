"""A real scale-out run on this machine: ``python -m rag.cluster.trial --out FILE``.

Run it inside ``rag.cluster.local.isolated()`` (the cluster test and `rag bench` do): it
starts a milvus-lite server and a two-node Ray cluster on 127.0.0.1 (one logical CPU per
node), runs `rag index --ray` into Milvus, then for each replica count deploys
`rag serve --ray`, asks the questions over HTTP with as many requests in flight as there
are replicas, and writes what happened as JSON: node ids per ingestion stage, the node of
the replica behind each answer, answers and answers/s. Everything it starts, it stops.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path

from ..config import Settings
from .local import free_port, milvus_server, ray_cluster


WARM_UP = "What is this collection of articles about?"  # not among the timed questions


def _ask(url: str, question: str, timeout_s: float) -> dict:
    body = json.dumps({"model": "rag", "messages": [{"role": "user", "content": question}]}).encode()
    request = urllib.request.Request(f"{url}/v1/chat/completions", body, {"Content-Type": "application/json"})
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310 (our own loopback server)
        data = json.loads(response.read())
        node, replica = response.headers["X-Rag-Node"], response.headers["X-Rag-Replica"]
    return {"question": question, "text": data["choices"][0]["message"]["content"], "node": node, "replica": replica,
            "citations": len(data["citations"]), "seconds": time.perf_counter() - started}


def serve_round(settings: Settings, address: str, replicas: int, questions: list[str], timeout_s: float) -> dict:
    """Deploy with ``replicas`` answerers, ask every question (``replicas`` in flight), undeploy."""
    import ray
    from ray import serve

    from .serve import start

    try:
        url = start(settings, address, replicas)
        with ThreadPoolExecutor(replicas) as pool:  # warm-up, not timed: a replica's first answer loads its model
            warm = list(pool.map(lambda q: _ask(url, q, timeout_s), [WARM_UP] * replicas))
        started = time.perf_counter()
        with ThreadPoolExecutor(replicas) as pool:
            answers = list(pool.map(lambda q: _ask(url, q, timeout_s), questions))
        elapsed = time.perf_counter() - started
    finally:
        serve.shutdown()
        ray.shutdown()  # before the cluster stops: a driver that outlives its cluster exits with status 1
    return {"replicas": replicas, "warm_up": warm, "answers": answers, "seconds": elapsed, "answers_per_s": len(answers) / elapsed}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rag.cluster.trial")
    parser.add_argument("--out", required=True, help="where to write the JSON report")
    parser.add_argument("--corpus-dir", default="seeds")
    parser.add_argument("--replicas", default="2", help="comma-separated replica counts, one round each")
    parser.add_argument("--questions", required=True, help="a JSON file: a list of questions")
    parser.add_argument("--timeout", type=float, default=300, help="seconds allowed per answer")
    args = parser.parse_args(argv)
    questions = json.loads(Path(args.questions).read_text())
    work = Path(tempfile.mkdtemp(prefix="rag-trial-"))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[2]),
                                                                      os.environ.get("PYTHONPATH")])))
    report: dict = {}
    with milvus_server(work / "milvus", log=work / "milvus.log") as uri, \
            ray_cluster(2, 1, log_dir=work, env=env) as address:
        import ray

        ray.init(address=address, log_to_driver=False)
        report["nodes"] = sorted(n["NodeID"] for n in ray.nodes() if n["Alive"])
        ray.shutdown()
        settings = Settings(corpus_dir=Path(args.corpus_dir), index_dir=work / "index", vector_store="milvus",
                            milvus_uri=uri, api_host="127.0.0.1", api_port=free_port(), n_threads=1)
        from .ingest import ingest

        report["ingest"] = asdict(ingest(settings, address))
        report["rounds"] = [serve_round(settings, address, int(r), questions, args.timeout)
                            for r in args.replicas.split(",")]
    Path(args.out).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
