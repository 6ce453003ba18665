"""The web UI without a browser: rendering (rag.web.render, no Gradio), the handlers over
an Engine with a fake embedder and a scripted fake LLM, example questions, and the launch
checks. The browser tests are in test_ui.py and test_web_browser.py."""

from __future__ import annotations

import json
import re
import shutil
from datetime import date
from pathlib import Path

import pytest

from rag.answer import Answer, Citation, Delta, Figure, Final, Status, TimelineEntry, Timings, Window
from rag.config import Settings
from rag.engine import Engine
from rag.errors import InputError, RagError
from rag.prompt import read_back
from rag.web.render import (Context, Pending, Turn, badge, chat_messages, inert, render_answer, render_declined,
                            render_disagreements, render_pending, render_sources, render_timeline, render_turn,
                            render_window)

from tests.conftest import SEEDS, FakeLLM
from tests.pdf_maker import make_pdf

LIVE = ("<script", "<img", "<iframe", "onerror=", "onclick=", 'href="http', "](http", "javascript:", "<strong", "<em")


def cite(marker: int = 1, **meta) -> Citation:
    return Citation(marker, "flood", "Flood in <b>Valdena</b>", Path("/nowhere/flood.txt"), 10, 40,
                    "About 12 people died, police said.", 0.71, **meta)


def answer(text: str, citations: list[Citation], **news) -> Answer:
    return Answer("How many died?", text, citations, [], not citations, Timings(0.1, 0.2, 0.3), **news)


def assert_inert(html: str) -> None:
    lowered = html.lower()
    for live in LIVE:
        assert live not in lowered, f"{live!r} is live in {html}"
    # every link is one of our badges, pointing inside the page
    assert all(re.fullmatch(r'<a class="cite-badge" href="#src-(t\d+-)?\d+" title="[^"<>]*">', a)
               for a in re.findall(r"<a [^>]*>", html)), html


# --- rendering -----------------------------------------------------------------------------


def test_model_text_is_escaped_before_badges_are_added():
    evil = 'See <img src=x onerror=alert(1)> and [x](javascript:alert(1)) **b** $$x$$ [1] [7].\nNext'
    html = render_answer(evil, [cite(1)])
    assert "<img" not in html and "](" not in html and "**" not in html and "$$" not in html
    assert html.count('class="cite-badge"') == 1 and 'href="#src-1"' in html
    assert "&#91;7&#93;" in html  # a marker with no citation stays plain text
    assert "<br>" in html
    assert 'href="#src-t2-1"' in render_answer("Fact [1].", [cite(1)], turn=2)
    assert "rag-declined" in render_declined("The articles don't say.")
    assert inert("a<b>&c") == "a&#60;b&#62;&#38;c"
    assert_inert(html)


def test_a_badge_tooltip_names_outlet_date_author_url_and_page():
    full = badge(cite(3, source="Valley Post", published=date(2025, 3, 3), author="Mira Halloran",
                      url="https://valleypost.example/a?b=1&c=<x>", page=2))
    title = re.search(r'title="([^"]*)"', full).group(1)
    import html as html_lib

    assert html_lib.unescape(title) == ("Source 3: Flood in <b>Valdena</b> · Valley Post · March 3, 2025 · "
                                        "by Mira Halloran · https://valleypost.example/a?b=1&c=<x> · page 2")
    assert "<b" not in full and "://" not in full  # the URL is inert text in an attribute, never a link
    bare = re.search(r'title="([^"]*)"', badge(cite(1))).group(1)
    assert html_lib.unescape(bare) == "Source 1: Flood in <b>Valdena</b>"  # nothing made up when unknown
    assert_inert(full)


def test_the_sources_panel_shows_the_article_metadata_as_text():
    c = cite(1, source="The Harbour Courier", published=date(2025, 3, 6), author="Priya <i>Natarajan</i>",
             url="javascript:alert(1)", page=4, also=("Coastline Daily", "The Tessel Times"))
    turn = Turn("How many died?", answer("23 died [1].", [c]),
                contexts={1: Context("Before. ", c.text, " After <script>alert(2)</script>")})
    html = render_sources([turn])
    for shown in ('<span class="src-outlet">The Harbour Courier</span>', '<span class="src-date">March 6, 2025',
                  "by Priya &#60;i&#62;Natarajan", '<span class="src-page">page 4</span>',
                  '<span class="src-also">also carried by Coastline Daily, The Tessel Times</span>',
                  '<mark class="cite-mark">About 12 people died'):
        assert shown in html, shown
    assert 'id="src-1"' in html and "&#60;script&#62;alert" in html
    assert_inert(html)
    # an earlier turn's blocks get their own ids, folded away
    two = render_sources([turn, Turn("Who?", answer("The articles don't say.", []))])
    assert 'id="src-t0-1"' in two and "<details" in two and "Nothing was cited" in two


def test_disagreements_are_a_table_with_badges():
    citations = [cite(1, source="Valley Post"), cite(2, source="Northern Ledger")]
    figures = [Figure("dead", "12", "Valley Post", date(2025, 3, 3), 1),
               Figure("dead", "19", "Northern <b>Ledger</b>", None, 2),
               Figure("dead", "23", None, date(2025, 3, 6), 9)]  # a marker no citation has
    html = render_disagreements(figures, citations)
    rows = re.findall(r"<tr>(.*?)</tr>", html)
    assert len(rows) == 4 and "<th>Quantity</th>" in rows[0]
    assert re.search(r"<td>dead</td><td>12</td><td>Valley Post</td><td>March 3, 2025</td><td><a class=\"cite-badge\" "
                     r"href=\"#src-1\"", rows[1])
    assert "<td></td><td><a" in rows[2] and "&#60;b&#62;" in rows[2]  # no date: an empty cell, never a guess
    assert "&#91;9&#93;" in rows[3] and "cite-badge" not in rows[3]
    assert render_disagreements([], citations) == ""
    assert_inert(html)
    # shown under the answer of a turn
    turn = Turn("How many died?", answer("Between 12 [1] and 19 [2].", citations, disagreements=figures[:2]))
    message = chat_messages([turn])[1]["content"]
    assert message.index("rag-answer") < message.index("rag-figures")


def test_a_timeline_is_a_dated_list_in_order():
    citations = [cite(1), cite(2)]
    entries = [TimelineEntry(date(2025, 3, 3), "A hillside gave way.", "Valley Post", 1),
               TimelineEntry(date(2025, 3, 6), "The toll rose to <23>.", None, 2),
               TimelineEntry(None, "Aid was pledged.", "Northern Ledger", 2)]
    html = render_timeline(entries, citations)
    items = re.findall(r"<li>(.*?)</li>", html)
    assert html.startswith('<ol class="rag-timeline">') and len(items) == 3
    assert items[0].startswith('<span class="rag-when">March 3, 2025</span> A hillside gave way&#46;')
    assert "(Valley Post)" in items[0] and 'href="#src-1"' in items[0]
    assert "&#60;23&#62;" in items[1] and "rag-outlet" not in items[1]
    assert items[2].startswith('<span class="rag-when">undated</span>')
    assert render_timeline([], citations) == ""
    assert_inert(html)
    # in the chat, the list replaces the answer's text, which is the same entries written out
    prose = "March 3, 2025 (Valley Post): A hillside gave way [1]. March 6, 2025: The toll rose to <23> [2]."
    message = render_turn(Turn("Timeline of the landslide?", answer(prose, citations, timeline=entries)))
    assert message == f'<div class="rag-answer">{html}</div>'


def test_the_window_line_says_which_dates_were_searched():
    both = render_window(Window(date(2025, 3, 1), date(2025, 3, 7), "last week"))
    assert "from March 1, 2025 to March 7, 2025" in both and "last week" in both
    assert "on or after March 1, 2025" in render_window(Window(date(2025, 3, 1), None, "since March"))
    assert "on or before October 29, 2025" in render_window(Window(None, date(2025, 10, 29), "<b>before</b>"))
    assert "&#60;b&#62;" in render_window(Window(None, date(2025, 10, 29), "<b>before</b>"))
    assert render_window(None) == "" and render_window(Window(None, None, "")) == ""
    declined = render_turn(Turn("q", answer("The articles don't say.", [], window=Window(None, date(2025, 1, 1),
                                                                                           "before 2025"))))
    assert "rag-declined" in declined and "on or before January 1, 2025" in declined


def test_the_streaming_message_shows_a_status_line_under_the_first_looks_text():
    html = render_pending(Pending("q", "The articles don't <say>.", "Checking the passages again…"))
    text, status = html.split('<div class="rag-status">')
    assert "The articles don&#39;t &#60;say&#62;&#46;" in text and "Checking the passages again" in status
    assert "rag-status" not in render_pending(Pending("q", "Partial"))
    assert "Searching the articles" in render_pending(Pending("q"))
    messages = chat_messages([Turn("Earlier?", error="boom <b>")], Pending("Now?", "Part", "Checking…"))
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant"]
    assert "rag-error" in messages[1]["content"] and "&#60;b&#62;" in messages[1]["content"]
    assert "rag-status" in messages[3]["content"]
    assert_inert("".join(m["content"] for m in messages))


# --- the handlers over a real Engine with fake models ------------------------------------


RECRUIT_Q = "How many people does the army plan to recruit, Lytvynenko told parliament?"


def quote_passage_one(messages) -> str:
    """The quote look of a model: copies the first sentence of passage [1] that states a number."""
    _, body = read_back(messages)[0][0]
    sentence = next(s for s in re.split(r"(?<=[.!?])\s+", body) if re.search(r"\d", s))
    return sentence.rstrip(".") + " [1]."


@pytest.fixture
def handlers(settings, fake_embedder):
    from rag.web.handlers import Handlers

    engine = Engine(settings.model_copy(update={"second_look": 0.1}),
                    llm=FakeLLM(["The articles don't say.", quote_passage_one]), embedder=fake_embedder)
    return Handlers(engine.settings, engine)


def test_a_later_looks_text_is_never_shown_only_its_status_then_the_verified_answer(handlers):
    states = list(handlers.states(RECRUIT_Q, [], None, None, {}))
    pending, turn = states[:-1], states[-1]
    assert all(isinstance(s, Pending) for s in pending) and isinstance(turn, Turn)
    assert pending[0] == Pending(RECRUIT_Q)
    first = "The articles don't say."
    assert all(first.startswith(p.partial) for p in pending), [p.partial for p in pending]
    assert any(p.partial == first and p.status == "Checking the passages again…" for p in pending)
    assert "160,000" in turn.answer.text and not turn.answer.declined
    assert turn.contexts[1].span == turn.answer.citations[0].text  # the article around it, read from the file
    assert len(handlers.engine().llm.calls) == 2  # the quote look really ran


def test_the_ui_ignores_any_text_after_a_status(settings):
    """Whatever the pipeline emits, a later look's text does not reach the page."""
    from rag.web.handlers import Handlers

    final = answer("The articles don't say.", [])

    class Scripted:
        def events(self, question, history, **options):
            yield from [Delta("The articles "), Delta("don't say."), Status("Checking…"), Delta("RAW QUOTE"),
                        Final(final)]

    states = list(Handlers(settings, Scripted()).states("q", [], None, None, {}))
    assert not any("RAW" in s.partial for s in states[:-1])
    assert states[-2] == Pending("q", "The articles don't say.", "Checking…") and states[-1].answer is final


def test_respond_passes_the_time_and_outlet_filters_and_names_a_bad_date(settings, fake_embedder):
    from rag.web.handlers import Handlers

    engine = Engine(settings, llm=FakeLLM(), embedder=fake_embedder)
    seen: list[dict] = []
    real = engine.events
    engine.events = lambda q, h, **kw: seen.append(kw) or real(q, h, **kw)  # type: ignore[method-assign]
    h = Handlers(settings, engine)
    *_, last = h.respond(" Who? ", [], 3, 0.0, ["a", "b"], ["a", "b", "c"], " 2025-03-01 ", "", ["Valley Post"])
    assert seen[-1] == {"doc_ids": ["a", "b"], "k": 3, "temperature": 0.0, "since": "2025-03-01", "until": None,
                        "sources": ["Valley Post"]}
    *_, last = h.respond("Who?", [], 4, 0.0, ["a"], ["a"], "", "", [])
    assert seen[-1]["doc_ids"] is None and seen[-1]["sources"] is None and seen[-1]["since"] is None
    *_, last = h.respond("Who?", [], 4, 0.0, None, None, "2025-13-01", "", None)
    turn = last[3][-1]
    assert turn.answer is None and "since='2025-13-01' is not a date: give it as YYYY-MM-DD" in turn.error
    assert "2025&#45;13&#45;01" in last[1][-1]["content"]  # shown in the chat, inert


def test_ask_api_json_carries_the_metadata_and_news_fields():
    from rag.web.handlers import answer_dict

    c = cite(1, source="Valley Post", published=date(2025, 3, 3), author="Mira Halloran", url="https://v.example/a",
             page=None)
    a = answer("12 died [1].", [c], disagreements=[Figure("dead", "12", "Valley Post", date(2025, 3, 3), 1)],
               timeline=[TimelineEntry(None, "It fell.", None, 1)], window=Window(date(2025, 3, 1), None, "in March"))
    data = json.loads(json.dumps(answer_dict(a)))
    [cd] = data["citations"]
    assert cd == {"marker": 1, "doc_id": "flood", "title": "Flood in <b>Valdena</b>", "file": "/nowhere/flood.txt",
                  "start": 10, "end": 40, "text": c.text, "score": 0.71, "source": "Valley Post", "date": "2025-03-03",
                  "author": "Mira Halloran", "url": "https://v.example/a", "page": None, "also": []}
    assert data["disagreements"] == [{"quantity": "dead", "value": "12", "source": "Valley Post",
                                      "date": "2025-03-03", "marker": 1}]
    assert data["timeline"] == [{"date": None, "text": "It fell.", "source": None, "marker": 1}]
    assert data["window"] == {"since": "2025-03-01", "until": None, "phrase": "in March"}
    assert answer_dict(answer("No.", []))["window"] is None


def test_uploads_take_every_format_the_core_takes_and_name_what_they_refuse(settings, fake_embedder, tmp_path):
    from rag.web.handlers import MAX_UPLOAD_BYTES, Handlers

    h = Handlers(settings, Engine(settings, llm=FakeLLM(), embedder=fake_embedder))
    up = tmp_path / "uploads"
    up.mkdir()
    files = {
        "harbour.html": "<html><head><title>Harbour</title></head><body><article><p>The new harbour wall in "
                        "Quenby cost 41 million crowns, the council said on Monday.</p></article></body></html>",
        "report.pdf": make_pdf([["The Quenby ferry carried 12,400 passengers in its first month."]]),
        "notes.docx": b"PK\x03\x04",
        "huge.txt": "Words and more words. " * (MAX_UPLOAD_BYTES // 20),
        "empty.md": "",
    }
    for name, data in files.items():
        (up / name).write_bytes(data if isinstance(data, bytes) else data.encode())
    before = set(h.engine().index.docs)
    result, status, docs, cleared, offered, outlets = h.add_files([str(up / n) for n in files], None, None)
    assert {"harbour", "report"} == set(h.engine().index.docs) - before
    assert re.search(r"upload-ok.*Added harbour&#46;html", result) and re.search(r"upload-ok.*Added report", result)
    for name, why in (("notes&#46;docx", "only &#46;txt, &#46;md, &#46;html and &#46;pdf files can be added"),
                      ("huge&#46;txt", "it is larger than 2 MB"), ("empty&#46;md", "it is empty")):
        assert re.search(rf'upload-err">&#10007; {name} was not added: {why}', result), (name, result)
    assert "7 documents" in status and cleared is None and {"harbour", "report"} <= set(offered)
    assert sorted(p.name for p in settings.corpus_dir.iterdir() if p.stem in {"harbour", "report", "notes"}) == \
        ["harbour.html", "report.pdf"]


# --- example questions, create_app, launch ------------------------------------------------


def test_example_questions_come_from_the_corpus_folder_or_a_setting(tmp_path):
    from rag.ingest import load_corpus
    from rag.web.handlers import example_questions

    shutil.copytree(SEEDS, tmp_path / "seeds")
    seeds = Settings(corpus_dir=tmp_path / "seeds")
    assert example_questions(seeds) == json.loads((SEEDS / "examples.json").read_text())
    assert len(example_questions(seeds)) == 4
    assert all(d.path.suffix == ".txt" for d in load_corpus(seeds.corpus_dir))  # not taken for an article
    assert example_questions(Settings(corpus_dir=tmp_path)) == []  # no file, no buttons
    own = tmp_path / "mine.json"
    own.write_text('["Only this?"]')
    assert example_questions(Settings(corpus_dir=tmp_path, ui_examples=own)) == ["Only this?"]
    for bad in ('{"q": 1}', "[1, 2]", '["ok", ""]', "[oops"):
        own.write_text(bad)
        with pytest.raises(InputError, match=re.escape(str(own))):
            example_questions(Settings(corpus_dir=tmp_path, ui_examples=own))
    with pytest.raises(InputError, match="could not be read"):
        example_questions(Settings(corpus_dir=tmp_path, ui_examples=tmp_path / "missing.json"))


def test_create_app_loads_no_model_and_shows_the_examples(settings, tmp_path):
    import gradio as gr

    from rag import engine
    from rag.web.layout import create_app

    (settings.corpus_dir / "examples.json").write_text('["First question?", "Second <b>question</b>?"]')
    demo = create_app(settings)
    assert settings not in engine._engines
    buttons = [b.value for b in demo.blocks.values() if isinstance(b, gr.Button) and "example-q" in b.elem_classes]
    assert buttons == ["First question?", "Second <b>question</b>?"]
    bare = create_app(Settings(corpus_dir=tmp_path / "none", index_dir=tmp_path / "i"))
    assert not any("example-q" in (getattr(b, "elem_classes", None) or []) for b in bare.blocks.values())


@pytest.fixture
def launched(monkeypatch):
    import gradio as gr

    seen: list[dict] = []
    monkeypatch.setattr(gr.Blocks, "launch", lambda self, **kw: seen.append(kw))
    for var in ("RAG_UI_PASSWORD", "RAG_UI_ALLOW_PUBLIC", "RAG_UI_HOST", "RAG_UI_PORT", "GRADIO_SERVER_NAME",
                "GRADIO_SERVER_PORT"):
        monkeypatch.delenv(var, raising=False)
    return seen


def test_launch_binds_localhost_and_needs_a_password_to_go_public(launched, tmp_path):
    from rag.web.serve import launch

    s = Settings(corpus_dir=tmp_path, index_dir=tmp_path / "index")
    launch(s)
    assert launched[-1]["server_name"] == "127.0.0.1" and launched[-1]["server_port"] == 7860
    assert launched[-1]["share"] is False and launched[-1]["auth"] is None and launched[-1]["ssr_mode"] is False
    assert launched[-1]["max_file_size"] == 2 * 1024 * 1024 and launched[-1]["allowed_paths"] == []
    for settings, share in ((s.model_copy(update={"ui_host": "0.0.0.0"}), False), (s, True)):
        with pytest.raises(RagError, match="RAG_UI_PASSWORD"):
            launch(settings, share=share)
    assert len(launched) == 1
    launch(Settings(corpus_dir=tmp_path, ui_host="0.0.0.0", ui_password="s3cret"))
    assert launched[-1]["server_name"] == "0.0.0.0" and launched[-1]["auth"] == ("rag", "s3cret")
    launch(Settings(corpus_dir=tmp_path, ui_host="0.0.0.0", ui_allow_public=True))
    assert launched[-1]["auth"] is None


def test_the_address_comes_from_rag_then_gradio_variables_and_a_bad_port_is_one_line(launched, monkeypatch,
                                                                                     capsys):
    from rag.cli import main

    monkeypatch.setenv("GRADIO_SERVER_NAME", "::1")
    monkeypatch.setenv("GRADIO_SERVER_PORT", "8001")
    assert (Settings().ui_host, Settings().ui_port) == ("::1", 8001)
    monkeypatch.setenv("RAG_UI_HOST", "127.0.0.2")
    monkeypatch.setenv("RAG_UI_PORT", "8002")
    assert (Settings().ui_host, Settings().ui_port) == ("127.0.0.2", 8002)
    assert Settings(ui_port=9000).ui_port == 9000
    monkeypatch.setenv("RAG_UI_PASSWORD", "hunter2")
    assert "hunter2" not in repr(Settings()) and Settings().ui_password.get_secret_value() == "hunter2"
    monkeypatch.setenv("RAG_UI_PASSWORD", " ")
    assert Settings().ui_password is None  # blank is no password, not the empty one
    for bad in ("abc", "0", "70000"):
        assert main(["ui", "--port", bad]) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"RAG_UI_PORT / GRADIO_SERVER_PORT='{bad}'" in err, err
    monkeypatch.setenv("GRADIO_SERVER_PORT", "http")
    monkeypatch.delenv("RAG_UI_PORT")
    with pytest.raises(InputError, match="GRADIO_SERVER_PORT='http'"):
        Settings()
    assert launched == []
