"""The local LLM behind one small interface: count tokens, stream a chat reply.

A llama.cpp context is not thread-safe, so every call that touches it holds one
lock per model; concurrent users queue instead of corrupting each other's state.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from .errors import ModelError

if TYPE_CHECKING:
    from .config import Settings


class ChatModel(Protocol):
    """What the answering code needs from a language model (fakes implement it in tests)."""

    name: str
    n_ctx: int

    def count_tokens(self, text: str) -> int: ...

    def stream(self, messages: list[dict[str, str]], max_tokens: int, temperature: float) -> Iterator[str]: ...


class LocalLLM:
    """A GGUF model run by llama-cpp-python, using the chat template stored in the GGUF."""

    def __init__(self, path: Path, settings: Settings, llama: object | None = None) -> None:
        self.name = path.name
        self.n_ctx = settings.n_ctx
        self._lock = threading.Lock()
        if llama is not None:
            self._llama = llama
            return
        from llama_cpp import Llama  # heavy: loaded only when a model is needed
        from llama_cpp.llama_speculative import LlamaPromptLookupDecoding

        draft = LlamaPromptLookupDecoding(num_pred_tokens=settings.prompt_lookup_tokens) \
            if settings.prompt_lookup_tokens else None
        try:
            self._llama = Llama(
                model_path=str(path),
                n_ctx=settings.n_ctx,  # llama.cpp's default of 512 cannot hold the passages
                n_threads=settings.n_threads,
                n_threads_batch=settings.n_threads,
                n_batch=512,
                flash_attn=True,  # measured: prompt 94 vs 87 tokens/s on 2 cores
                draft_model=draft,  # answers copy from the passages: drafts from the prompt often hit
                # A draft model needs every token's logits; llama-cpp-python 0.3.36 switches that on
                # by itself but sizes its logits buffer by this argument, and a prompt past n_batch
                # tokens then fails ("could not broadcast input array").
                logits_all=draft is not None,
                # Quiet, but while loading, llama-cpp-python points file descriptors 1 and 2
                # at /dev/null for the whole process: so the model is never loaded in the
                # background (that swallowed the warning of an index being rebuilt).
                verbose=False,
            )
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"Could not load LLM {path}: {exc}. Is it a valid GGUF file?") from exc

    @classmethod
    def from_hub(cls, repo: str, filename: str, settings: Settings) -> LocalLLM:
        from llama_cpp import Llama

        llama = Llama.from_pretrained(repo_id=repo, filename=filename, n_ctx=settings.n_ctx,
                                      n_threads=settings.n_threads, verbose=False)
        return cls(Path(filename), settings, llama=llama)

    def count_tokens(self, text: str) -> int:
        return len(self._llama.tokenize(text.encode("utf-8"), add_bos=False, special=False))  # type: ignore[attr-defined]

    def stream(self, messages: list[dict[str, str]], max_tokens: int, temperature: float) -> Iterator[str]:
        """Yield text deltas. The lock is held until the generator finishes or is closed."""
        with self._lock:
            parts = self._llama.create_chat_completion(  # type: ignore[attr-defined]
                messages=messages, max_tokens=max_tokens, temperature=temperature, top_p=1.0,
                repeat_penalty=1.0, seed=0, stream=True,
            )
            for part in parts:
                delta = part["choices"][0]["delta"].get("content")
                if delta:
                    yield delta
