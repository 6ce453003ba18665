"""The model worker's own side: ``python -m rag.worker_main CONFIG`` loads the model and serves it.

Started by ``rag.worker.WorkerLLM``, never by hand. It answers replies on the ``gen``
connection (sending a heartbeat while it works), tokenizing on ``ctl`` from a second
thread, and exits when its parent is gone.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import signal
import sys
import threading
import time
from multiprocessing.connection import Connection

from .generate import ModelSpec
from .worker import FAULT_HOOK, HEARTBEAT_S

# A canary prompt long enough to use the batched matrix kernels a real question uses.
CANARY = [{"role": "system", "content": "You are a careful news research assistant."},
          {"role": "user", "content": "Passages:\n\n[1] " + "Officials said the talks would resume next week "
           "after a pause of several days, and both delegations confirmed the schedule. " * 8
           + "\n\nQuestion: When will the talks resume?"}]

def _load(factory: str, spec: ModelSpec, allow_downloads: bool):  # -> a ChatModel with tokenize/reset
    module, _, name = factory.partition(":")
    return getattr(importlib.import_module(module), name)(spec, allow_downloads=allow_downloads)


def _crash_if_asked(where: str, spec: ModelSpec) -> None:
    if os.environ.get(FAULT_HOOK) == where and spec.kernels == "fast":
        os.kill(os.getpid(), signal.SIGSEGV)


class _Busy:
    """Heartbeats on ``gen`` while the child works; exits the child if its parent is gone."""

    def __init__(self, gen: Connection, send_lock: threading.Lock) -> None:
        self.working = threading.Event()
        self._gen, self._send_lock, self._parent = gen, send_lock, os.getppid()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        tick = threading.Event()
        while not tick.wait(HEARTBEAT_S):
            if os.getppid() != self._parent:
                os._exit(0)  # orphaned: the app is gone
            try:
                with self._send_lock:
                    if self.working.is_set():
                        self._gen.send(("alive", None))
            except OSError:
                os._exit(0)


def _serve_ctl(ctl: Connection, model) -> None:  # noqa: ANN001
    ops = {"tokenize": model.tokenize, "detokenize": model.detokenize}
    while True:
        try:
            op, *args = ctl.recv()
        except (EOFError, OSError):
            os._exit(0)
        try:
            reply = ("ok", ops[op](*args))
        except Exception as exc:  # noqa: BLE001 (reported to the parent, which raises it there)
            reply = ("error", (type(exc).__name__, str(exc)))
        try:
            ctl.send(reply)
        except OSError:
            os._exit(0)


def _serve_gen(gen: Connection, model, send_lock: threading.Lock, busy: _Busy, spec: ModelSpec) -> None:  # noqa: ANN001
    def send(message: tuple) -> None:
        with send_lock:
            gen.send(message)

    while True:
        try:
            op, *args = gen.recv()
        except (EOFError, OSError):
            return
        if op == "cancel":
            continue  # arrived after the reply it meant to stop had already ended
        busy.working.set()
        try:
            if op in ("reset", "choose"):
                send(("ok", model.reset() if op == "reset" else model.choose(*args)))
                continue
            replies = model.stream(*args)
            for delta in replies:
                _crash_if_asked("stream", spec)
                if gen.poll() and gen.recv()[0] == "cancel":
                    replies.close()
                    break
                send(("delta", delta))
            send(("end", None))
        except (EOFError, OSError):
            return
        except Exception as exc:  # noqa: BLE001 (reported to the parent, which raises it there)
            send(("error", (type(exc).__name__, str(exc))))
        finally:
            busy.working.clear()


def main(config_json: str) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the app, which then closes us
    config = json.loads(config_json)
    spec = ModelSpec(**config["spec"])
    gen, ctl = (Connection(fd) for fd in config["fds"])
    send_lock = threading.Lock()
    busy = _Busy(gen, send_lock)
    busy.working.set()
    try:
        model = _load(config["factory"], spec, config["allow_downloads"])
        canary_s = None
        if config["canary"]:
            _crash_if_asked("canary", spec)
            started = time.perf_counter()
            for _ in model.stream(CANARY, 4, 0.0):
                pass
            canary_s = time.perf_counter() - started
    except Exception as exc:  # noqa: BLE001 (reported to the parent, which raises it there)
        with send_lock, contextlib.suppress(OSError):
            gen.send(("error", (type(exc).__name__, str(exc))))
        return
    info = {"kernels": spec.kernels, "system_info": model.system_info(), "pid": os.getpid(), "canary_s": canary_s}
    busy.working.clear()
    try:
        with send_lock:
            gen.send(("ready", info))
    except OSError:
        return  # the app closed us while we loaded
    threading.Thread(target=_serve_ctl, args=(ctl, model), daemon=True).start()
    _serve_gen(gen, model, send_lock, busy, spec)


if __name__ == "__main__":
    main(sys.argv[1])
