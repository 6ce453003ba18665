"""News-aware answers over the fixture corpus (tests/data/news/corpus: one landslide told by three
outlets on three dates as 12, 19 and 23 dead, and a wire story in two outlets), with a fake
embedder and a scripted fake model: what the question's words mean, dates and outlets as
filters, figures that differ by source, "as of" answers, timelines and questions about the
order of reports."""

from __future__ import annotations

import re
import shutil
from datetime import date
from pathlib import Path

import pytest

from rag.config import Settings
from rag.engine import Engine
from rag.intent import read
from rag.prompt import read_back

from .conftest import FakeLLM

NEWS = Path(__file__).resolve().parent / "data" / "news" / "corpus"
TOLL = "How many people died in the Valdena landslide?"


@pytest.fixture
def news(tmp_path: Path) -> Settings:
    corpus = tmp_path / "news"
    shutil.copytree(NEWS, corpus)
    return Settings(corpus_dir=corpus, index_dir=tmp_path / "index", cache_dir=tmp_path / "cache",
                    min_relevance=0.0, second_look=0.0)


def engine(settings: Settings, fake_embedder, *replies) -> Engine:
    return Engine(settings, llm=FakeLLM(list(replies)), embedder=fake_embedder)


def cite(figure: str, claim: str = "The landslide killed {} people"):
    """A scripted model that states ``claim`` citing the first shown passage holding ``figure``."""
    def reply(messages):
        for n, (_, text) in enumerate(read_back(messages)[0], start=1):
            if figure in text:
                return f"{claim.format(figure)} [{n}]."
        return "The articles don't say."
    return reply


# --- reading the question ----------------------------------------------------------------------


@pytest.mark.parametrize("question, outlets", [
    ("Did The Age report it before the Fortune article?", [{"The Age"}, {"Fortune"}]),
    ("Did Britney have less control at the age of 16?", []),  # "the age" is no outlet
    ("What did the Independent say?", []),  # names are matched as written
    ("What did The Independent say?", [{"The Independent - Sports", "The Independent - Life and Style"}]),
])
def test_outlets_are_read_as_written(question, outlets):
    sources = ["The Age", "Fortune", "The Independent - Sports", "The Independent - Life and Style"]
    assert [set(o) for o in read(question, sources).outlets] == outlets


@pytest.mark.parametrize("question, since, until", [
    ("What did Reuters say before October 30?", None, date(2024, 10, 29)),
    ("What happened after October 5?", date(2024, 10, 6), None),
    ("What was reported between Oct 1 and Oct 5, 2024?", date(2024, 10, 1), date(2024, 10, 5)),
    ("What happened last week?", date(2024, 10, 26), date(2024, 11, 1)),
    ("What did articles published in October 2024 say?", date(2024, 10, 1), date(2024, 10, 31)),
    ("What did Reuters say before December 30?", None, date(2023, 12, 29)),  # no year: the last one before today
])
def test_dates_in_the_question_resolve_against_today(question, since, until):
    window = read(question, ["Reuters"], date(2024, 11, 1)).window
    assert (window.since, window.until) == (since, until)


def test_two_reports_named_by_their_days_are_both_searched_and_compared():
    question = "Has the mayor's plan as reported by The Age remained the same between the article published on " \
               "2023-10-20 and the one on 2023-11-03?"
    intent = read(question, ["The Age"], date(2023, 12, 31))
    assert (intent.window.since, intent.window.until) == (date(2023, 10, 20), date(2023, 11, 3))
    assert intent.multi_part  # one outlet, two dated reports

def test_words_that_are_not_dates_set_no_window():
    assert read("What did Business Today report in the 2019 season?", ["Business Today"], date(2024, 1, 1)).window is None
    assert read("Who won the 2019 Tour de France?", [], date(2024, 1, 1)).years == {2019}


# --- dates and outlets narrow the search ------------------------------------------------------------


def test_a_date_in_the_question_narrows_the_search_and_is_reported(news, fake_embedder):
    answer = engine(news, fake_embedder, cite("12")).ask("How many people had died in the landslide before March 4?")
    assert answer.passages and all(p.meta.published <= date(2025, 3, 3) for p in answer.passages)
    assert "12" in answer.text and answer.window and answer.window.until == date(2025, 3, 3)


def test_since_and_until_change_the_answer(news, fake_embedder):
    early = engine(news, fake_embedder, cite("12"), cite("19")).ask(TOLL, until="2025-03-03")
    late = engine(news, fake_embedder, cite("23")).ask(TOLL, since=date(2025, 3, 5))
    assert "12" in early.text and "19" not in early.text and "23" not in early.text
    assert "23" in late.text and {c.source for c in late.citations} == {"The Harbour Courier"}


def test_an_answer_must_cite_the_outlet_the_question_names(news, fake_embedder):
    asked = "According to the Northern Ledger, how many people died in the landslide?"
    wrong = engine(news, fake_embedder, cite("12")).ask(asked)  # Valley Post's figure
    assert wrong.declined
    right = engine(news, fake_embedder, cite("19")).ask(asked)
    assert not right.declined and right.citations[0].source == "Northern Ledger"


# --- figures that differ, "as of", timelines -----------------------------------------------------


def test_differing_figures_are_each_listed_with_outlet_and_date(news, fake_embedder):
    landslide = ["landslide-valley-post", "landslide-northern-ledger", "landslide-harbour-courier"]
    answer = engine(news, fake_embedder, cite("19")).ask(TOLL, k=9, doc_ids=landslide)  # the fake embedder ranks loosely
    rows = {(f.value, f.source, f.published) for f in answer.disagreements}
    assert rows == {("12", "Valley Post", date(2025, 3, 3)), ("19", "Northern Ledger", date(2025, 3, 4)),
                    ("23", "The Harbour Courier", date(2025, 3, 6))}
    by_marker = {c.marker: c for c in answer.citations}
    for f in answer.disagreements:
        assert f.value in by_marker[f.marker].text and f"{f.value} (" in answer.text


def test_a_changing_fact_is_answered_as_of_its_newest_source(news, fake_embedder):
    answer = engine(news, fake_embedder, cite("23")).ask("What is the latest death toll of the Valdena landslide?")
    assert answer.text.startswith("As of March 6, 2025 (The Harbour Courier): ")
    assert answer.passages[0].meta.published == date(2025, 3, 6)  # "latest": the newest first


def test_a_timeline_lists_dated_cited_events_in_order_without_the_model(news, fake_embedder):
    e = engine(news, fake_embedder)
    answer = e.ask("Timeline of the Valdena landslide death toll")
    days = [t.published for t in answer.timeline]
    assert days == sorted(days) and len(days) >= 3 and not e.llm.calls
    by_marker = {c.marker: c for c in answer.citations}
    for t in answer.timeline:
        assert " ".join(by_marker[t.marker].text.split()).find(t.text[:40]) >= 0
        assert by_marker[t.marker].published == t.published


# --- questions about several reports -----------------------------------------------------------------


@pytest.mark.parametrize("word, expected", [("before", "Yes."), ("after", "No.")])
def test_the_order_of_two_reports_is_decided_by_their_dates(news, fake_embedder, word, expected):
    e = engine(news, fake_embedder, "Yes", "Yes")  # each report's passage supports its part
    answer = e.ask(f"Did the Valley Post report the landslide deaths {word} The Harbour Courier reported the final toll?")
    assert answer.text.startswith(expected)
    assert [c.source for c in answer.citations] == ["Valley Post", "The Harbour Courier"]
    assert "March 3, 2025" in answer.text and "March 6, 2025" in answer.text


def test_a_part_its_passage_does_not_support_makes_the_answer_no(news, fake_embedder):
    e = engine(news, fake_embedder, "Yes", "No")
    answer = e.ask("Does the Valley Post say 12 people died, while the Northern Ledger says 40 people died?")
    assert answer.text.startswith("No.") and len(answer.citations) == 2


def test_a_wire_copy_counts_once_and_credits_every_outlet_that_carried_it(news, fake_embedder):
    question = "How many residents of the Quarry Lane district were evacuated?"
    answer = engine(news, fake_embedder, cite("400", "About {} residents were evacuated")).ask(question, k=6)
    wire = {"evacuation-wire-coastline-daily", "evacuation-wire-tessel-times"}
    leads = [p for p in answer.passages if p.chunk.doc_id in wire and "About 400 residents" in p.text]
    assert len(leads) == 1  # the same story's lead is shown once, not once per outlet
    assert set(leads[0].copies) == wire - {leads[0].chunk.doc_id}
    [c] = [c for c in answer.citations if "400" in c.text]
    assert {c.source, *c.also} == {"Coastline Daily", "The Tessel Times"}


def test_every_passage_of_a_wire_story_credits_both_outlets_however_their_chunks_were_cut(news, fake_embedder):
    wire = ["evacuation-wire-coastline-daily", "evacuation-wire-tessel-times"]
    answer = engine(news, fake_embedder).ask("How far did the slope move?", k=6, doc_ids=wire)
    [slope] = [p for p in answer.passages if "9 centimetres" in p.text]  # shown once, not once per outlet
    assert set(slope.copies) == set(wire) - {slope.chunk.doc_id}
    sentences = [" ".join(s.split()) for p in answer.passages for s in re.split(r"(?<=[.!?])\s+", p.text)]
    assert len(sentences) == len(set(sentences))  # no sentence of the story is shown twice


def test_an_older_figure_is_never_the_lead_when_a_newer_report_revised_it(news, fake_embedder):
    landslide = ["landslide-valley-post", "landslide-northern-ledger", "landslide-harbour-courier"]
    answer = engine(news, fake_embedder, cite("19")).ask(TOLL, k=9, doc_ids=landslide)
    lead = answer.text.split(" Figures differ by source:")[0]
    assert lead.startswith("As of March 6, 2025 (The Harbour Courier): ") and "23" in lead and "19" not in lead
    marker = int(lead.rsplit("[", 1)[1].rstrip("].").strip())
    assert "23" in {c.marker: c for c in answer.citations}[marker].text


def test_without_the_rule_the_model_figure_stays_the_lead(news, fake_embedder):
    landslide = ["landslide-valley-post", "landslide-northern-ledger", "landslide-harbour-courier"]
    settings = news.model_copy(update={"rules_off": frozenset({"newest_figure"})})
    answer = engine(settings, fake_embedder, cite("19")).ask(TOLL, k=9, doc_ids=landslide)
    assert answer.text.startswith("The landslide killed 19 people")


def test_the_main_clause_of_a_question_about_order_must_hold_as_well_as_the_order(news, fake_embedder):
    e = engine(news, fake_embedder, "No")  # the Valley Post's passage does not support its part
    answer = e.ask("Did the Valley Post report the landslide deaths before The Harbour Courier reported the final toll?")
    assert answer.text.startswith("No.") and len(e.llm.calls) == 1  # the clause after "before" only dates a report


@pytest.mark.parametrize("reply, expected", [("Yes", "Yes."), ("No", "No.")])
def test_whether_one_outlet_stayed_consistent_compares_two_of_its_articles(news, fake_embedder, reply, expected):
    e = engine(news, fake_embedder, reply)
    answer = e.ask("Has the Northern Ledger's reporting remained consistent after March 2, 2025?")
    assert answer.text.startswith(expected)
    assert [c.source for c in answer.citations] == ["Northern Ledger", "Northern Ledger"]
    assert len({c.doc_id for c in answer.citations}) == 2  # two of its articles, both from March 2 on
    assert "Passage A" in e.llm.calls[0][-1]["content"] and "Passage B" in e.llm.calls[0][-1]["content"]


def test_a_question_relating_reports_includes_the_days_it_names():
    from rag.compare import parts

    question = ("Has the approach of sportsbooks to odds, as reported by Sporting News after October 4, 2023, "
                "and before November 1, 2023, remained consistent?")
    found = parts(question, ["Sporting News"], date(2023, 12, 31))
    assert [(p.since, p.until) for p in found] == [(date(2023, 10, 4), date(2023, 11, 1))] * 2


def _passage(doc_id: str, text: str):
    from rag.chunking import Chunk
    from rag.retrieve import Passage

    return Passage(Chunk(doc_id, 0, 0, len(text), text), doc_id, Path(f"{doc_id}.txt"), 1.0, 1.0)


def test_a_when_answer_takes_the_exact_date_its_passages_give():
    from rag.news import CITE_HERE, sharpen_dates

    cited = _passage("a", "OpenAI was founded in 2015 by a group of researchers.")
    exact = _passage("b", "OpenAI Inc was founded in December 2015 by Elon Musk and Sam Altman.")
    other = _passage("c", "OpenAI released a chatbot in November 2022.")
    question, text = "When was OpenAI founded?", "OpenAI was founded in 2015 [1]."
    assert sharpen_dates(question, text, [cited, exact]) == ("OpenAI was founded in December 2015 [1].", None)
    sharper, lender = sharpen_dates(question, text, [cited], [cited, other, exact])
    assert lender is exact and sharper == f"OpenAI was founded in December 2015{CITE_HERE} [1]."
    # a shown passage about something else, or a question not asking "when", lends nothing
    assert sharpen_dates(question, text, [cited], [cited, other]) == (text, None)
    assert sharpen_dates("Who founded OpenAI?", text, [cited], [exact]) == (text, None)


def test_a_figure_in_a_sentence_that_refers_back_is_read_with_the_one_before():
    from rag.news import differing_figures

    said = _passage("a", "The US estimates around 10,000 North Korean troops are currently in Russia. "
                         "However, Seoul and its allies believe the number has increased to 11,000. "
                         "Seoul also sent 400 diplomats abroad.")
    question = "How many North Korean troops are in Russia?"
    figures = [s.value for s in differing_figures(question, "About 10,000 [1].", [said])]
    assert figures == ["10,000", "11,000"]  # not 400: that sentence neither is about the troops nor refers back


def test_a_measure_is_no_count_of_what_was_asked():
    from rag.news import differing_figures

    passages = [_passage("a", "At least 3,000 North Korean troops are in Kursk, where Ukraine holds 600 sq km."),
                _passage("b", "As many as 8,000 North Korean troops had been deployed to Kursk.")]
    question = "How many North Korean troops are in Kursk?"
    assert [s.value for s in differing_figures(question, "3,000 [1].", passages)] == ["3,000", "8,000"]
