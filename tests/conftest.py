"""Shared fixtures: a fake embedder and a scripted fake LLM for fast unit tests,
and the real models (loaded once per session) for tests marked ``slow``."""

from __future__ import annotations

import hashlib
import ipaddress
import re
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from rag.config import Settings

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"


# --- offline by construction ---------------------------------------------------------

_real_connect = socket.socket.connect


def _guarded_connect(sock: socket.socket, address) -> None:
    """Fail any test that reaches beyond this machine."""
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        host = address[0]
        try:
            ok = ipaddress.ip_address(host).is_loopback
        except ValueError:
            ok = host == "localhost"
        if not ok:
            raise RuntimeError(f"Test tried to reach the network: {address!r}")
    return _real_connect(sock, address)


@pytest.fixture(autouse=True, scope="session")
def no_network() -> Iterator[None]:
    socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
    yield
    socket.socket.connect = _real_connect  # type: ignore[method-assign]


# --- fakes --------------------------------------------------------------------------------


class FakeEmbedder:
    """Hashed bag of words: similar wording gives similar vectors, deterministically."""

    name = "fake-embedder"
    dim = 64

    def __init__(self) -> None:
        self.calls = 0
        self.texts_embedded = 0

    def embed(self, texts: list[str], progress: bool = False) -> np.ndarray:
        self.calls += 1
        self.texts_embedded += len(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                out[row, int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dim] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms == 0, 1, norms)


class FakeLLM:
    """Replies with queued strings (or a function of the messages), word by word;
    ``delay`` seconds before each word let a browser watch a reply stream."""

    name = "fake-llm"

    def __init__(self, replies: list | None = None, n_ctx: int = 4096, delay: float = 0.0) -> None:
        self.replies = list(replies or [])
        self.n_ctx = n_ctx
        self.delay = delay
        self.calls: list[list[dict[str, str]]] = []
        self._lock = threading.Lock()

    def count_tokens(self, text: str) -> int:
        return max(1, len(text) // 4)

    def choose(self, messages, options: list[str]) -> list[float]:
        """A queued reply (or a function of the messages) names the option picked: log-probability
        0 for it, -10 for the others."""
        with self._lock:
            self.calls.append(messages)
            reply = self.replies.pop(0) if self.replies else options[-1]
            if callable(reply):
                reply = reply(messages)
        return [0.0 if reply.strip().lower().startswith(o.lower()) else -10.0 for o in options]

    def stream(self, messages, max_tokens: int, temperature: float) -> Iterator[str]:
        with self._lock:
            self.calls.append(messages)
            reply = self.replies.pop(0) if self.replies else "The articles don't say."
            if callable(reply):
                reply = reply(messages)
            for word in re.findall(r"\S+\s*", reply):
                if self.delay:
                    time.sleep(self.delay)
                yield word


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "corpus"
    folder.mkdir()
    for f in SEEDS.glob("*.txt"):
        shutil.copy(f, folder / f.name)
    return folder


@pytest.fixture
def settings(tmp_path: Path, corpus: Path) -> Settings:
    return Settings(corpus_dir=corpus, index_dir=tmp_path / "index", cache_dir=tmp_path / "cache",
                    min_relevance=0.0, second_look=0.0)


@pytest.fixture
def fake_embedder() -> FakeEmbedder:
    return FakeEmbedder()


# --- the real models (slow tests) --------------------------------------------------------


@pytest.fixture(scope="session")
def real_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The bundled corpus in a temporary folder, indexed with the real embedder."""
    base = tmp_path_factory.mktemp("real")
    folder = base / "corpus"
    shutil.copytree(SEEDS, folder)
    return Settings(corpus_dir=folder, index_dir=base / "index")


@pytest.fixture(scope="session")
def real_engine(real_settings: Settings):
    from rag.engine import get_engine

    engine = get_engine(real_settings)
    yield engine
    engine.llm.close()  # the model worker process ends with the test session
