"""The news features end to end with the real embedder, the real GGUF model and a real FAISS index,
over the fixture corpus (tests/data/news/corpus): one landslide told by three outlets on three dates
as 12, 19 and 23 dead, and one agency story carried by two outlets."""

from __future__ import annotations

import re
import shutil
from datetime import date
from pathlib import Path

import pytest

from rag import ask
from rag.config import Settings
from rag.evaluate import markers_resolve

pytestmark = pytest.mark.slow

NEWS = Path(__file__).resolve().parent / "data" / "news" / "corpus"
TOLL = "How many people died in the Valdena landslide?"
REPORTS = {"12": ("Valley Post", date(2025, 3, 3)), "19": ("Northern Ledger", date(2025, 3, 4)),
           "23": ("The Harbour Courier", date(2025, 3, 6))}


@pytest.fixture(scope="module")
def news(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    base = tmp_path_factory.mktemp("news")
    shutil.copytree(NEWS, base / "corpus")
    return Settings(corpus_dir=base / "corpus", index_dir=base / "index")


def figures_in(text: str) -> set[str]:
    return {n for n in REPORTS if f"{n} " in text or f"{n}," in text or f"{n}." in text}


def lead(text: str) -> str:
    return text.split(" Figures differ by source:")[0]


def test_the_latest_figure_leads_with_its_date_and_outlet_and_every_report_is_listed(news):
    answer = ask(TOLL, settings=news)
    assert markers_resolve(answer) and not answer.declined
    assert figures_in(lead(answer.text)) == {"23"}, answer.text
    by_marker = {c.marker: c for c in answer.citations}
    cited = [by_marker[int(m)] for m in re.findall(r"\[(\d+)\]", lead(answer.text))]
    assert any("23" in c.text and (c.source, c.published) == REPORTS["23"] for c in cited)
    assert "March 6, 2025" in answer.text and "The Harbour Courier" in answer.text
    # the disagreement: all three figures, each with its outlet and date, each cited where it is stated
    assert {(f.value, f.source, f.published) for f in answer.disagreements} == {(v, *r) for v, r in REPORTS.items()}
    for f in answer.disagreements:
        assert f.value in by_marker[f.marker].text


def test_since_and_until_change_the_answer(news):
    # Asked "how many died", the model declines the one article left after March 5 (it reads "the
    # number of dead to 23" as no answer; see docs/experiments.md): the filter is what is tested here.
    question = "What was the death toll of the Valdena landslide?"
    early = ask(question, settings=news, until="2025-03-04")
    late = ask(question, settings=news, since="2025-03-05")
    assert "19" in figures_in(early.text) and "23" not in figures_in(early.text), early.text
    assert figures_in(late.text) == {"23"}, late.text
    assert all(c.published and c.published <= date(2025, 3, 4) for c in early.citations)
    assert all(c.published and c.published >= date(2025, 3, 5) for c in late.citations)


def test_a_date_in_the_question_narrows_it(news):
    answer = ask("How many people had died in the Valdena landslide according to reports published on "
                 "March 4, 2025?", settings=news)
    assert answer.window and (answer.window.since, answer.window.until) == (date(2025, 3, 4), date(2025, 3, 4))
    assert figures_in(answer.text) == {"19"}, answer.text
    assert {c.source for c in answer.citations} == {"Northern Ledger"}


def test_a_timeline_is_in_date_order_with_outlets(news):
    answer = ask("What was the timeline of the Valdena landslide?", settings=news)
    days = [t.published for t in answer.timeline]
    assert days == sorted(days) and set(days) >= {d for _, d in REPORTS.values()}
    assert markers_resolve(answer) and not any(t.text.startswith("#") for t in answer.timeline)
    by_marker = {c.marker: c for c in answer.citations}
    assert all((by_marker[t.marker].source, by_marker[t.marker].published) == (t.source, t.published)
               for t in answer.timeline)


def test_a_wire_copy_counts_once_and_is_credited_to_both_outlets(news):
    answer = ask("How many residents of Valdena were moved to temporary shelters?", settings=news)
    assert "400" in answer.text and markers_resolve(answer), answer.text
    wire = {"evacuation-wire-coastline-daily", "evacuation-wire-tessel-times"}
    leads = [p for p in answer.passages if p.chunk.doc_id in wire and "About 400 residents" in p.text]
    assert len(leads) == 1  # shown once, not once per outlet
    [c] = [c for c in answer.citations if "400" in c.text]
    assert {c.source, *c.also} == {"Coastline Daily", "The Tessel Times"}
