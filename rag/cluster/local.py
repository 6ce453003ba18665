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
