"""The LLM in a supervised child process: a native crash is an error message and a restart.

llama.cpp is native code; on some CPUs it faults (see ``rag.kernels``), and a fault
in the UI's or the API's own process would kill the server for every user. So the
model lives in a child process (``python -m rag.worker_main``) and ``WorkerLLM``, in the
app's process, speaks to it over two socket pairs:

- ``gen``: one streamed reply at a time (the model lock lives here), with a
  heartbeat from the child every ``HEARTBEAT_S`` seconds while it works;
- ``ctl``: tokenizing, answered by a second thread of the child so that counting a
  prompt's tokens does not wait behind another user's answer.

If the child dies (a segfault, SIGKILL, the OOM killer) or stops answering, the
question in flight fails with a ModelError saying so, a new child starts at once,
and the next question is answered by it. The child exits when the app does: it
watches its parent and its sockets.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import asdict, replace
from multiprocessing.connection import Connection
from pathlib import Path

from . import kernels
from .errors import ModelError
from .generate import Kernels, ModelSpec

log = logging.getLogger(__name__)

HEARTBEAT_S = 2.0
STALL_S = 60.0  # no word from a busy child for this long: it is hung, so it is killed and restarted
SAFE_MARGIN = 0.9  # the safe kernels are chosen for speed only when their canary takes under 90% of the fast ones
FAULT_HOOK = "RAG_TEST_WORKER_FAULT"  # tests only: "canary" or "stream" makes a fast-mode child segfault there



class _Died(Exception):
    pass


class _Child:
    """One child process and its two connections."""

    def __init__(self, spec: ModelSpec, canary: bool, factory: str, allow_downloads: bool) -> None:
        self.spec, self.canary = spec, canary
        pairs = [socket.socketpair() for _ in range(2)]
        config = {"spec": asdict(spec), "canary": canary, "factory": factory, "allow_downloads": allow_downloads,
                  "fds": [child.fileno() for _, child in pairs]}
        package_root = str(Path(__file__).resolve().parent.parent)  # the child imports this very package
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")])))
        self.proc = subprocess.Popen([sys.executable, "-m", "rag.worker_main", json.dumps(config)],
                                     pass_fds=tuple(child.fileno() for _, child in pairs), env=env,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        for _, child in pairs:
            child.close()  # only the child holds these now, so its death reads as end-of-file here
        self.gen, self.ctl = (Connection(ours.detach()) for ours, _ in pairs)
        self.info: dict | None = None  # the child's "ready" report

    def send(self, conn: Connection, message: tuple) -> None:
        try:
            conn.send(message)
        except OSError as exc:  # the child is gone
            raise _Died from exc

    def recv(self, conn: Connection) -> tuple:
        """The next message that is not a heartbeat; _Died if the child died or went silent."""
        while True:
            try:
                if not conn.poll(STALL_S):
                    log.error("The language model process gave no sign of life for %.0f s; killing it.", STALL_S)
                    self.proc.kill()
                    raise _Died
                message = conn.recv()
            except (EOFError, OSError) as exc:
                raise _Died from exc
            if message[0] != "alive":
                return message

    def exit_status(self) -> int | None:
        try:
            return self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def stop(self) -> None:
        for conn in (self.gen, self.ctl):
            conn.close()  # the child sees end-of-file and exits
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class WorkerLLM:
    """A ``LocalLLM`` in a supervised child process; implements ``ChatModel``.

    ``remember`` (auto kernel mode only) is told what the canary or a later fault
    showed, so the choice survives restarts of the app."""

    def __init__(self, spec: ModelSpec, *, canary: bool = False, allow_downloads: bool = False,
                 remember: Callable[[Kernels, str], None] | None = None,
                 factory: str = "rag.generate:LocalLLM") -> None:
        self.name, self.n_ctx = spec.name, spec.n_ctx
        self._factory, self._allow_downloads, self._remember = factory, allow_downloads, remember
        self._gen_lock = threading.Lock()  # one reply at a time: the model's context is not thread-safe
        self._ctl_lock = threading.Lock()
        self._life_lock = threading.Lock()  # starting, restarting and the ready handshake
        self._closed = False
        self._child = _Child(spec, canary, factory, allow_downloads)  # loads while the caller does other work
        atexit.register(self.close)

    @property
    def pid(self) -> int:
        return self._child.proc.pid

    @property
    def kernels(self) -> Kernels:
        return self._child.spec.kernels

    def info(self) -> dict:
        """The ready child's report: llama.cpp's system info and the kernel mode it loaded with."""
        return self._ready()[1]

    # --- the child's life ---------------------------------------------------------------

    def _ready(self) -> tuple[_Child, dict]:
        with self._life_lock:
            while True:
                if self._closed:
                    raise ModelError("The language model was shut down.")
                child = self._child
                if child.info is not None:
                    return child, child.info
                try:
                    message = child.recv(child.gen)
                except _Died:
                    self._replace(child, loading=True)
                    continue
                if message[0] != "ready":
                    raise ModelError(f"Could not load the language model: {message[1][1]}")
                child.info = message[1]
                if child.canary and self._remember:
                    self._settle_kernels(child)

    def _settle_kernels(self, fast: _Child) -> None:
        """The fast kernels passed the canary: time the same canary without llama.cpp's extra
        buffer types and keep whichever ran it faster (safe only when clearly so), since on
        some CPUs the repacked weights are slower (an AMD EPYC here: prompts at 74 tokens/s
        with them, 145 without). The caller holds the life lock."""
        safe = _Child(replace(fast.spec, kernels="safe"), True, self._factory, self._allow_downloads)
        try:
            status, info = safe.recv(safe.gen)
        except _Died:
            status, info = "died", {}
        t_fast, t_safe = fast.info.get("canary_s") if fast.info else None, info.get("canary_s")
        timed = f" (the canary took {t_fast:.2f} s with llama.cpp's extra buffer types, {t_safe:.2f} s without)" \
            if t_fast and t_safe else ""
        if status == "ready" and t_fast and t_safe and t_safe < SAFE_MARGIN * t_fast:
            safe.info, self._child = info, safe
            fast.stop()
            mode, reason = "safe", f"the canary passed but ran faster without the extra buffer types{timed}"
        else:
            safe.stop()
            mode, reason = "fast", f"the canary passed{timed}"
        self._remember(mode, reason)
        log.info("LLM CPU kernels: %s (%s; remembered for this CPU)", mode, reason)

    def _replace(self, child: _Child, loading: bool) -> str:
        """Start a new child after ``child`` died, once however many threads noticed (the
        caller holds the life lock); return how it ended. In auto kernel mode a fault of
        the fast kernels switches to the safe ones for good."""
        how = kernels.describe_exit(child.exit_status())
        if self._child is not child or self._closed:
            return how  # another thread already restarted it
        spec = child.spec
        if self._remember and spec.kernels == "fast" and kernels.is_fault(child.proc.returncode):
            reason = f"llama.cpp died on {how} {'while loading' if loading else 'while answering'} with fast kernels"
            self._remember("safe", reason)
            log.warning("LLM CPU kernels: safe (%s; extra buffer types off from now on)", reason)
            spec = replace(spec, kernels="safe")
        elif loading:
            raise ModelError(f"The language model process died while loading ({how}). Check RAG_LLM_PATH "
                             "and run `rag doctor`.")
        else:
            log.error("The language model process died (%s); restarting it.", how)
        self._child = _Child(spec, False, self._factory, self._allow_downloads)
        return how

    def _after_death(self, child: _Child) -> str:
        with self._life_lock:
            return self._replace(child, loading=False)

    def _crashed(self, child: _Child) -> ModelError:
        how = self._after_death(child)
        return ModelError(f"The language model process crashed ({how}); it has been restarted. Please ask again.")

    # --- ChatModel ------------------------------------------------------------------------

    def _call(self, *request: object) -> object:
        """A quick request on the ctl connection; retried once on a fresh child if this one died."""
        for attempt in (1, 2):
            child, _ = self._ready()
            with self._ctl_lock:
                try:
                    child.send(child.ctl, request)
                    status, value = child.recv(child.ctl)
                except _Died:
                    if attempt == 2:
                        raise self._crashed(child) from None
                    self._after_death(child)
                    continue
            if status == "error":
                raise ModelError(f"The language model failed: {value[1]}")
            return value
        raise AssertionError("unreachable")

    def tokenize(self, text: str, special: bool = False) -> list[int]:
        return self._call("tokenize", text, special)  # type: ignore[return-value]

    def detokenize(self, tokens: list[int]) -> str:
        return self._call("detokenize", tokens)  # type: ignore[return-value]

    def count_tokens(self, text: str) -> int:
        return len(self.tokenize(text))

    def choose(self, messages: list[dict[str, str]], options: list[str]) -> list[float]:
        """Log-probability of each option as the reply's first token (it reads a prompt, so it
        holds the model like a reply does)."""
        with self._gen_lock:
            child, _ = self._ready()
            try:
                child.send(child.gen, ("choose", messages, options))
                status, value = child.recv(child.gen)
            except _Died:
                raise self._crashed(child) from None
            if status == "error":
                raise ModelError(f"The language model failed: {value[1]}")
            return value

    def stream(self, messages: list[dict[str, str]], max_tokens: int, temperature: float) -> Iterator[str]:
        """Text deltas from the child. Closing the generator early cancels the reply."""
        with self._gen_lock:
            child, _ = self._ready()
            finished = False
            try:
                child.send(child.gen, ("stream", messages, max_tokens, temperature))
                while True:
                    kind, value = child.recv(child.gen)
                    if kind == "delta":
                        yield value
                    elif kind == "end":
                        finished = True
                        return
                    else:
                        finished = True
                        raise ModelError(f"The language model failed: {value[1]}")
            except _Died:
                finished = True
                raise self._crashed(child) from None
            finally:
                if not finished:  # closed early: stop the child and wait for it to say so
                    self._cancel(child)

    def _cancel(self, child: _Child) -> None:
        try:
            child.send(child.gen, ("cancel",))
            while child.recv(child.gen)[0] == "delta":
                pass
        except _Died:
            self._after_death(child)

    def reset(self) -> None:
        with self._gen_lock:
            child, _ = self._ready()
            try:
                child.send(child.gen, ("reset",))
                child.recv(child.gen)
            except _Died:
                raise self._crashed(child) from None

    def close(self) -> None:
        with self._life_lock:
            if not self._closed:
                self._closed = True
                self._child.stop()
