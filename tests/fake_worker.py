"""Fake models for the worker process: `rag.worker` loads them by name in its child."""

from __future__ import annotations

import time
from collections.abc import Iterator

WORDS = ["The", " Pentagon", " says", " about", " 10,000", " troops", " [1]."]


class Words:
    """Replies with WORDS, one every ``delay`` seconds, so a test can act mid-answer."""

    delay = 0.2

    def __init__(self, spec, allow_downloads: bool = False) -> None:
        self.name, self.n_ctx = "fake-words", spec.n_ctx

    def tokenize(self, text: str, special: bool = False) -> list[int]:
        return [len(w) for w in text.split()]

    def detokenize(self, tokens: list[int]) -> str:
        return " ".join("x" * t for t in tokens)

    def stream(self, messages, max_tokens: int, temperature: float) -> Iterator[str]:
        for word in WORDS[:max_tokens]:
            time.sleep(self.delay)
            yield word

    def system_info(self) -> str:
        return "fake"

    def reset(self) -> None:
        pass


class SafeIsFaster(Words):
    """Like Words, ten times faster without llama.cpp's extra buffer types (as on some CPUs)."""

    def __init__(self, spec, allow_downloads: bool = False) -> None:
        super().__init__(spec, allow_downloads)
        self.delay = 0.02 if spec.kernels == "safe" else 0.2


class Broken(Words):
    def __init__(self, spec, allow_downloads: bool = False) -> None:
        raise ValueError("not a GGUF file")
