"""A memo of model replies for evaluation runs: same prompt, same reply, no model call.

`CachedLLM` wraps any ChatModel (name, n_ctx, count_tokens, stream). A reply is keyed by a
SHA-256 of (model name, messages, max_tokens, temperature) and saved to a JSON file as soon
as the model has finished it, so re-running a question set after a change that alters only
some prompts generates only those. A replayed reply takes no time: latencies measured
through the cache are not real latencies.

    >>> llm = CachedLLM(get_llm(settings), Path("replies.json"))   # doctest: +SKIP
    >>> engine = Engine(settings, llm=llm)                          # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path

from ..errors import InputError
from ..generate import ChatModel

FORMAT = "rag-llm-cache/1"


def reply_key(model: str, messages: list[dict[str, str]], max_tokens: int, temperature: float) -> str:
    blob = json.dumps([model, messages, max_tokens, temperature], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class CachedLLM:
    """A ChatModel that replays replies it has seen and records the ones it has not."""

    def __init__(self, inner: ChatModel, path: Path) -> None:
        self.inner = inner
        self.path = Path(path)
        self.name = inner.name
        self.n_ctx = inner.n_ctx
        self.hits = 0
        self.misses = 0
        self._lock = threading.Lock()
        self._replies: dict[str, list[str]] = self._load()

    def _load(self) -> dict[str, list[str]]:
        if not self.path.exists():
            return {}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if data.get("format") != FORMAT or not isinstance(data.get("replies"), dict):
                raise ValueError(f"not a {FORMAT} file")
            return {k: list(v) for k, v in data["replies"].items()}
        except (OSError, ValueError, AttributeError, TypeError) as exc:
            raise InputError(f"LLM cache {self.path} cannot be read ({exc}). Delete it to start an empty "
                             "cache, or pass --llm-cache another file.") from exc

    def _save(self) -> None:
        """Write to a temporary file and rename it over the old one: never a half-written cache."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            tmp.write_text(json.dumps({"format": FORMAT, "replies": self._replies}, ensure_ascii=False),
                           encoding="utf-8")
            os.replace(tmp, self.path)
        finally:
            tmp.unlink(missing_ok=True)

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    def stream(self, messages: list[dict[str, str]], max_tokens: int, temperature: float) -> Iterator[str]:
        key = reply_key(self.name, messages, max_tokens, temperature)
        with self._lock:
            cached = self._replies.get(key)
            if cached is not None:
                self.hits += 1
            else:
                self.misses += 1
        if cached is not None:
            yield from cached
            return
        pieces: list[str] = []
        for delta in self.inner.stream(messages, max_tokens, temperature):
            pieces.append(delta)
            yield delta
        with self._lock:  # only a reply the model finished is kept, not one cut short by the caller
            self._replies[key] = pieces
            self._save()

    def choose(self, messages: list[dict[str, str]], options: list[str]) -> list[float]:
        """The options' log-probabilities, replayed like replies (stored as their text)."""
        key = reply_key(self.name, messages, -1, 0.0) + "|" + "|".join(options)
        with self._lock:
            cached = self._replies.get(key)
            self.hits += cached is not None
            self.misses += cached is None
        if cached is not None:
            return [float(x) for x in cached]
        scores = self.inner.choose(messages, options)
        with self._lock:
            self._replies[key] = [repr(x) for x in scores]
            self._save()
        return scores
