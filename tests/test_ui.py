"""End-to-end tests of the web UI (rag/web): the real app with the real models, serving a
temporary copy of seeds/ (and of the news fixture corpus), driven by gradio_client and by
headless Chromium.

Needs Debian's chromium at /usr/bin/chromium (`apt-get install -y chromium`) and the
`playwright` Python package; the browser that Playwright would download is never used.
About six LLM answers in all, each ~10-30 s on a 2-core machine. The pieces that need no
browser or no real model are in test_web.py and test_web_browser.py.
"""

from __future__ import annotations

import re
import shutil
from datetime import date
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.browser import browser, chat_states, free_port, watch_chat  # noqa: F401 (browser is a fixture)

pytestmark = [pytest.mark.slow, pytest.mark.browser]

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
NEWS = ROOT / "tests" / "data" / "news" / "corpus"
OUT = ROOT / "test-output"
ANSWER_TIMEOUT_MS = 600_000  # a hang guard, not a speed limit: an answer of up to four LLM calls, queued
# behind another, on a 2-core machine that other jobs share

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


def _norm(text: str) -> str:
    return " ".join(text.split())


def _serve(demo):
    from rag.web.serve import launch_options

    port = free_port()
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=port, quiet=True,
                **launch_options())
    return f"http://127.0.0.1:{port}/"


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    from rag import engine
    from rag.config import Settings
    from rag.web.layout import create_app

    corpus = tmp_path_factory.mktemp("corpus")
    for f in [*sorted(SEEDS.glob("*.txt")), SEEDS / "examples.json", SEEDS / "metadata.jsonl"]:
        shutil.copy(f, corpus / f.name)
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path_factory.mktemp("index"))
    demo = create_app(settings)
    loaded_by_create_app = settings in engine._engines
    url = _serve(demo)
    try:
        yield SimpleNamespace(url=url, settings=settings, corpus=corpus, loaded_by_create_app=loaded_by_create_app)
    finally:
        demo.close()


def _engine(app):
    from rag.engine import get_engine

    return get_engine(app.settings)


def _open(browser, app):
    """A new tab with the app, once the status line shows the loaded corpus."""
    page = browser.new_page()
    page.goto(app.url)
    page.wait_for_function("() => /\\d+ documents?/.test(document.querySelector('#status')?.innerText || '')",
                           timeout=ANSWER_TIMEOUT_MS)
    return page


def _answers(page):
    return page.locator("#chat .rag-answer, #chat .rag-declined, #chat .rag-error")


def _ask(page, question: str, n_before: int = 0) -> dict:
    """Type and submit a question, wait for its answer; return the chat's states on the way
    (see tests.browser.chat_states)."""
    watch_chat(page, done=n_before + 1)
    page.fill("#question textarea", question)
    page.press("#question textarea", "Enter")
    page.wait_for_function(f"() => document.querySelectorAll('#chat .rag-answer, #chat .rag-declined, "
                           f"#chat .rag-error').length > {n_before}", timeout=ANSWER_TIMEOUT_MS)
    return chat_states(page)


# --- no browser -----------------------------------------------------------------------


def test_create_app_loads_nothing_and_page_shows_loading_then_corpus_stats(app, browser):  # noqa: F811
    """The page comes up before the models load (status 'Loading…'), then shows the corpus stats."""
    assert not app.loaded_by_create_app, "create_app loaded the models: the page must come up first"
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
    assert isinstance(result, dict)
    assert set(result) == {"text", "declined", "citations", "disagreements", "timeline", "window"}
    assert result["declined"] is False
    assert "10,000" in result["text"]
    markers = {int(m) for m in MARKER.findall(result["text"])}
    assert markers, result["text"]
    by_marker = {c["marker"]: c for c in result["citations"]}
    assert markers == set(by_marker)
    for c in result["citations"]:
        assert set(c) == {"marker", "doc_id", "title", "file", "start", "end", "text", "score", "source", "date",
                          "author", "url", "page", "also"}
        assert isinstance(c["file"], str) and isinstance(c["score"], float)
        info = _engine(app).index.docs[c["doc_id"]]  # the seeds' metadata.jsonl gives two outlets, no dates
        assert (c["source"], c["date"], c["author"], c["url"], c["page"]) == (info.source, None, None, None, None)
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
def answered(app, browser):  # noqa: F811
    """A tab in which the Pentagon question has been answered (streamed)."""
    page = _open(browser, app)
    seen = _ask(page, PENTAGON_Q)
    return SimpleNamespace(page=page, seen=seen)


def test_answer_streams_then_is_replaced_by_verified_text_with_badges(answered):
    page = answered.page
    growing = [p.rstrip("▌").strip() for p in answered.seen["streaming"] if "Searching" not in p]
    # the first look's text was shown as it grew (more than one state), each a continuation of the last
    assert len(growing) >= 2, f"the reply did not stream: {answered.seen['streaming']}"
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


def test_followup_gets_history_decline_is_distinct_and_tabs_do_not_mix(answered, app, browser,  # noqa: F811
                                                                       monkeypatch):
    engine = _engine(app)
    calls: list[tuple[str, list]] = []
    real_events = engine.events

    def spy(question, history=None, **kwargs):
        calls.append((question, list(history or [])))
        return real_events(question, history, **kwargs)

    monkeypatch.setattr(engine, "events", spy)
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


def test_upload_of_invalid_files_explains_and_changes_nothing(app, browser):  # noqa: F811
    page = _open(browser, app)
    before_files, before_docs = _corpus_state(app), set(_engine(app).index.docs)
    before_status = page.locator("#status").inner_text()
    _open_upload(page).set_input_files([
        {"name": "binary.txt", "mimeType": "text/plain", "buffer": b"PK\x03\x04\x00\x00\x01\x02" * 64},
        {"name": "latin1.txt", "mimeType": "text/plain", "buffer": "Café owners said prices rose.".encode("latin-1")},
        {"name": "empty.md", "mimeType": "text/markdown", "buffer": b" \n\n"},
        {"name": "report.pdf", "mimeType": "application/pdf", "buffer": b"%PDF-1.4 Pentagon troops"},
        {"name": "notes.docx", "mimeType": "application/octet-stream", "buffer": b"PK\x03\x04 Pentagon troops"},
    ])
    result = page.locator("#upload-result")
    expect_lines = {"binary.txt": "binary", "latin1.txt": "UTF-8", "empty.md": "empty",
                    "report.pdf": "not a readable PDF", "notes.docx": ".txt, .md, .html and .pdf"}
    page.wait_for_function("() => document.querySelectorAll('#upload-result li').length >= 5")
    items = [result.locator("li").nth(i).inner_text() for i in range(result.locator("li").count())]
    for name, why in expect_lines.items():
        line = next((t for t in items if name in t), None)
        assert line is not None and "not added" in line and why in line, (name, items)
    assert result.locator("li.upload-ok").count() == 0
    assert _corpus_state(app) == before_files
    assert set(_engine(app).index.docs) == before_docs
    assert page.locator("#status").inner_text() == before_status
    page.close()


def test_uploaded_article_is_indexed_answerable_and_shown_inert(app, browser):  # noqa: F811
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


# --- article metadata ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def news_app(app, tmp_path_factory):
    """The news fixture corpus (outlets, dates, authors), served with the seeds app's models
    (one LLM worker for the module)."""
    from rag.config import Settings
    from rag.engine import Engine
    from rag.web.layout import create_app

    shared = _engine(app)
    base = tmp_path_factory.mktemp("news")
    shutil.copytree(NEWS, base / "corpus")
    settings = Settings(corpus_dir=base / "corpus", index_dir=base / "index")
    engine = Engine(settings, llm=shared.llm, embedder=shared.embedder)
    url = _serve(create_app(settings, engine=engine))
    yield SimpleNamespace(url=url, settings=settings, engine=engine)


def test_sources_show_the_outlet_and_date_of_each_cited_article(news_app, browser):  # noqa: F811
    from playwright.sync_api import expect

    from rag.web.handlers import outlet_choices
    from rag.web.render import day

    page = _open(browser, news_app)
    page.get_by_text("Settings", exact=True).click()
    page.locator("#outlets input").click()  # the outlet filter offers the index's outlets
    options = page.get_by_role("option")
    expect(options).to_have_count(len(outlet_choices(news_app.engine)))
    options.filter(has_text="Valley Post").click()
    page.keyboard.press("Escape")

    _ask(page, "How many people were killed in the Valdena landslide?")
    answer = _answers(page).last
    assert answer.get_attribute("class") == "rag-answer", answer.inner_text()
    blocks = page.locator("#sources-panel .src-block")
    assert blocks.count() >= 1
    for i in range(blocks.count()):
        info = news_app.engine.index.docs[blocks.nth(i).get_attribute("data-doc")]
        assert info.source == "Valley Post"  # only the chosen outlet was searched
        meta = blocks.nth(i).locator(".src-meta")
        expect(meta.locator(".src-outlet")).to_have_text(info.source)
        expect(meta.locator(".src-date")).to_have_text(day(date.fromisoformat(info.published)))
        expect(meta.locator(".src-author")).to_have_text(f"by {info.author}")
    tooltip = answer.locator("a.cite-badge").first.get_attribute("title")
    assert "Valley Post" in tooltip and "March 3, 2025" in tooltip and "Mira Halloran" in tooltip
    OUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUT / "ui-news-sources.png"), full_page=True)
    page.close()


def test_figures_that_differ_and_a_timeline_are_shown_with_outlets_and_dates(news_app, browser):  # noqa: F811
    page = _open(browser, news_app)
    _ask(page, "How many people died in the Valdena landslide?")
    rows = page.locator("#chat table.rag-figures tbody tr")
    assert rows.count() == 3, page.locator("#chat").inner_text()
    cells = [[rows.nth(i).locator("td").nth(j).inner_text() for j in (1, 2, 3)] for i in range(3)]
    assert cells == [["23", "The Harbour Courier", "March 6, 2025"], ["19", "Northern Ledger", "March 4, 2025"],
                     ["12", "Valley Post", "March 3, 2025"]]  # newest first, each with its outlet and date
    assert "23" in _answers(page).last.inner_text().split("Figures differ")[0]  # the newest figure leads

    page.close()
    page = _open(browser, news_app)  # a new conversation: the timeline question is no follow-up
    _ask(page, "What was the timeline of the Valdena landslide?")
    page.wait_for_selector("#chat ol.rag-timeline li", timeout=ANSWER_TIMEOUT_MS)
    items = page.locator("#chat ol.rag-timeline").last.locator("li")
    whens = [items.nth(i).locator(".rag-when").inner_text() for i in range(items.count())]
    assert whens[:3] == ["March 3, 2025", "March 4, 2025", "March 6, 2025"], whens
    outlets = [items.nth(i).locator(".rag-outlet").inner_text() for i in range(3)]
    assert outlets == ["(Valley Post)", "(Northern Ledger)", "(The Harbour Courier)"]
    OUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUT / "ui-news-figures-timeline.png"), full_page=True)
    page.close()
