"""End-to-end tests of the web UI (rag/ui_app.py): the real app with the real models,
serving a temporary copy of seeds/, driven by gradio_client and by headless Chromium.

Needs Debian's chromium at /usr/bin/chromium (`apt-get install -y chromium`) and the
`playwright` Python package; the browser that Playwright would download is never used.
About five LLM answers in all, each ~10-30 s on a 2-core machine.
"""

from __future__ import annotations

import re
import shutil
import socket
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
OUT = ROOT / "test-output"
CHROMIUM = Path("/usr/bin/chromium")
ANSWER_TIMEOUT_MS = 240_000  # one LLM answer, possibly queued behind another, on a busy 2-core machine

PENTAGON_Q = "How many North Korean troops are in Russia according to the Pentagon?"
WORLD_CUP_Q = "Who won the 2022 football World Cup?"
ICBM_Q = "How long did North Korea's ICBM fly?"

# An article whose text tries to become live HTML, a link and Markdown in the page.
NEW_ARTICLE_NAME = "zorblatt_festival.txt"
NEW_ARTICLE = (
    'The <i id="pwn-title">Zorblatt</i> Festival drew a record crowd\n'
    "The Zorblatt Festival in Quenby drew 48,213 visitors in 2023, its organisers said on Monday. "
    'Details: [click here](javascript:document.body.dataset.pwned=1) and '
    '<img src=x onerror="document.body.dataset.pwned=1"> **bold** __claims__.\n'
    "The festival has been held in Quenby every summer since 1987.\n"
)
MARKER = re.compile(r"\[(\d+)\]")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _norm(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    from rag.config import Settings
    from rag.ui_app import create_app, launch_options

    corpus = tmp_path_factory.mktemp("corpus")
    for f in sorted(SEEDS.glob("*.txt")):
        shutil.copy(f, corpus / f.name)
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path_factory.mktemp("index"))
    t0 = time.perf_counter()
    demo = create_app(settings)
    build_s = time.perf_counter() - t0
    port = _free_port()
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=port, quiet=True,
                **launch_options())
    try:
        yield SimpleNamespace(url=f"http://127.0.0.1:{port}/", settings=settings, corpus=corpus, build_s=build_s)
    finally:
        demo.close()


def _engine(app):
    from rag.engine import get_engine

    return get_engine(app.settings)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is needed at /usr/bin/chromium: apt-get update && apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    profile = tmp_path_factory.mktemp("chromium-profile")  # fresh user data dir
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(profile), executable_path=str(CHROMIUM), headless=True,
            viewport={"width": 1400, "height": 1000},
            args=["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"],
        )
        context.set_default_timeout(60_000)
        try:
            yield context
        finally:
            context.close()


def _open(browser, app):
    """A new tab with the app, once the status line shows the loaded corpus."""
    page = browser.new_page()
    page.goto(app.url)
    page.wait_for_function("() => /\\d+ documents?/.test(document.querySelector('#status')?.innerText || '')",
                           timeout=ANSWER_TIMEOUT_MS)
    return page


def _answers(page):
    return page.locator("#chat .rag-answer, #chat .rag-declined, #chat .rag-error")


def _ask(page, question: str, n_before: int = 0) -> list[str]:
    """Type and submit a question; return the distinct partial replies seen while it streamed."""
    page.fill("#question textarea", question)
    page.press("#question textarea", "Enter")
    partials: list[str] = []
    deadline = time.monotonic() + ANSWER_TIMEOUT_MS / 1000
    while _answers(page).count() <= n_before:
        assert time.monotonic() < deadline, f"no answer to {question!r}"
        streaming = page.locator("#chat .rag-streaming")
        if streaming.count():
            try:
                text = streaming.last.inner_text(timeout=1000)
            except Exception:  # replaced by the final answer in between
                text = ""
            if text and (not partials or partials[-1] != text):
                partials.append(text)
        time.sleep(0.1)
    return partials


# --- no browser -----------------------------------------------------------------------


def test_create_app_is_instant_and_page_shows_loading_then_corpus_stats(app, browser):
    """The page comes up before the models load (status 'Loading…'), then shows the corpus stats."""
    assert app.build_s < 10, f"create_app took {app.build_s:.1f}s: it must not load models"
    page = browser.new_page()
    page.goto(app.url)
    status = page.locator("#status")
    # Runs first in this module, so the models are still loading when the page opens.
    assert re.search(r"Loading", status.inner_text(timeout=30_000))
    page.wait_for_function("() => /\\d+ documents?/.test(document.querySelector('#status').innerText)",
                           timeout=ANSWER_TIMEOUT_MS)
    index = _engine(app).index
    text = status.inner_text()
    assert f"{len(index.docs)} documents" in text and f"{len(index.chunks)} chunks" in text
    assert len(index.docs) == 5
    assert str(app.corpus) in text and "all-MiniLM-L6-v2" in text and "qwen2.5" in text
    page.close()


def test_ask_endpoint_returns_verified_citations(app):
    from gradio_client import Client

    client = Client(app.url, verbose=False)
    result = client.predict(PENTAGON_Q, api_name="/ask")
    assert isinstance(result, dict) and set(result) == {"text", "declined", "citations"}
    assert result["declined"] is False
    assert "10,000" in result["text"]
    markers = {int(m) for m in MARKER.findall(result["text"])}
    assert markers, result["text"]
    by_marker = {c["marker"]: c for c in result["citations"]}
    assert markers == set(by_marker)
    for c in result["citations"]:
        assert set(c) == {"marker", "doc_id", "title", "source", "date", "author", "url", "page", "file", "start",
                          "end", "text", "score"}
        assert isinstance(c["file"], str) and isinstance(c["score"], float)
        source = Path(c["file"]).read_text(encoding="utf-8")
        assert source[c["start"]:c["end"]] == c["text"]
        assert Path(c["file"]).parent == app.corpus.resolve()


def test_ask_endpoint_reports_input_errors(app):
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    client = Client(app.url, verbose=False)
    with pytest.raises(AppError, match="question is empty"):
        client.predict("   ", api_name="/ask")


def test_article_files_are_not_served(app):
    import httpx

    article = next(app.corpus.glob("*.txt")).resolve()
    for url in (f"{app.url}gradio_api/file={article}", f"{app.url}file={article}"):
        response = httpx.get(url)
        assert response.status_code in (403, 404), (url, response.status_code)
        assert "Pentagon" not in response.text


# --- chat in the browser ----------------------------------------------------------------


@pytest.fixture(scope="module")
def answered(app, browser):
    """A tab in which the Pentagon question has been answered (streamed)."""
    page = _open(browser, app)
    partials = _ask(page, PENTAGON_Q)
    return SimpleNamespace(page=page, partials=partials)


def test_answer_streams_then_is_replaced_by_verified_text_with_badges(answered):
    page = answered.page
    growing = [p.rstrip("▌").strip() for p in answered.partials if "Searching" not in p]
    assert len(growing) >= 2, f"the reply did not stream: {answered.partials}"
    assert all(b.startswith(a) for a, b in zip(growing, growing[1:])), growing
    assert page.locator("#chat .rag-streaming").count() == 0
    final = _answers(page).last
    assert final.get_attribute("class") == "rag-answer"
    assert "10,000" in final.inner_text()
    badges = final.locator("a.cite-badge")
    assert badges.count() >= 1
    assert not MARKER.search(final.inner_text()), "raw [n] markers left in the rendered answer"
    for i in range(badges.count()):
        n = badges.nth(i).inner_text().strip()
        assert badges.nth(i).get_attribute("href") == f"#src-{n}"
        assert page.locator(f"#sources-panel #src-{n}").count() == 1


def test_citation_badge_brings_highlighted_source_into_view(answered, app):
    from playwright.sync_api import expect

    page = answered.page
    assert page.locator(".src-block.src-active").count() == 0
    badge = _answers(page).last.locator("a.cite-badge").first
    n = badge.inner_text().strip()
    tabs = len(page.context.pages)
    badge.click()
    block = page.locator(f"#src-{n}")
    expect(block).to_have_class(re.compile(r"\bsrc-active\b"))
    mark = block.locator("mark")
    expect(mark).to_be_visible()
    expect(mark).to_be_in_viewport()
    assert len(page.context.pages) == tabs, "the badge opened a new tab"
    doc_id, start, end = block.get_attribute("data-doc"), int(block.get_attribute("data-start")), int(
        block.get_attribute("data-end"))
    source = _engine(app).index.source_path(doc_id).read_text(encoding="utf-8")
    assert _norm(mark.inner_text()) == _norm(source[start:end])
    assert "10,000" in mark.inner_text()
    # the window of article text around the passage is shown too
    context = block.locator(".src-context").inner_text()
    assert len(_norm(context)) > len(_norm(source[start:end])) + 200
    OUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUT / "ui-answer.png"), full_page=True)


def test_followup_gets_history_decline_is_distinct_and_tabs_do_not_mix(answered, app, browser, monkeypatch):
    engine = _engine(app)
    calls: list[tuple[str, list]] = []
    real_ask = engine.ask

    def spy(question, history=None, *args, **kwargs):
        calls.append((question, list(history or [])))
        return real_ask(question, history, *args, **kwargs)

    monkeypatch.setattr(engine, "ask", spy)
    page = answered.page
    first_answer = _answers(page).last.inner_text()
    other = _open(browser, app)
    # A follow-up in the first tab (via its example button) and a question in a second tab, at once.
    page.locator("#examples button", has_text="World Cup").click()
    _ask(other, ICBM_Q)
    page.wait_for_function("() => document.querySelectorAll('#chat .rag-answer, #chat .rag-declined, "
                           "#chat .rag-error').length >= 2", timeout=ANSWER_TIMEOUT_MS)

    history = dict(calls)
    assert set(history) == {WORLD_CUP_Q, ICBM_Q}
    assert history[ICBM_Q] == []
    [(q, a)] = history[WORLD_CUP_Q]
    assert q == PENTAGON_Q and "10,000" in a and MARKER.search(a) and "<" not in a  # the verified text

    declined = _answers(page).last
    assert declined.get_attribute("class") == "rag-declined"
    assert "no answer in the articles" in declined.inner_text().lower()
    assert declined.evaluate("e => getComputedStyle(e).fontStyle") == "italic"
    assert declined.locator("a.cite-badge").count() == 0
    sources = page.locator("#sources-panel")
    assert "Nothing was cited" in sources.inner_text()

    # each tab shows only its own conversation
    chat_a, chat_b = page.locator("#chat").inner_text(), other.locator("#chat").inner_text()
    assert PENTAGON_Q in chat_a and WORLD_CUP_Q in chat_a and ICBM_Q not in chat_a
    assert ICBM_Q in chat_b and PENTAGON_Q not in chat_b and WORLD_CUP_Q not in chat_b
    assert "73" in _answers(other).last.inner_text()
    assert "004_bd4addd136b7a187" in other.locator("#sources-panel").inner_text()
    assert _answers(page).first.inner_text() == first_answer

    # the earlier answer's badge still opens its (now folded) source
    from playwright.sync_api import expect

    _answers(page).first.locator("a.cite-badge").first.click()
    old = page.locator("#sources-panel details .src-block").first
    expect(old.locator("mark")).to_be_in_viewport()
    assert old.evaluate("e => e.closest('details').open") is True
    other.close()


# --- adding articles ---------------------------------------------------------------------


def _open_upload(page):
    page.locator("#add-articles").get_by_text("Add articles").click()
    return page.locator("#uploader input[type=file]")


def _corpus_state(app):
    return sorted((p.name, p.stat().st_size) for p in app.corpus.iterdir())


def test_upload_of_invalid_files_explains_and_changes_nothing(app, browser):
    page = _open(browser, app)
    before_files, before_docs = _corpus_state(app), set(_engine(app).index.docs)
    before_status = page.locator("#status").inner_text()
    _open_upload(page).set_input_files([
        {"name": "binary.txt", "mimeType": "text/plain", "buffer": b"PK\x03\x04\x00\x00\x01\x02" * 64},
        {"name": "latin1.txt", "mimeType": "text/plain", "buffer": "Café owners said prices rose.".encode("latin-1")},
        {"name": "empty.md", "mimeType": "text/markdown", "buffer": b" \n\n"},
        {"name": "report.pdf", "mimeType": "application/pdf", "buffer": b"%PDF-1.4 Pentagon troops"},
    ])
    result = page.locator("#upload-result")
    expect_lines = {"binary.txt": "binary", "latin1.txt": "UTF-8", "empty.md": "empty", "report.pdf": ".txt and .md"}
    page.wait_for_function("() => document.querySelectorAll('#upload-result li').length >= 4")
    items = [result.locator("li").nth(i).inner_text() for i in range(result.locator("li").count())]
    for name, why in expect_lines.items():
        line = next((t for t in items if name in t), None)
        assert line is not None and "not added" in line and why in line, (name, items)
    assert result.locator("li.upload-ok").count() == 0
    assert _corpus_state(app) == before_files
    assert set(_engine(app).index.docs) == before_docs
    assert page.locator("#status").inner_text() == before_status
    page.close()


def test_uploaded_article_is_indexed_answerable_and_shown_inert(app, browser):
    from playwright.sync_api import expect

    page = _open(browser, app)
    n_docs = len(_engine(app).index.docs)
    _open_upload(page).set_input_files(
        [{"name": NEW_ARTICLE_NAME, "mimeType": "text/plain", "buffer": NEW_ARTICLE.encode()}])
    expect(page.locator("#upload-result li.upload-ok")).to_contain_text(NEW_ARTICLE_NAME)
    expect(page.locator("#status")).to_contain_text(f"{n_docs + 1} documents")
    assert (app.corpus / NEW_ARTICLE_NAME).read_text(encoding="utf-8") == NEW_ARTICLE
    assert "zorblatt_festival" in _engine(app).index.docs
    page.get_by_text("Settings", exact=True).click()
    expect(page.locator("#doc-select")).to_contain_text("zorblatt_festival")

    _ask(page, "How many visitors did the Zorblatt Festival in Quenby draw in 2023?")
    answer = _answers(page).last
    assert answer.get_attribute("class") == "rag-answer", answer.inner_text()
    assert "48,213" in answer.inner_text()
    answer.locator("a.cite-badge").first.click()
    block = page.locator("#sources-panel .src-block.src-active")
    assert block.get_attribute("data-doc") == "zorblatt_festival"
    # the article's markup is shown as text, never run or rendered
    panel_text = page.locator("#sources-panel").inner_text()
    assert '<img src=x onerror="document.body.dataset.pwned=1">' in panel_text
    assert "[click here](javascript:" in panel_text and "**bold**" in panel_text
    assert '<i id="pwn-title">Zorblatt</i>' in panel_text  # the title, in the source's heading
    assert page.locator("#pwn-title, #sources-panel img, #sources-panel strong, a[href^='javascript']").count() == 0
    assert page.evaluate("document.body.dataset.pwned") is None
    page.close()


# --- pieces that need no server ------------------------------------------------------------


def test_model_text_is_escaped_before_badges_are_added():
    from rag.ui_app import inert, render_answer, render_declined

    evil = 'See <img src=x onerror=alert(1)> and [x](javascript:alert(1)) **b** $$x$$ [1] [7].\nNext'
    html = render_answer(evil, {1})
    assert "<img" not in html and "](" not in html and "**" not in html and "$$" not in html
    assert html.count('class="cite-badge"') == 1 and 'href="#src-1"' in html
    assert "&#91;7&#93;" in html  # a marker with no citation stays plain text
    assert "<br>" in html
    assert 'href="#src-t2-1"' in render_answer("Fact [1].", {1}, turn=2)
    assert "rag-declined" in render_declined("The articles don't say.")
    assert inert("a<b>&c") == "a&#60;b&#62;&#38;c"


def test_upload_names_are_reduced_to_safe_base_names():
    from rag.ui_app import safe_filename

    assert safe_filename("../../etc/passwd.txt") == "passwd.txt"
    assert safe_filename("C:\\Users\\x\\notes.md") == "notes.md"
    assert safe_filename(".hidden.txt") == "hidden.txt"
    assert safe_filename('a<b>"c".txt') == "a_b__c_.txt"
    assert safe_filename("..") is None and safe_filename("") is None


def test_launch_binds_localhost_and_needs_a_password_to_go_public(tmp_path, monkeypatch):
    import gradio as gr

    from rag.config import Settings
    from rag.errors import RagError
    from rag.ui_app import launch

    seen: list[dict] = []
    monkeypatch.setattr(gr.Blocks, "launch", lambda self, **kw: seen.append(kw))
    for var in ("RAG_UI_PASSWORD", "RAG_UI_ALLOW_PUBLIC", "RAG_UI_HOST", "RAG_UI_PORT"):
        monkeypatch.delenv(var, raising=False)
    settings = Settings(corpus_dir=tmp_path, index_dir=tmp_path / "index")

    launch(settings)
    assert seen[-1]["server_name"] == "127.0.0.1" and seen[-1]["share"] is False and seen[-1]["auth"] is None
    assert seen[-1]["max_file_size"] == "2mb" and not seen[-1]["allowed_paths"]
    for kwargs in ({"host": "0.0.0.0"}, {"share": True}):
        with pytest.raises(RagError, match="RAG_UI_PASSWORD"):
            launch(settings, **kwargs)
    assert len(seen) == 1
    monkeypatch.setenv("RAG_UI_PASSWORD", "s3cret")
    launch(settings, host="0.0.0.0")
    assert seen[-1]["server_name"] == "0.0.0.0" and seen[-1]["auth"] == ("rag", "s3cret")
    monkeypatch.delenv("RAG_UI_PASSWORD")
    launch(settings, host="0.0.0.0", allow_public=True)
    assert seen[-1]["auth"] is None


def test_address_comes_from_arguments_then_environment_and_a_bad_port_is_refused(monkeypatch):
    from rag.errors import InputError
    from rag.ui_app import address

    monkeypatch.delenv("RAG_UI_HOST", raising=False)
    monkeypatch.delenv("RAG_UI_PORT", raising=False)
    assert address() == ("127.0.0.1", 7860)
    monkeypatch.setenv("RAG_UI_HOST", "0.0.0.0")
    monkeypatch.setenv("RAG_UI_PORT", "8000")
    assert address() == ("0.0.0.0", 8000)
    assert address("127.0.0.1", "9000") == ("127.0.0.1", 9000)
    for bad in ("abc", "0", "70000"):
        with pytest.raises(InputError, match=f"Port '{bad}'"):
            address(port=bad)
