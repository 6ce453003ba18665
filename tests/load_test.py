"""Load test for the running web UI's ``/ask`` API (not collected by pytest).

    .venv/bin/python tests/load_test.py --url http://127.0.0.1:7860 --clients 8 --questions 50 --timeout 900

N client threads, each with its own ``gradio_client.Client``, take answerable questions
about the bundled corpus from a shared queue until all are asked or the time budget is
spent. Only loopback URLs are accepted, and every outgoing connection is checked to be
loopback. Prints total, errors, answers with at least one citation, declined answers,
throughput and p50/p95 latency; exits 1 on any error or answer without a citation
(a decline counts as uncited: every question here is answerable), 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import ipaddress
import math
import os
import queue
import re
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlparse

MAX_CLIENTS = 32
MAX_QUESTIONS = 1000
MAX_TIMEOUT = 3600.0

# (question, a fact an answer should contain): all answerable from seeds/.
QUESTIONS: list[tuple[str, str]] = [
    ("How many North Korean troops are in Russia according to the Pentagon?", "10,000"),
    ("How many people does Ukraine's army plan to recruit?", "160,000"),
    ("How long did North Korea's ICBM fly?", "87 minutes"),
    ("Name one of the Donetsk towns Moscow claimed to have captured on Tuesday.", "Selydove"),
    ("Which Pentagon spokesperson said a small number of North Korean troops were already in Kursk?", "Ryder"),
    ("Which North Korean foreign minister is visiting Moscow?", "Choe Son Hui"),
    ("How many North Korean troops did Blinken and Austin say had been deployed to the Kursk region?", "8,000"),
    ("Who told Ukraine's parliament that the army planned to recruit more people?", "Lytvynenko"),
    ("How many North Korean troops do Seoul and its allies say were dispatched to Russia?", "11,000"),
    ("Which NATO chief said North Korean forces were in Kursk?", "Rutte"),
    ("How many North Koreans did Zelenskyy say were at a training camp in Kursk?", "3,000"),
    ("Which South Korean defence minister held a press conference with Lloyd Austin?", "Kim Yong-hyun"),
]

_MARKER = re.compile(r"\[(\d+)\]")


# --- loopback only ----------------------------------------------------------------------------


def is_loopback_host(host: str | None) -> bool:
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # any other name is not resolved: it could point anywhere


def check_url(url: str) -> str:
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https"):
        raise ValueError(f"URL must start with http:// or https://, got {url!r}")
    if not is_loopback_host(parsed.hostname):
        raise ValueError(f"refusing non-loopback URL {url!r}: this load test only talks to 127.0.0.1/::1/localhost")
    return url.rstrip("/") + "/"


def guard_sockets() -> None:
    """Belt and braces: any TCP connection beyond this machine raises."""
    real_connect = socket.socket.connect

    def connect(sock: socket.socket, address):  # type: ignore[no-untyped-def]
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not is_loopback_host(str(address[0])):
            raise ConnectionRefusedError(f"load_test: blocked connection to non-loopback {address!r}")
        return real_connect(sock, address)

    socket.socket.connect = connect  # type: ignore[method-assign]


# --- the run ---------------------------------------------------------------------------------


@dataclass
class Tally:
    lock: threading.Lock = field(default_factory=threading.Lock)
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    cited: int = 0
    declined: int = 0
    uncited: int = 0  # not declined, yet no citation
    with_fact: int = 0
    skipped: int = 0  # not asked: the time budget ran out

    @property
    def total(self) -> int:
        return len(self.errors) + self.cited + self.declined + self.uncited


def check_answer(result: object) -> str | None:
    """None if ``result`` is a well-formed /ask answer, else what is wrong with it."""
    if not isinstance(result, dict) or not {"text", "declined", "citations"} <= set(result):
        return f"unexpected result {str(result)[:200]!r}"
    citations = result["citations"]
    if not isinstance(citations, list):
        return "citations is not a list"
    numbers = {c.get("marker") for c in citations if isinstance(c, dict)}
    missing = {int(m) for m in _MARKER.findall(str(result["text"]))} - numbers
    if missing:
        return f"markers {sorted(missing)} have no citation: {result['text'][:200]!r}"
    for c in citations:
        if not isinstance(c, dict) or not isinstance(c.get("text"), str) or not c["text"] \
                or not isinstance(c.get("start"), int) or not isinstance(c.get("end"), int) \
                or c["end"] - c["start"] != len(c["text"]):
            return f"malformed citation {str(c)[:200]!r}"
    if result["declined"] and citations:
        return "a declined answer has citations"
    return None


def worker(url: str, api_name: str, work: queue.Queue, tally: Tally, deadline: float, verbose: bool) -> None:
    from gradio_client import Client

    try:
        client = Client(url, download_files=False, verbose=False, analytics_enabled=False)
    except Exception as exc:  # noqa: BLE001 (report, do not crash the other threads)
        with tally.lock:
            tally.errors.append(f"connect: {type(exc).__name__}: {exc}")
        return
    while True:
        try:
            question, fact = work.get_nowait()
        except queue.Empty:
            return
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            with tally.lock:
                tally.skipped += 1
            continue
        t0 = time.monotonic()
        job = None
        try:
            job = client.submit(question, api_name=api_name)
            result = job.result(timeout=remaining)
            problem = check_answer(result)
        except Exception as exc:  # noqa: BLE001
            result, problem = None, f"{type(exc).__name__}: {str(exc)[:200]}"
            if job is not None:
                job.cancel()
        seconds = time.monotonic() - t0
        with tally.lock:
            if problem:
                tally.errors.append(f"{question!r}: {problem}")
            else:
                assert isinstance(result, dict)
                tally.latencies.append(seconds)
                if result["declined"]:
                    tally.declined += 1
                elif result["citations"]:
                    tally.cited += 1
                else:
                    tally.uncited += 1
                norm = str(result["text"]).replace("\u202f", ",")
                tally.with_fact += fact.lower() in norm.lower() or fact.replace(",", "") in norm
        if verbose:
            shown = problem or " ".join(str(result["text"]).split())[:160]  # type: ignore[index]
            print(f"  {seconds:6.1f}s  {question}\n          -> {shown}", flush=True)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile; nan for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered), max(1, math.ceil(q * len(ordered)))) - 1]


def run(url: str, clients: int, questions: int, timeout: float, api_name: str = "/ask",
        verbose: bool = False) -> tuple[Tally, float]:
    work: queue.Queue = queue.Queue()
    for i in range(questions):
        work.put(QUESTIONS[i % len(QUESTIONS)])
    tally = Tally()
    start = time.monotonic()
    deadline = start + timeout
    threads = [threading.Thread(target=worker, args=(url, api_name, work, tally, deadline, verbose), daemon=True)
               for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=max(0.0, deadline - time.monotonic()) + 30)
    with tally.lock:
        tally.skipped += work.qsize()
        if any(t.is_alive() for t in threads):
            tally.errors.append("some clients did not finish within the time budget")
    return tally, time.monotonic() - start


def report(tally: Tally, wall: float, questions: int, clients: int) -> bool:
    answers = tally.cited + tally.declined + tally.uncited
    print(f"\n{questions} questions, {clients} clients, {wall:.1f}s wall time")
    print(f"  total answered+failed   {tally.total}")
    print(f"  errors                  {len(tally.errors)}")
    print(f"  not asked (time budget) {tally.skipped}")
    print(f"  answers with citations  {tally.cited}")
    print(f"  declined                {tally.declined}")
    print(f"  answers without citation {tally.uncited}")
    print(f"  with the expected fact  {tally.with_fact}/{answers}")
    print(f"  throughput              {answers / wall * 60 if wall else 0:.2f} answers/min")
    p50, p95 = percentile(tally.latencies, 0.50), percentile(tally.latencies, 0.95)
    print(f"  latency p50 / p95       {p50:.1f}s / {p95:.1f}s")
    for e in tally.errors[:20]:
        print(f"  ERROR {e}")
    return not tally.errors and not tally.uncited and not tally.declined and not tally.skipped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:7860", help="the running UI (loopback only)")
    parser.add_argument("--clients", type=int, default=8, help=f"concurrent clients (1..{MAX_CLIENTS})")
    parser.add_argument("--questions", type=int, default=50, help=f"questions in total (1..{MAX_QUESTIONS})")
    parser.add_argument("--timeout", type=float, default=900, help=f"time budget in seconds (1..{MAX_TIMEOUT:.0f})")
    parser.add_argument("--api-name", default="/ask")
    parser.add_argument("-v", "--verbose", action="store_true", help="print each answer")
    args = parser.parse_args(argv)
    try:
        url = check_url(args.url)
        if not 1 <= args.clients <= MAX_CLIENTS:
            raise ValueError(f"--clients must be 1..{MAX_CLIENTS}")
        if not 1 <= args.questions <= MAX_QUESTIONS:
            raise ValueError(f"--questions must be 1..{MAX_QUESTIONS}")
        if not 1 <= args.timeout <= MAX_TIMEOUT:
            raise ValueError(f"--timeout must be 1..{MAX_TIMEOUT:.0f} seconds")
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    # No telemetry, no hub look-ups (read when gradio_client is imported), loopback only.
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    guard_sockets()
    clients = min(args.clients, args.questions)
    tally, wall = run(url, clients, args.questions, args.timeout, args.api_name, args.verbose)
    return 0 if report(tally, wall, args.questions, clients) else 1


if __name__ == "__main__":
    sys.exit(main())
