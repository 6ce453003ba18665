"""Which llama.cpp CPU kernels are safe, and fastest, on this machine: decided once, remembered.

llama.cpp's "extra buffer types" hold weights repacked for faster CPU kernels,
among them Intel AMX. On some Xeons, under hypervisors especially, the AMX path
faults on the first prompt (llama.cpp #20824) and takes the whole process with it.
Two modes:

- ``fast``: extra buffer types on (llama.cpp's default).
- ``safe``: ``use_extra_bufts = False``: plain CPU kernels, nothing repacked.

``RAG_LLM_CPU_KERNELS=auto`` (the default) runs a canary the first time: the model
worker loads in ``fast`` mode and decodes a short prompt before serving anything. If
that child dies on a fault signal, ``safe`` is used from then on. If it passes, the
same canary is timed in ``safe`` mode too, and ``safe`` is kept when it is clearly
faster (on an AMD EPYC here the repacked weights halved prompt processing). The outcome is kept
in ``cache_dir/llm-kernels.json``, keyed by llama-cpp-python's version, the CPU's
flags and the model's hash, so the canary runs once per machine and model.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import signal
import tempfile
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from .generate import Kernels

log = logging.getLogger(__name__)

CACHE_FILE = "llm-kernels.json"
# Signals of a fault in native code. SIGKILL (the OOM killer, a user) and SIGTERM say
# nothing about the kernels, so they never switch the mode.
FAULTS = frozenset({signal.SIGSEGV, signal.SIGBUS, signal.SIGILL, signal.SIGFPE, signal.SIGABRT})


def cpu_flags() -> list[str]:
    """The CPU feature flags the kernel reports (x86 "flags", Arm "Features")."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("flags", "Features"):
                return sorted(value.split())
    except OSError:
        pass
    return []


def llama_cpp_version() -> str:
    try:
        return metadata.version("llama_cpp_python")
    except metadata.PackageNotFoundError:
        return "unknown"


CHECK = "safety and speed"  # what the canary decides; a change makes every machine check again


def machine_key(model_hash: str) -> str:
    """What the canary's verdict depends on: this llama.cpp build, this CPU, this model."""
    parts = [CHECK, llama_cpp_version(), " ".join(cpu_flags()), model_hash]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:24]


@dataclass(frozen=True)
class Choice:
    kernels: Kernels
    canary: bool  # run the canary before serving (auto mode, no verdict cached yet)
    reason: str


def _read(cache_dir: Path) -> dict:
    try:
        return json.loads((cache_dir / CACHE_FILE).read_text())
    except (OSError, ValueError):
        return {}


def choose(setting: str, cache_dir: Path, model_hash: str) -> Choice:
    """The mode to start the model worker in, and why."""
    if setting in ("fast", "safe"):
        return Choice(setting, False, f"forced by RAG_LLM_CPU_KERNELS={setting}")  # type: ignore[arg-type]
    verdict = _read(cache_dir).get(machine_key(model_hash))
    if verdict and verdict.get("kernels") in ("fast", "safe"):
        return Choice(verdict["kernels"], False, f"{verdict.get('reason', 'checked')} (remembered from "
                                                 f"{verdict.get('checked', 'an earlier run')})")
    return Choice("fast", True, "canary: first run on this CPU with this model and llama.cpp")


def remember(cache_dir: Path, model_hash: str, kernels: Kernels, reason: str) -> None:
    """Record the verdict (atomically: two processes may run the canary at once)."""
    data = _read(cache_dir)
    data[machine_key(model_hash)] = {"kernels": kernels, "reason": reason,
                                     "checked": time.strftime("%Y-%m-%d %H:%M:%S"),
                                     "llama_cpp_python": llama_cpp_version()}
    cache_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=cache_dir, prefix=f".{CACHE_FILE}.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=1)
    os.replace(tmp, cache_dir / CACHE_FILE)


def describe_exit(returncode: int | None) -> str:
    """"signal 11 (SIGSEGV)" for a process killed by a signal, else "exit status N"."""
    if returncode is not None and returncode < 0:
        try:
            return f"signal {-returncode} ({signal.Signals(-returncode).name})"
        except ValueError:
            return f"signal {-returncode}"
    return f"exit status {returncode}"


def is_fault(returncode: int | None) -> bool:
    return returncode is not None and returncode < 0 and -returncode in FAULTS
