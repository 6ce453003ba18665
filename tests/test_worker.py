"""The model worker process: crashes become errors and restarts, the CPU-kernel canary falls
back to safe kernels, nothing hangs and nothing is left running. Fast: the child process
hosts a fake model (tests/fake_worker.py), not llama.cpp."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from rag import kernels, worker
from rag.errors import ModelError
from rag.generate import ModelSpec
from rag.worker import WorkerLLM
from tests.fake_worker import WORDS

SPEC = ModelSpec(path="/nonexistent.gguf", repo=None, file=None, n_ctx=4096, n_threads=1, kernels="fast")
REPLY = "".join(WORDS)
QUESTION = [{"role": "user", "content": "How many troops?"}]


def _gone(pid: int, within: float = 30.0) -> bool:
    """Whether process ``pid`` has exited (or become a zombie) within ``within`` seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().split(")")[-1].split()[0] == "Z":
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.05)
    return False


def _children() -> list[int]:
    """The worker processes this test process started and that still run."""
    out = subprocess.run(["pgrep", "-P", str(os.getpid()), "-f", "rag.worker_main"], capture_output=True, text=True)
    return [int(pid) for pid in out.stdout.split()]


@pytest.fixture
def make(request):
    made: list[WorkerLLM] = []

    def _make(factory: str = "tests.fake_worker:Words", **kwargs) -> WorkerLLM:
        llm = WorkerLLM(SPEC, factory=factory, **kwargs)
        made.append(llm)
        return llm

    yield _make
    for llm in made:
        llm.close()


def test_the_worker_streams_and_counts(make):
    llm = make()
    assert llm.count_tokens("one two three") == 3
    assert llm.detokenize(llm.tokenize("ab cde")) == "xx xxx"
    assert "".join(llm.stream(QUESTION, 100, 0.0)) == REPLY
    assert llm.info()["kernels"] == "fast" and llm.pid != os.getpid()


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGSEGV])
def test_a_worker_killed_mid_answer_is_a_clear_error_and_the_next_answer_comes(make, sig):
    llm = make()
    replies = llm.stream(QUESTION, 100, 0.0)
    assert next(replies) == WORDS[0]
    first = llm.pid
    os.kill(first, sig)
    with pytest.raises(ModelError, match=rf"crashed \(signal {int(sig)} \({sig.name}\)\); it has been restarted"):
        list(replies)
    assert "".join(llm.stream(QUESTION, 100, 0.0)) == REPLY
    assert llm.pid != first and _gone(first)


def test_a_worker_killed_while_idle_is_restarted_for_the_next_question(make):
    llm = make()
    assert llm.count_tokens("a b") == 2
    first = llm.pid
    os.kill(first, signal.SIGKILL)
    assert _gone(first)
    with pytest.raises(ModelError, match="crashed"):
        "".join(llm.stream(QUESTION, 100, 0.0))
    assert "".join(llm.stream(QUESTION, 100, 0.0)) == REPLY


def test_counting_tokens_survives_a_dead_worker(make):
    llm = make()
    llm.count_tokens("warm up")
    os.kill(llm.pid, signal.SIGKILL)
    assert llm.count_tokens("still counted") == 2  # retried once on the new worker


def test_closing_a_reply_early_cancels_it_and_leaves_nothing_behind(make):
    llm = make()
    replies = llm.stream(QUESTION, 100, 0.0)
    next(replies)
    replies.close()
    assert "".join(llm.stream(QUESTION, 100, 0.0)) == REPLY  # no leftover words of the first reply


def test_a_worker_that_goes_silent_is_killed_and_replaced(make, monkeypatch):
    llm = make()
    llm.count_tokens("loaded")  # started at the usual patience: a loaded machine can be slow to start a child
    monkeypatch.setattr(worker, "STALL_S", 5 * worker.HEARTBEAT_S)
    replies = llm.stream(QUESTION, 100, 0.0)
    next(replies)
    frozen = llm.pid
    os.kill(frozen, signal.SIGSTOP)  # no heartbeat, no words: hung
    with pytest.raises(ModelError, match="crashed"):
        list(replies)
    assert _gone(frozen)
    assert "".join(llm.stream(QUESTION, 100, 0.0)) == REPLY


def test_a_model_that_cannot_load_is_a_clear_error(make):
    llm = make(factory="tests.fake_worker:Broken")
    with pytest.raises(ModelError, match="not a GGUF file"):
        llm.count_tokens("x")


def test_a_canary_crash_switches_to_safe_kernels_and_answers(make, monkeypatch):
    monkeypatch.setenv(worker.FAULT_HOOK, "canary")  # the child segfaults in the canary, in fast mode only
    verdicts: list[tuple[str, str]] = []
    llm = make(canary=True, remember=lambda mode, why: verdicts.append((mode, why)))
    assert "".join(llm.stream(QUESTION, 100, 0.0)) == REPLY
    assert llm.kernels == "safe" and llm.info()["kernels"] == "safe"
    assert verdicts and verdicts[0][0] == "safe" and "SIGSEGV" in verdicts[0][1]


def test_a_canary_that_passes_is_remembered_as_fast(make):
    verdicts: list[tuple[str, str]] = []
    llm = make(canary=True, remember=lambda mode, why: verdicts.append((mode, why)))
    assert "".join(llm.stream(QUESTION, 100, 0.0)) == REPLY
    assert [mode for mode, _ in verdicts] == ["fast"] and verdicts[0][1].startswith("the canary passed")
    assert llm.kernels == "fast"


def test_auto_mode_keeps_the_safe_kernels_where_they_run_the_canary_faster(make):
    verdicts: list[tuple[str, str]] = []
    before = set(_children())  # other workers of this test process (a session's real model) stay
    llm = make(factory="tests.fake_worker:SafeIsFaster", canary=True,
               remember=lambda mode, why: verdicts.append((mode, why)))
    assert "".join(llm.stream(QUESTION, 100, 0.0)) == REPLY
    assert llm.kernels == "safe" and llm.info()["kernels"] == "safe"
    assert [mode for mode, _ in verdicts] == ["safe"] and "faster without the extra buffer types" in verdicts[0][1]
    assert set(_children()) - before == {llm.pid}  # the fast child was stopped


def test_a_fast_kernel_fault_while_answering_switches_to_safe_in_auto_mode(make, monkeypatch):
    monkeypatch.setenv(worker.FAULT_HOOK, "stream")
    verdicts: list[tuple[str, str]] = []
    llm = make(remember=lambda mode, why: verdicts.append((mode, why)))
    with pytest.raises(ModelError, match="SIGSEGV"):
        "".join(llm.stream(QUESTION, 100, 0.0))
    assert "".join(llm.stream(QUESTION, 100, 0.0)) == REPLY
    assert llm.kernels == "safe" and verdicts[0][0] == "safe"


def test_a_forced_mode_is_never_switched(make, monkeypatch):
    monkeypatch.setenv(worker.FAULT_HOOK, "stream")
    llm = make()  # no remember: the mode was forced
    for _ in range(2):
        with pytest.raises(ModelError, match="SIGSEGV"):
            "".join(llm.stream(QUESTION, 100, 0.0))
    assert llm.kernels == "fast"


def test_close_leaves_no_process(make):
    llm = make()
    llm.count_tokens("x")
    pid = llm.pid
    llm.close()
    assert _gone(pid)
    with pytest.raises(ModelError, match="shut down"):
        llm.count_tokens("x")


def test_the_worker_exits_when_its_app_is_killed(tmp_path):
    code = ("import sys; from tests.test_worker import SPEC; from rag.worker import WorkerLLM; "
            "llm = WorkerLLM(SPEC, factory='tests.fake_worker:Words'); llm.count_tokens('x'); "
            "print(llm.pid, flush=True); import time; time.sleep(600)")
    app = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        child = int(app.stdout.readline())
        app.kill()  # no atexit, no cleanup: the worker must notice by itself
        app.wait()
        assert _gone(child)
    finally:
        app.kill()


# --- choosing the kernels ------------------------------------------------------------------


def test_a_forced_mode_needs_no_canary(tmp_path):
    choice = kernels.choose("safe", tmp_path, "abc")
    assert (choice.kernels, choice.canary) == ("safe", False) and "RAG_LLM_CPU_KERNELS" in choice.reason


def test_auto_mode_runs_the_canary_once_per_model(tmp_path):
    first = kernels.choose("auto", tmp_path, "model-a")
    assert (first.kernels, first.canary) == ("fast", True)
    kernels.remember(tmp_path, "model-a", "safe", "the canary died")
    again = kernels.choose("auto", tmp_path, "model-a")
    assert (again.kernels, again.canary) == ("safe", False) and "the canary died" in again.reason
    assert kernels.choose("auto", tmp_path, "model-b").canary  # another model is checked on its own


def test_the_verdict_is_keyed_by_the_cpu_and_llama_cpp(tmp_path, monkeypatch):
    kernels.remember(tmp_path, "m", "safe", "died")
    monkeypatch.setattr(kernels, "cpu_flags", lambda: ["sse2", "amx_tile"])
    assert kernels.choose("auto", tmp_path, "m").canary
    monkeypatch.undo()
    monkeypatch.setattr(kernels, "llama_cpp_version", lambda: "9.9.9")
    assert kernels.choose("auto", tmp_path, "m").canary


def test_a_damaged_verdict_file_means_check_again(tmp_path):
    (tmp_path / kernels.CACHE_FILE).write_text("{not json")
    assert kernels.choose("auto", tmp_path, "m").canary


@pytest.mark.parametrize(("code", "fault", "text"), [(-11, True, "signal 11 (SIGSEGV)"), (-9, False, "signal 9 (SIGKILL)"),
                                                     (1, False, "exit status 1")])
def test_exits_are_described_and_only_faults_switch_kernels(code, fault, text):
    assert kernels.describe_exit(code) == text and kernels.is_fault(code) is fault
