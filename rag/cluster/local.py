"""Servers on this machine for tests and `rag bench`: a Milvus server (milvus-lite's gRPC
server, a separate process speaking Milvus's protocol) on 127.0.0.1, started and stopped
by process id, each step bounded in time."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with status {proc.returncode} before listening on port {port}.")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not listen on 127.0.0.1:{port} within {timeout_s:.0f} s.")


def stop(proc: subprocess.Popen, timeout_s: float = 15) -> None:
    """End a process we started: SIGTERM, then SIGKILL if it lingers."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout_s)


@contextlib.contextmanager
def milvus_server(data_dir: Path, timeout_s: float = 90, log: Path | None = None) -> Iterator[str]:
    """A milvus-lite server on 127.0.0.1 (a free port) over ``data_dir``; yields its URI."""
    port = free_port()
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 (closed below)
    proc = subprocess.Popen([sys.executable, "-m", "milvus_lite.cmdline", "server", "--data-dir", str(data_dir),
                             "--host", "127.0.0.1", "--port", str(port)], stdin=subprocess.DEVNULL,
                            stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, proc, timeout_s, "The milvus-lite server")
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(proc)
        if log:
            out.close()  # type: ignore[union-attr]


@contextlib.contextmanager
def ray_cluster(nodes: int = 2, cpus: int = 1, timeout_s: float = 120, log_dir: Path | None = None,
                env: dict[str, str] | None = None) -> Iterator[str]:
    """A Ray cluster of ``nodes`` nodes of ``cpus`` logical CPUs each on 127.0.0.1: a head and
    ``nodes - 1`` workers, each a ``ray start --block`` process that takes its Ray processes
    down when stopped. Yields the head's address. Run it inside ``isolated()``: elsewhere
    Ray also binds the machine's own network address."""
    import tempfile

    ray = str(Path(sys.executable).with_name("ray"))
    port = free_port()
    temp = tempfile.mkdtemp(prefix="rg-", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
    common = ["--node-ip-address=127.0.0.1", f"--num-cpus={cpus}", "--object-store-memory=300000000",
              "--disable-usage-stats", "--block"]
    commands = [[ray, "start", "--head", f"--port={port}", "--include-dashboard=false", f"--temp-dir={temp}",
                 *common]] + [[ray, "start", f"--address=127.0.0.1:{port}", *common]] * (nodes - 1)
    procs: list[subprocess.Popen] = []
    logs = []
    try:
        for n, command in enumerate(commands):
            logs.append(open(log_dir / f"ray-node-{n}.log", "ab") if log_dir else subprocess.DEVNULL)  # noqa: SIM115
            procs.append(subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=logs[-1], stderr=subprocess.STDOUT,
                                          env=env))
            if n == 0:
                wait_for_port(port, procs[0], timeout_s, "The Ray head node")
        _wait_for_nodes(f"127.0.0.1:{port}", nodes, procs, timeout_s)
        yield f"127.0.0.1:{port}"
    finally:
        for proc in reversed(procs):  # workers first, then the head
            stop(proc, 30)
        for f in logs:
            if f is not subprocess.DEVNULL:
                f.close()


def _wait_for_nodes(address: str, nodes: int, procs: list[subprocess.Popen], timeout_s: float) -> None:
    import ray

    ray.init(address=address, log_to_driver=False)
    try:
        deadline = time.monotonic() + timeout_s
        while sum(n["Alive"] for n in ray.nodes()) < nodes:
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                raise RuntimeError(f"The Ray cluster did not reach {nodes} live nodes within {timeout_s:.0f} s.")
            time.sleep(0.5)
    finally:
        ray.shutdown()


def isolated(command: list[str]) -> list[str]:
    """``command`` run in private network and process namespaces whose only interface is
    loopback (needs root): every server it starts listens on 127.0.0.1 only, and every
    process it leaves behind dies with it."""
    import shlex

    return ["unshare", "--net", "--pid", "--fork", "--kill-child", "--mount-proc", "sh", "-c",
            f"ip link set lo up && exec {shlex.join(command)}"]


def run_isolated(command: list[str], timeout_s: float, **kwargs) -> subprocess.CompletedProcess:
    """Run ``command`` under ``isolated()`` and wait at most ``timeout_s``; on time-out the
    namespace is killed whole (SIGKILL to unshare, whose child, the namespace's first
    process, then gets SIGKILL too, and with it everything in the namespace)."""
    proc = subprocess.Popen(isolated(command), **kwargs)
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise RuntimeError(f"{command[:3]} did not finish within {timeout_s:.0f} s; stopped.") from None
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
