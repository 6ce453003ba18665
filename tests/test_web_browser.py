"""The retry status in a real browser: a real Gradio app over the seeds, with a fake
embedder and a scripted, slow fake LLM (so the browser can watch each state). The model
first declines; the quote look then copies a sentence of passage [1]. The chat must show
the first look's text, then a status line under it, never the quote look's raw text, and
then the verified answer with its badge."""

from __future__ import annotations

import shutil
from types import SimpleNamespace

import pytest

from rag.config import Settings
from rag.engine import Engine

from tests.browser import browser, chat_states, free_port, watch_chat  # noqa: F401 (browser is a fixture)
from tests.conftest import SEEDS, FakeEmbedder, FakeLLM
from tests.test_web import RECRUIT_Q, quote_passage_one

pytestmark = pytest.mark.browser

FIRST_LOOK = "The articles don't say."
STATUS = "Checking the passages again…"


@pytest.fixture(scope="module")
def fake_app(tmp_path_factory):
    from rag.web.layout import create_app
    from rag.web.serve import launch_options

    base = tmp_path_factory.mktemp("web-fake")
    shutil.copytree(SEEDS, base / "corpus")
    settings = Settings(corpus_dir=base / "corpus", index_dir=base / "index", cache_dir=base / "cache",
                        min_relevance=0.0, second_look=0.1)
    llm = FakeLLM([FIRST_LOOK, quote_passage_one], delay=0.2)  # 0.2 s a word: each state lasts long enough to see
    demo = create_app(settings, engine=Engine(settings, llm=llm, embedder=FakeEmbedder()))
    port = free_port()
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=port, quiet=True, **launch_options())
    try:
        yield SimpleNamespace(url=f"http://127.0.0.1:{port}/", llm=llm)
    finally:
        demo.close()


def test_the_retry_shows_a_status_line_never_the_quote_text_then_the_verified_answer(fake_app, browser):  # noqa: F811
    from playwright.sync_api import expect

    page = browser.new_page()
    page.goto(fake_app.url)
    expect(page.locator("#status")).to_contain_text("5 documents", timeout=120_000)
    watch_chat(page, done=1)
    page.fill("#question textarea", RECRUIT_Q)
    page.press("#question textarea", "Enter")
    answer = page.locator("#chat .rag-answer")
    expect(answer).to_have_count(1, timeout=120_000)

    seen = chat_states(page)
    assert seen["finished"], seen
    assert STATUS in " ".join(seen["status"]), seen  # the status line appeared …
    streamed = [s.rstrip("▌").strip() for s in seen["streaming"]]
    assert FIRST_LOOK in streamed, streamed  # … under the first look's text
    # the quote look's raw text never appeared before the verified answer replaced it
    assert len(fake_app.llm.calls) == 2 and seen["before"]
    assert not any("160,000" in text or "Security Council" in text for text in seen["before"]), seen["before"]
    assert all(FIRST_LOOK.startswith(s) or s.startswith("Searching") for s in streamed), streamed

    assert "160,000" in answer.inner_text() and "[1]" not in answer.inner_text()
    assert answer.locator("a.cite-badge").get_attribute("href") == "#src-1"
    assert page.locator("#chat .rag-streaming, #chat .rag-status").count() == 0
    assert "160,000" in page.locator("#sources-panel #src-1 mark").inner_text()
    page.close()
