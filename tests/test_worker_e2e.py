"""The real model in its worker process: safe kernels answer, the canary falls back, and a
worker killed mid-answer leaves `ui.py` and `rag chat` running with a clear message."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from rag import ModelError, Settings
from rag.evaluate import markers_resolve

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
PENTAGON_Q = "How many North Korean troops are in Russia according to the Pentagon?"
WAIT_S = 300  # one answer, or a start-up, on a busy 2-core machine


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    return out


def _worker_of(pid: int) -> int:
    """The model worker process started by process ``pid``."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        for child in _children(pid):
            try:
                if b"rag.worker" in Path(f"/proc/{child}/cmdline").read_bytes():
                    return child
            except OSError:
                continue
        time.sleep(0.1)
    raise AssertionError(f"process {pid} started no model worker")


def _cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def _kill_when_busy(pid: int, sig: signal.Signals) -> None:
    """Send ``sig`` to the worker once it is computing (reading a prompt, writing an answer)."""
    start = _cpu_ticks(pid)
    deadline = time.monotonic() + WAIT_S
    while _cpu_ticks(pid) - start < 20:  # 0.2 s of CPU: a prompt is being read
        assert time.monotonic() < deadline, "the worker never started computing"
        time.sleep(0.02)
    os.kill(pid, sig)


def _settings_for(tmp_path: Path, real_settings: Settings, **update) -> Settings:
    """The real corpus and model with this test's own index and cache: the kernel verdict a
    deliberate SIGSEGV leaves (safe kernels) must not become the machine's."""
    from rag.models import assemble_default_gguf

    gguf = assemble_default_gguf(real_settings.cache_dir, progress=False)
    cache = tmp_path / "cache"
    if not cache.exists():
        cache.mkdir()
        (cache / "embedders").symlink_to(real_settings.cache_dir / "embedders")  # the embedder's one-off export
    return real_settings.model_copy(update={"index_dir": tmp_path / "index", "cache_dir": tmp_path / "cache",
                                            "llm_path": gguf, **update})


def test_safe_kernels_answer_with_the_real_model(real_settings, tmp_path):
    from rag.engine import Engine

    engine = Engine(_settings_for(tmp_path, real_settings, llm_cpu_kernels="safe"))
    try:
        answer = engine.ask(PENTAGON_Q)
        assert engine.llm.kernels == "safe" and engine.llm.info()["kernels"] == "safe"
        assert "10,000" in answer.text and markers_resolve(answer)
    finally:
        engine.llm.close()


def test_a_canary_crash_makes_the_engine_use_safe_kernels_and_answer(real_settings, tmp_path, monkeypatch):
    from rag import kernels
    from rag.engine import Engine

    monkeypatch.setenv("RAG_TEST_WORKER_FAULT", "canary")  # the child segfaults in its canary in fast mode
    settings = _settings_for(tmp_path, real_settings)  # a fresh cache: no verdict yet, so the canary runs
    engine = Engine(settings)
    try:
        answer = engine.ask(PENTAGON_Q)
        assert "10,000" in answer.text and markers_resolve(answer)
        assert engine.llm.kernels == "safe"
        verdict = kernels.choose("auto", settings.cache_dir, kernels_hash(settings))
        assert verdict.kernels == "safe" and not verdict.canary and "SIGSEGV" in verdict.reason
    finally:
        engine.llm.close()


def kernels_hash(settings: Settings) -> str:
    from rag.models import llm_spec, model_hash

    return model_hash(settings, llm_spec(settings, progress=False), progress=False)


def test_ask_after_the_real_worker_is_killed_mid_answer(real_settings, tmp_path):
    from rag.engine import Engine

    engine = Engine(_settings_for(tmp_path, real_settings))
    try:
        for sig in (signal.SIGSEGV, signal.SIGKILL):
            stream = engine.ask(PENTAGON_Q, stream=True)
            victim = engine.llm.pid
            threading.Thread(target=_kill_when_busy, args=(victim, sig), daemon=True).start()
            with pytest.raises(ModelError, match=rf"crashed \(signal {int(sig)} .*restarted\. Please ask again"):
                list(stream)
            answer = engine.ask(PENTAGON_Q)
            assert "10,000" in answer.text and engine.llm.pid != victim
    finally:
        engine.llm.close()


def _app_env(tmp_path: Path, real_settings: Settings, **extra: str) -> dict[str, str]:
    settings = _settings_for(tmp_path, real_settings)
    return dict(os.environ, RAG_CORPUS_DIR=str(settings.corpus_dir), RAG_INDEX_DIR=str(settings.index_dir),
                RAG_CACHE_DIR=str(settings.cache_dir), RAG_LLM_PATH=str(settings.llm_path), PYTHONPATH=str(ROOT),
                **extra)


def test_the_ui_server_survives_a_killed_worker(real_settings, tmp_path):
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    from tests.browser import free_port

    port = free_port()
    server = subprocess.Popen([sys.executable, str(ROOT / "ui.py")], cwd=ROOT,
                              env=_app_env(tmp_path, real_settings, RAG_UI_PORT=str(port)))
    try:
        client = _wait_for_client(Client, f"http://127.0.0.1:{port}/", server)
        assert "10,000" in client.predict(PENTAGON_Q, api_name="/ask")["text"]  # models loaded, canary done
        for sig in (signal.SIGSEGV, signal.SIGKILL):
            job = client.submit(PENTAGON_Q, api_name="/ask")
            _kill_when_busy(_worker_of(server.pid), sig)
            with pytest.raises(AppError, match=rf"crashed \(signal {int(sig)} .*restarted"):
                job.result(timeout=WAIT_S)
            assert server.poll() is None, "ui.py died with its worker"
            assert "10,000" in client.predict(PENTAGON_Q, api_name="/ask")["text"]
    finally:
        server.terminate()
        server.wait(timeout=60)


def _wait_for_client(client_class, url: str, server: subprocess.Popen):
    deadline = time.monotonic() + WAIT_S
    while True:
        assert server.poll() is None, "ui.py exited during start-up"
        try:
            return client_class(url, verbose=False)
        except Exception:  # not listening yet
            assert time.monotonic() < deadline, "ui.py did not start"
            time.sleep(1)


class _Terminal:
    """`rag chat` on pipes: type lines, wait for text."""

    def __init__(self, cmd: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, bufsize=1)
        self.seen = ""
        self._lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        while chunk := self.proc.stdout.read(1):
            with self._lock:
                self.seen += chunk

    def type(self, line: str) -> None:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def wait_for(self, pattern: str, after: int) -> re.Match:
        deadline = time.monotonic() + WAIT_S
        while True:
            with self._lock:
                match = re.compile(pattern).search(self.seen, after)
            if match:
                return match
            assert self.proc.poll() is None, f"rag chat exited:\n{self.seen}"
            assert time.monotonic() < deadline, f"no {pattern!r} in:\n{self.seen[after:]}"
            time.sleep(0.05)


def test_rag_chat_survives_a_killed_worker(real_settings, tmp_path):
    chat = _Terminal([sys.executable, "-m", "rag.cli", "chat"], _app_env(tmp_path, real_settings))
    try:
        mark = chat.wait_for(r"you> ", 0).end()
        chat.type(PENTAGON_Q)
        mark = chat.wait_for(r"10,000[\s\S]*?you> ", mark).end()
        for sig in (signal.SIGSEGV, signal.SIGKILL):
            chat.type(PENTAGON_Q)
            _kill_when_busy(_worker_of(chat.proc.pid), sig)
            mark = chat.wait_for(rf"error: The language model process crashed \(signal {int(sig)} [\s\S]*?you> ", mark).end()
            chat.type(PENTAGON_Q)
            mark = chat.wait_for(r"10,000[\s\S]*?you> ", mark).end()
        chat.type("")
        assert chat.proc.wait(timeout=60) == 0
    finally:
        chat.proc.kill()
