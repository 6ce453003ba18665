"""The OpenAI chat-completions wire format: a request in, a completion or stream chunks out.

Only what ``rag serve`` needs. A request's last user message is the question and the
user/assistant pairs before it are the history; system messages and unknown fields are
ignored, so any OpenAI client can send what it usually sends. Answers carry their
verified citations in an extra top-level ``citations`` field.

    >>> chat = parse_chat(b'{"messages": [{"role": "user", "content": "Who?"}, '
    ...                   b'{"role": "assistant", "content": "Kim [1]."}, {"role": "user", "content": "Where?"}]}')
    >>> chat.question, chat.history
    ('Where?', [('Who?', 'Kim [1].')])
"""

from __future__ import annotations

import json
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import InputError
from .present import answer_dict
from .prompt import clean_question

MODEL_ID = "rag"


class _Message(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: str
    content: str | list[dict[str, Any]] | None = None  # a list holds parts like {"type": "text", "text": …}


class _Request(BaseModel):
    model_config = ConfigDict(extra="ignore")  # top_p, n, stop, user, stream_options …: accepted, ignored
    model: str = MODEL_ID  # any name is answered by the one model
    messages: list[_Message] = Field(min_length=1)
    stream: bool = False
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    max_tokens: int | None = Field(None, ge=1)  # accepted; RAG_MAX_TOKENS bounds every answer


@dataclass(frozen=True)
class Chat:
    """What the engine is asked: a cleaned question and (question, answer) pairs before it."""

    question: str
    history: list[tuple[str, str]] = field(default_factory=list)
    stream: bool = False
    temperature: float | None = None


def _text(content: str | list[dict[str, Any]] | None) -> str:
    if isinstance(content, list):  # the parts form: its text parts, in order
        return "".join(str(p.get("text", "")) for p in content if p.get("type", "text") == "text")
    return content or ""


def parse_chat(body: bytes) -> Chat:
    """A chat completion request's body as a Chat, or an InputError saying what is wrong."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"The request body is not valid JSON ({exc}). Send a JSON object with a "
                         "'messages' list, as the OpenAI chat completions API takes.") from exc
    try:
        request = _Request.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors())
        raise InputError(f"The request is not a valid chat completion request: {problems}.") from exc
    turns = [(m.role, _text(m.content)) for m in request.messages if m.role in ("user", "assistant")]
    last = max((i for i, (role, _) in enumerate(turns) if role == "user"), default=None)
    if last is None:
        raise InputError("The request has no user message: send the question as a message with role 'user'.")
    history = [(q, a) for (r1, q), (r2, a) in zip(turns[:last], turns[1:last]) if (r1, r2) == ("user", "assistant")]
    return Chat(clean_question(turns[last][1]), history, request.stream, request.temperature)


def error_body(message: str, type_: str, code: str | None = None) -> dict:
    """OpenAI's error shape, which its clients turn into their exception types."""
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}


def new_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


def completion(answer: Any, cid: str) -> dict:
    """A whole answer as a ``chat.completion`` with its ``citations`` (and ``declined``)."""
    data = answer_dict(answer)
    return {"id": cid, "object": "chat.completion", "created": int(time.time()), "model": MODEL_ID,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": data["text"]},
                         "finish_reason": "stop", "logprobs": None}],
            "citations": data["citations"], "declined": data["declined"]}


def chunk(cid: str, created: int, delta: dict, finish: str | None = None, **extra: Any) -> dict:
    return {"id": cid, "object": "chat.completion.chunk", "created": created, "model": MODEL_ID,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}], **extra}


def answer_chunks(answer: Any, cid: str, created: int) -> list[dict]:
    """The verified text word by word, then the final chunk with the citations."""
    data = answer_dict(answer)
    words = re.findall(r"\S+\s*|\s+", data["text"])
    return [chunk(cid, created, {"content": w}) for w in words] + [
        chunk(cid, created, {}, "stop", citations=data["citations"], declined=data["declined"])]


def sse(data: dict | str) -> str:
    """One server-sent event: ``data: {json}`` and a blank line."""
    return f"data: {data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)}\n\n"


def models_list(created: int) -> dict:
    return {"object": "list", "data": [{"id": MODEL_ID, "object": "model", "created": created, "owned_by": "rag"}]}
