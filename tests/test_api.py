"""`rag serve`, the OpenAI-compatible HTTP API (rag/api.py): a real uvicorn server on
127.0.0.1 driven by the official openai client (and httpx for raw HTTP). Fast tests answer
with a real Engine over the seeds with the fake embedder and a fake LLM; the slow test at
the end uses the real models."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from rag.engine import Engine
from rag.api import api_settings, check_exposure, create_api, running, serve
from rag.api_format import parse_chat
from rag.errors import InputError, ModelError, RagError
from rag.ingest import read_source
from tests.conftest import FakeEmbedder, FakeLLM
from tests.test_answer import cite_passage_with

Q = "How many North Korean troops are in Russia according to the Pentagon?"
KEY = "s3cret-key"
CITATION_KEYS = {"marker", "doc_id", "title", "source", "date", "author", "url", "page", "also", "file", "start",
                 "end", "text", "score"}
# A reply with a claim the verifier drops: the stream must never carry it.
UNSUPPORTED = " Argentina won the 2022 World Cup, beating France [1]."


def answer_with_extra_claim(messages):
    reply = cite_passage_with("10,000")(messages)
    return reply + UNSUPPORTED if "10,000" in reply else reply


class BlockingLLM(FakeLLM):
    """A FakeLLM whose every reply waits until ``release`` is set."""

    def __init__(self, replies=None) -> None:
        super().__init__(replies)
        self.entered = threading.Event()
        self.release = threading.Event()

    def stream(self, messages, max_tokens, temperature):
        self.entered.set()
        if not self.release.wait(30):
            raise RuntimeError("never released")
        yield from super().stream(messages, max_tokens, temperature)


def wait_for(condition, what: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def metric(url: str, name: str, **labels) -> float:
    text = httpx.get(f"{url}/metrics").text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


@pytest.fixture
def serve_api(settings):
    """serve_api(llm, **settings) -> a running server with that LLM; stopped after the test."""
    stack = []

    def start(llm, keepalive_s: float = 5.0, **options):
        s = settings.model_copy(update={"api_key": SecretStr(KEY), **options})
        app = create_api(s, engine=Engine(s, llm=llm, embedder=FakeEmbedder()), keepalive_s=keepalive_s)
        ctx = running(app)
        url = ctx.__enter__()
        stack.append(ctx)
        client = openai.OpenAI(base_url=f"{url}/v1", api_key=KEY, max_retries=0, timeout=60)
        return SimpleNamespace(url=url, llm=llm, client=client, app=app, auth={"Authorization": f"Bearer {KEY}"})

    yield start
    for ctx in reversed(stack):
        ctx.__exit__(None, None, None)


def user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def check_citations(citations: list[dict], text: str) -> None:
    assert citations and {c["marker"] for c in citations} == {int(m) for m in re.findall(r"\[(\d+)\]", text)}
    for c in citations:
        assert set(c) == CITATION_KEYS
        assert read_source(Path(c["file"]))[c["start"]:c["end"]] == c["text"]


# --- answers ----------------------------------------------------------------------------------


def test_a_completion_carries_the_verified_text_and_its_citations(serve_api):
    api = serve_api(FakeLLM([answer_with_extra_claim]))
    done = api.client.chat.completions.create(model="rag", messages=user(Q), temperature=0, max_tokens=50,
                                              top_p=1, user="someone",
                                              extra_body={"some_future_field": 1})
    text = done.choices[0].message.content
    assert done.object == "chat.completion" and done.model == "rag" and done.choices[0].finish_reason == "stop"
    assert "10,000" in text and "[1]" in text and "Argentina" not in text
    assert done.declined is False
    check_citations(done.citations, text)
    assert "10,000" in done.citations[0]["text"]


def test_the_stream_carries_only_the_verified_answer_then_the_citations(serve_api):
    api = serve_api(FakeLLM([answer_with_extra_claim, answer_with_extra_claim]))
    whole = api.client.chat.completions.create(model="rag", messages=user(Q))
    chunks = list(api.client.chat.completions.create(model="rag", messages=user(Q), stream=True))
    assert chunks[0].choices[0].delta.role == "assistant" and not chunks[0].choices[0].delta.content
    assert all(c.object == "chat.completion.chunk" and c.id == chunks[0].id for c in chunks)
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert streamed == whole.choices[0].message.content and "Argentina" not in streamed
    assert len([c for c in chunks if c.choices[0].delta.content]) > 3  # word by word, not one blob
    last = chunks[-1]
    assert last.choices[0].finish_reason == "stop" and not last.choices[0].delta.content
    assert all(c.choices[0].finish_reason is None for c in chunks[:-1])
    assert last.citations == whole.citations and last.declined is False


def test_a_declined_answer_is_a_normal_completion_without_citations(serve_api):
    api = serve_api(FakeLLM(["Argentina won the 2022 World Cup [1]."] * 2))
    done = api.client.chat.completions.create(model="rag", messages=user("Who won the 2022 football World Cup?"))
    assert done.choices[0].finish_reason == "stop" and done.citations == [] and done.declined is True
    assert "Argentina" not in done.choices[0].message.content
    last = list(api.client.chat.completions.create(model="rag", messages=user("Who won the 2022 World Cup?"),
                                                   stream=True))[-1]
    assert last.citations == [] and last.declined is True


def test_a_follow_up_sends_the_earlier_turns_as_history_and_ignores_system_messages(serve_api):
    standalone = "How many North Korean troops does the Pentagon say are in Russia?"
    api = serve_api(FakeLLM([f"{standalone}\n", cite_passage_with("10,000")]))
    messages = [{"role": "system", "content": "You are a pirate. SYSTEM-MARKER"},
                {"role": "user", "content": "Which country sent troops to Russia?"},
                {"role": "assistant", "content": "North Korea sent troops [1]."},
                {"role": "user", "content": [{"type": "text", "text": "How many are there, per the Pentagon?"}]}]
    done = api.client.chat.completions.create(model="rag", messages=messages)
    assert "10,000" in done.choices[0].message.content
    rewrite, answer = api.llm.calls  # the follow-up was rewritten using the history, then answered
    rewrite_text = json.dumps(rewrite)
    assert "Which country sent troops to Russia?" in rewrite_text and "North Korea sent troops" in rewrite_text
    assert "How many are there, per the Pentagon?" in rewrite_text
    assert "SYSTEM-MARKER" not in json.dumps(api.llm.calls)


def test_keep_alive_comments_flow_while_the_answer_is_prepared_and_the_openai_client_ignores_them(serve_api):
    import httpx2  # the openai client's HTTP library: a transport that sees the raw bytes it reads

    llm = BlockingLLM([cite_passage_with("10,000")])
    api = serve_api(llm, keepalive_s=0.02)
    seen = bytearray()

    class Tee(httpx2.HTTPTransport):
        def handle_request(self, request):
            response = super().handle_request(request)
            inner = response.stream

            class Stream(httpx2.SyncByteStream):
                def __iter__(self):
                    for part in inner:
                        seen.extend(part)
                        if seen.count(b": keep-alive\n\n") >= 3:
                            llm.release.set()  # answer only once keep-alives have reached the client
                        yield part

                def close(self):
                    inner.close()

            return httpx2.Response(response.status_code, headers=response.headers, stream=Stream(),
                                   extensions=response.extensions)

    client = openai.OpenAI(base_url=f"{api.url}/v1", api_key=KEY, max_retries=0, timeout=60,
                           http_client=httpx2.Client(transport=Tee()))
    chunks = list(client.chat.completions.create(model="rag", messages=user(Q), stream=True))
    assert seen.count(b": keep-alive\n\n") >= 3
    assert seen.index(b": keep-alive") > seen.index(b'"role": "assistant"')  # the role came first, at once
    assert "10,000" in "".join(c.choices[0].delta.content or "" for c in chunks)
    assert chunks[-1].citations and seen.rstrip().endswith(b"data: [DONE]")


# --- refusals ---------------------------------------------------------------------------------


def test_a_missing_or_wrong_key_gets_401_and_no_answer(serve_api):
    api = serve_api(FakeLLM([cite_passage_with("10,000")]))
    for key in ("wrong", KEY + "x", KEY[:-1]):
        bad = openai.OpenAI(base_url=f"{api.url}/v1", api_key=key, max_retries=0)
        with pytest.raises(openai.AuthenticationError) as caught:
            bad.chat.completions.create(model="rag", messages=user(Q))
        assert caught.value.status_code == 401 and "API key" in caught.value.message
        with pytest.raises(openai.AuthenticationError):
            bad.models.list()
    for headers in ({}, {"Authorization": "Bearer"}, {"Authorization": f"Basic {KEY}"}, {"X-Api-Key": KEY}):
        raw = httpx.post(f"{api.url}/v1/chat/completions", json={"messages": user(Q), "stream": True},
                         headers=headers)
        assert raw.status_code == 401 and raw.json()["error"]["code"] == "invalid_api_key"
        assert set(raw.json()["error"]) == {"message", "type", "param", "code"}
    assert api.llm.calls == []
    assert "10,000" in api.client.chat.completions.create(model="rag", messages=user(Q)).choices[0].message.content


@pytest.mark.parametrize("messages, says", [
    (user("   "), "The question is empty"),
    ([{"role": "system", "content": "Be brief."}], "no user message"),
    ([], "messages"),
])
@pytest.mark.parametrize("stream", [False, True])
def test_bad_input_gets_400_with_the_reason(serve_api, messages, says, stream):
    api = serve_api(FakeLLM())
    with pytest.raises(openai.BadRequestError) as caught:
        api.client.chat.completions.create(model="rag", messages=messages, stream=stream)
    assert caught.value.status_code == 400 and says in caught.value.message
    assert api.llm.calls == []


def test_a_body_that_is_not_json_or_not_a_request_gets_400(serve_api):
    api = serve_api(FakeLLM())
    for body, says in ((b"{not json", "not valid JSON"), (b'"a string"', "not a valid chat completion request"),
                       (b'{"messages": [{"role": "user", "content": "Hi?"}], "temperature": 9}', "temperature")):
        reply = httpx.post(f"{api.url}/v1/chat/completions", content=body, headers=api.auth)
        assert reply.status_code == 400 and says in reply.json()["error"]["message"]
        assert "Traceback" not in reply.text


def test_an_oversize_body_gets_413_before_it_is_parsed_declared_or_streamed(serve_api):
    api = serve_api(FakeLLM(), api_max_body_bytes=4096)
    big = json.dumps({"messages": user("How many troops? " + "x" * 5000)}).encode()
    declared = httpx.post(f"{api.url}/v1/chat/completions", content=big, headers=api.auth)
    assert declared.status_code == 413 and "4,096 bytes" in declared.json()["error"]["message"]
    chunked = httpx.post(f"{api.url}/v1/chat/completions", content=iter([big[:3000], big[3000:]]), headers=api.auth)
    assert "content-length" not in chunked.request.headers  # counted as it arrives, not declared
    assert chunked.status_code == 413
    # Declared too big: refused from the headers alone, before any of the body is sent.
    host, port = api.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(f"POST /v1/chat/completions HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {KEY}\r\n"
                     "Content-Type: application/json\r\nContent-Length: 1000000000\r\n\r\n".encode())
        assert sock.recv(4096).startswith(b"HTTP/1.1 413 ")
    assert api.llm.calls == []
    small = httpx.post(f"{api.url}/v1/chat/completions", json={"messages": user(Q)}, headers=api.auth)
    assert small.status_code == 200  # the server is still up and answers a body under the limit


def test_a_full_queue_gets_503_with_retry_after(serve_api):
    llm = BlockingLLM([cite_passage_with("10,000")] * 3)
    api = serve_api(llm, api_max_queue=2)
    results: list = []

    def ask():
        results.append(api.client.chat.completions.create(model="rag", messages=user(Q)))

    threads = [threading.Thread(target=ask) for _ in range(2)]
    for t in threads:
        t.start()
    wait_for(lambda: llm.entered.is_set() and metric(api.url, "rag_api_queue_depth") == 2, "two requests admitted")
    full = httpx.post(f"{api.url}/v1/chat/completions", json={"messages": user(Q)}, headers=api.auth)
    assert full.status_code == 503 and full.json()["error"]["code"] == "queue_full"
    assert int(full.headers["retry-after"]) > 0
    with pytest.raises(openai.InternalServerError):
        api.client.chat.completions.create(model="rag", messages=user(Q), stream=True)
    llm.release.set()
    for t in threads:
        t.join(30)
    assert len(results) == 2 and all("10,000" in r.choices[0].message.content for r in results)
    assert metric(api.url, "rag_api_queue_depth") == 0
    assert "10,000" in api.client.chat.completions.create(model="rag", messages=user(Q)).choices[0].message.content


def test_a_client_that_leaves_mid_stream_frees_its_place_and_the_model(serve_api):
    llm = BlockingLLM([cite_passage_with("10,000")] * 2)
    api = serve_api(llm, keepalive_s=0.02, api_max_queue=1)
    with httpx.stream("POST", f"{api.url}/v1/chat/completions", json={"messages": user(Q), "stream": True},
                      headers=api.auth) as response:
        first = next(response.iter_lines())
        assert '"role": "assistant"' in first
        wait_for(llm.entered.is_set, "the model to be called")
    # gone: the server notices at its next keep-alive and the answer stops at the model's next word
    llm.release.set()
    wait_for(lambda: metric(api.url, "rag_api_answers_total", outcome="cancelled") == 1, "the answer to stop")
    assert metric(api.url, "rag_api_queue_depth") == 0
    assert "10,000" in api.client.chat.completions.create(model="rag", messages=user(Q)).choices[0].message.content


def test_an_engine_error_is_a_5xx_with_its_message_and_the_server_stays_up(serve_api):
    def model_error(messages):
        raise ModelError("The model process died. It will be restarted.")

    def crash(messages):
        raise ZeroDivisionError("secret internals")

    api = serve_api(FakeLLM([model_error, crash, model_error, cite_passage_with("10,000")]))
    with pytest.raises(openai.InternalServerError) as caught:
        api.client.chat.completions.create(model="rag", messages=user(Q))
    assert caught.value.status_code == 500 and "model process died" in caught.value.message
    with pytest.raises(openai.InternalServerError) as caught:
        api.client.chat.completions.create(model="rag", messages=user(Q))
    assert "ZeroDivisionError" in caught.value.message and "secret internals" not in caught.value.message
    assert "Traceback" not in caught.value.response.text
    with pytest.raises(openai.APIError, match="model process died"):  # mid-stream: an error event
        list(api.client.chat.completions.create(model="rag", messages=user(Q), stream=True))
    assert "10,000" in api.client.chat.completions.create(model="rag", messages=user(Q)).choices[0].message.content


# --- models, health, metrics ------------------------------------------------------------------


def test_models_lists_one_model_named_rag(serve_api):
    api = serve_api(FakeLLM())
    assert [m.id for m in api.client.models.list()] == ["rag"]


def test_health_says_loading_until_the_engine_is_loaded_then_ok(settings, monkeypatch):
    import rag.engine

    release = threading.Event()
    engine = Engine(settings, llm=FakeLLM([cite_passage_with("10,000")]), embedder=FakeEmbedder())
    monkeypatch.setattr(rag.engine, "get_engine", lambda s: engine if release.wait(30) else None)
    with running(create_api(settings)) as url:
        loading = httpx.get(f"{url}/health")
        assert loading.status_code == 503 and loading.json() == {"status": "loading"}
        assert metric(url, "rag_api_engine_ready") == 0
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=60)
        results = []
        waiting = threading.Thread(target=lambda: results.append(client.chat.completions.create(
            model="rag", messages=user(Q))))
        waiting.start()  # a question asked while loading waits for the engine
        release.set()
        waiting.join(30)
        assert "10,000" in results[0].choices[0].message.content
        ok = httpx.get(f"{url}/health")
        assert ok.status_code == 200 and ok.json()["status"] == "ok" and ok.json()["documents"] == 5
        assert metric(url, "rag_api_engine_ready") == 1


def test_an_engine_that_cannot_load_is_reported_by_health_and_each_request(settings, monkeypatch):
    import rag.engine
    from rag.errors import CorpusError

    def fail(s):
        raise CorpusError("The corpus folder /nowhere does not exist. Create it and add articles.")

    monkeypatch.setattr(rag.engine, "get_engine", fail)
    with running(create_api(settings)) as url:
        wait_for(lambda: httpx.get(f"{url}/health").json()["status"] != "loading", "loading to end")
        health = httpx.get(f"{url}/health")
        assert health.status_code == 503 and "/nowhere does not exist" in health.json()["error"]
        reply = httpx.post(f"{url}/v1/chat/completions", json={"messages": user(Q)})
        assert reply.status_code == 503 and "/nowhere does not exist" in reply.json()["error"]["message"]


def test_metrics_count_requests_by_status_time_them_and_show_the_queue(serve_api):
    api = serve_api(FakeLLM([cite_passage_with("10,000")]))
    api.client.chat.completions.create(model="rag", messages=user(Q))
    httpx.post(f"{api.url}/v1/chat/completions", json={"messages": user("")}, headers=api.auth)
    httpx.post(f"{api.url}/v1/chat/completions", json={"messages": user(Q)})
    reply = httpx.get(f"{api.url}/metrics")
    assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/plain")
    path = "/v1/chat/completions"
    for status in ("200", "400", "401"):
        assert metric(api.url, "rag_api_requests_total", path=path, status=status) == 1
    assert metric(api.url, "rag_api_request_duration_seconds_count", path=path) == 3
    assert metric(api.url, "rag_api_request_duration_seconds_bucket", path=path, le="+Inf") == 3
    assert metric(api.url, "rag_api_answers_total", outcome="answered") == 1
    assert metric(api.url, "rag_api_queue_depth") == 0
    assert metric(api.url, "rag_api_engine_ready") == 1


# --- options and request parsing (no server) ---------------------------------------------------


def test_only_loopback_is_served_without_a_key_unless_allowed(settings, monkeypatch):
    import uvicorn

    calls: list[dict] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append(kw))
    for var in ("RAG_API_KEY", "RAG_API_HOST", "RAG_API_PORT", "RAG_API_ALLOW_PUBLIC"):
        monkeypatch.delenv(var, raising=False)
    serve(settings)
    assert calls[-1]["host"] == "127.0.0.1" and calls[-1]["port"] == 8000
    with pytest.raises(RagError, match="RAG_API_KEY.*RAG_API_ALLOW_PUBLIC=1"):
        serve(settings, host="0.0.0.0")
    with pytest.raises(RagError, match="without a key"):
        check_exposure(settings.model_copy(update={"api_host": "192.168.1.5"}))
    assert len(calls) == 1
    serve(settings, host="0.0.0.0", port=9000, api_key="k")
    assert calls[-1]["host"] == "0.0.0.0" and calls[-1]["port"] == 9000
    serve(settings, host="0.0.0.0", allow_public=True)
    monkeypatch.setenv("RAG_API_KEY", "  ")  # blank is no key, not the empty key
    assert api_settings(settings, host="::1").api_key is None
    with pytest.raises(InputError, match="Port 70000"):
        serve(settings, port=70000)


def test_the_cli_serve_command_passes_its_flags(settings, monkeypatch, capsys):
    import uvicorn

    from rag.cli import main

    calls: list[dict] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append(kw))
    monkeypatch.delenv("RAG_API_KEY", raising=False)
    assert main(["serve", "--host", "0.0.0.0"]) == 1 and "Refusing to serve the API" in capsys.readouterr().err
    assert main(["serve", "--host", "0.0.0.0", "--port", "8123", "--api-key", "k",
                 "--corpus-dir", str(settings.corpus_dir)]) == 0
    assert calls == [{"host": "0.0.0.0", "port": 8123, "log_level": "info", "timeout_graceful_shutdown": 10}]
    assert main(["serve", "--host", "10.0.0.1", "--allow-public"]) == 0


def test_history_is_the_user_assistant_pairs_before_the_last_question():
    chat = parse_chat(json.dumps({"model": "gpt-4o", "n": 2, "messages": [
        {"role": "system", "content": "ignored"}, {"role": "user", "content": "unanswered"},
        {"role": "user", "content": "Q1"}, {"role": "assistant", "content": "A1 [1]."},
        {"role": "tool", "content": "ignored"}, {"role": "user", "content": "Q2"},
        {"role": "assistant", "content": "A2"}, {"role": "user", "content": " Q3\u0000 "},
        {"role": "assistant", "content": "a prefill, ignored"}]}).encode())
    assert chat.question == "Q3" and chat.history == [("Q1", "A1 [1]."), ("Q2", "A2")] and chat.stream is False


# --- the real models ----------------------------------------------------------------------------


@pytest.mark.slow
def test_the_real_models_answer_through_the_api_with_exact_citations(real_settings, real_engine):
    settings = real_settings.model_copy(update={"api_key": SecretStr(KEY)})
    with running(create_api(settings)) as url:  # the engine loads in the background, as under `rag serve`
        wait_for(lambda: httpx.get(f"{url}/health").json()["status"] != "loading", "the engine", 600)
        assert httpx.get(f"{url}/health").json()["status"] == "ok"
        client = openai.OpenAI(base_url=f"{url}/v1", api_key=KEY, max_retries=0, timeout=300)
        done = client.chat.completions.create(model="rag", messages=user(Q))
        text = done.choices[0].message.content
        assert "10,000" in text and done.declined is False
        check_citations(done.citations, text)
        assert any("10,000" in c["text"] for c in done.citations)
        chunks = list(client.chat.completions.create(model="rag", messages=user(Q), stream=True))
        assert "".join(c.choices[0].delta.content or "" for c in chunks) == text
        assert chunks[-1].citations == done.citations
        wrong = openai.OpenAI(base_url=f"{url}/v1", api_key="wrong", max_retries=0)
        with pytest.raises(openai.AuthenticationError):
            wrong.chat.completions.create(model="rag", messages=user(Q))
