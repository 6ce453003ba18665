"""The local LLM behind one small interface: count tokens, stream a chat reply.

``LocalLLM`` runs a GGUF model with llama-cpp-python in this process. The app never
does that itself: ``rag.worker`` runs a ``LocalLLM`` in a supervised child process,
so a crash in native code is an error message and a restart, not a dead server.

A llama.cpp context is not thread-safe, so every call that touches it holds one
lock per model; concurrent users queue instead of corrupting each other's state.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from .errors import ModelError

Kernels = Literal["fast", "safe"]


class ChatModel(Protocol):
    """What the answering code needs from a language model (fakes implement it in tests)."""

    name: str
    n_ctx: int

    def count_tokens(self, text: str) -> int: ...

    def stream(self, messages: list[dict[str, str]], max_tokens: int, temperature: float) -> Iterator[str]: ...

    def choose(self, messages: list[dict[str, str]], options: list[str]) -> list[float]:
        """Log-probability of each option as the first token of the reply."""
        ...


def says_yes(llm: ChatModel, system: str, user: str) -> bool:
    """Whether the model's first word would be "Yes" rather than "No": a judgement that
    costs one prompt and no generated text."""
    yes, no = llm.choose([{"role": "system", "content": system}, {"role": "user", "content": user}], ["Yes", "No"])
    return yes > no


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to load the LLM, in a form a child process can receive."""

    path: str | None  # a GGUF file; or repo + file for llama-cpp-python's hub loader
    repo: str | None
    file: str | None
    n_ctx: int
    n_threads: int
    kernels: Kernels  # "safe": no extra buffer types (AMX, CPU repacking); see rag.kernels

    @property
    def name(self) -> str:
        return Path(self.path).name if self.path else f"{self.repo}/{self.file}"


@contextlib.contextmanager
def _model_params(kernels: Kernels) -> Iterator[None]:
    """Load with llama.cpp's extra buffer types off in "safe" mode. ``Llama()`` takes no
    keyword for ``use_extra_bufts``; it reads llama_model_default_params() while
    constructing, so that function is wrapped for the duration (a worker process loads
    one model, single-threaded, so nothing else sees the wrapper)."""
    import llama_cpp.llama_cpp as lib

    if kernels == "fast":
        yield
        return
    default = lib.llama_model_default_params

    def safe_params():  # type: ignore[no-untyped-def]
        params = default()
        params.use_extra_bufts = False
        return params

    lib.llama_model_default_params = safe_params
    try:
        yield
    finally:
        lib.llama_model_default_params = default


class LocalLLM:
    """A GGUF model run by llama-cpp-python, using the chat template stored in the GGUF."""

    def __init__(self, spec: ModelSpec, allow_downloads: bool = False) -> None:
        from llama_cpp import Llama  # heavy: loaded only when a model is needed

        self.name = spec.name
        self.n_ctx = spec.n_ctx
        self._lock = threading.Lock()
        self._format = None  # the chat template, built on first use by ``choose``
        options = dict(
            n_ctx=spec.n_ctx,  # llama.cpp's default of 512 cannot hold the passages
            n_threads=spec.n_threads,
            n_threads_batch=spec.n_threads,
            n_batch=512,
            flash_attn=True,  # measured: prompt 94 vs 87 tokens/s on 2 cores
            verbose=False,
        )
        try:
            with _model_params(spec.kernels):
                if spec.repo:
                    if not allow_downloads:
                        raise ModelError("RAG_LLM_REPO needs network access: also set RAG_ALLOW_DOWNLOADS=1, "
                                         "or download the GGUF yourself and set RAG_LLM_PATH.")
                    self._llama = Llama.from_pretrained(repo_id=spec.repo, filename=spec.file or "*.gguf", **options)
                else:
                    self._llama = Llama(model_path=str(spec.path), **options)
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"Could not load LLM {spec.name}: {exc}. Is it a valid GGUF file?") from exc

    def tokenize(self, text: str, special: bool = False) -> list[int]:
        return list(self._llama.tokenize(text.encode("utf-8"), add_bos=False, special=special))

    def detokenize(self, tokens: list[int]) -> str:
        return self._llama.detokenize(tokens).decode("utf-8", "replace")

    def count_tokens(self, text: str) -> int:
        return len(self.tokenize(text))

    def stream(self, messages: list[dict[str, str]], max_tokens: int, temperature: float) -> Iterator[str]:
        """Yield text deltas. The lock is held until the generator finishes or is closed."""
        with self._lock:
            parts = self._llama.create_chat_completion(
                messages=messages, max_tokens=max_tokens, temperature=temperature, top_p=1.0,
                repeat_penalty=1.0, seed=0, stream=True,
            )
            for part in parts:
                delta = part["choices"][0]["delta"].get("content")
                if delta:
                    yield delta

    def choose(self, messages: list[dict[str, str]], options: list[str]) -> list[float]:
        """The log-probability of each option (by its first token) as the reply's first token:
        a yes/no the caller can weigh, rather than the one word greedy decoding picks."""
        import numpy as np
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        llama = self._llama
        if self._format is None:
            text = llama._model.token_get_text  # the chat template from the GGUF, as Llama itself builds it
            self._format = Jinja2ChatFormatter(llama.metadata["tokenizer.chat_template"],
                                               text(llama.token_eos()), text(llama.token_bos()))
        prompt = self._format(messages=messages).prompt
        tokens = llama.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)
        firsts = [self.tokenize(option)[0] for option in options]
        with self._lock:
            cached = llama._input_ids[: llama.n_tokens].tolist()
            keep = 0
            while keep < min(len(cached), len(tokens) - 1) and cached[keep] == tokens[keep]:
                keep += 1  # the prompt's prefix whose state llama.cpp already holds
            llama.n_tokens = keep
            llama.eval(tokens[keep:])
            logits = np.ctypeslib.as_array(llama._ctx.get_logits(), shape=(llama.n_vocab(),)).astype(np.float64)
        top = logits.max()
        logprobs = logits - (top + np.log(np.exp(logits - top).sum()))
        return [float(logprobs[t]) for t in firsts]

    def system_info(self) -> str:
        """The CPU features this llama.cpp build uses (AVX2, AVX512, AMX, REPACK …)."""
        import llama_cpp

        return llama_cpp.llama_print_system_info().decode().strip()

    def reset(self) -> None:
        """Forget the cached prompt state, so the next prompt is read from scratch (for benchmarks)."""
        with self._lock:
            self._llama.reset()

    def close(self) -> None:
        with self._lock:
            self._llama.close()
