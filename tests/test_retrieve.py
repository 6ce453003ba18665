"""Retrieval: dense + BM25 score fusion, per-article cap, merged overlaps, document
filter, with the fake embedder over small made-up corpora."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from rag.config import Settings
from rag.index import sync
from rag.retrieve import Filter, Retriever, _scaled, unit_words
from rag.store.lexical import lexical_text as _lexical_text
from rag.text import figures, normalize_numbers

from .conftest import FakeEmbedder


def retriever(tmp_path: Path, articles: dict[str, str], **overrides) -> Retriever:
    folder = tmp_path / "articles"
    folder.mkdir()
    for name, text in articles.items():
        (folder / f"{name}.txt").write_text(text, encoding="utf-8")
    settings = Settings(corpus_dir=folder, index_dir=tmp_path / "index", **overrides)
    embedder = FakeEmbedder()
    return Retriever(sync(settings, embedder), embedder)


def search(r: Retriever, queries: list[str], k: int, max_per_doc: int = 3, doc_ids=None,
           lexical_weight: float = Settings().lexical_weight):
    where = Filter(doc_ids=frozenset(doc_ids)) if doc_ids is not None else None
    return r.search(queries, k, 30, max_per_doc, where, lexical_weight)


FILLER = " ".join(f"Sentence number {n} talks about the weather in the valley." for n in range(12))


def test_scaled_maps_best_to_one_and_last_to_zero() -> None:
    assert _scaled([(7, 3.0), (2, 2.0), (5, 1.0)]) == [(7, 1.0), (2, 0.5), (5, 0.0)]
    assert _scaled([(1, 0.4)]) == [(1, 1.0)]
    assert _scaled([]) == []


def test_thousands_separators_do_not_hide_a_number() -> None:
    assert normalize_numbers("160,000 and 12\u202f000 but not 1,5") == "160000 and 12000 but not 1,5"


def test_exact_number_is_found_whatever_its_spelling(tmp_path) -> None:
    r = retriever(tmp_path, {
        "a": "Officials counted 160,000 refugees at the border. " + FILLER,
        "b": "Refugees crossed the border in large numbers, officials said. " + FILLER,
    })
    best = search(r, ["Where were 160000 refugees counted?"], 1)[0]
    assert best.chunk.doc_id == "a" and "160,000" in best.text


def test_lexical_weight_moves_the_order_from_dense_to_bm25(tmp_path) -> None:
    r = retriever(tmp_path, {
        "a": "Heavy fighting was reported near Selydove overnight.",
        "b": "The town council met on Monday. The council said fighting had stopped in the town.",
        "c": "The town council discussed the budget and the town's schools.",
    })
    question = "What did the town council say about fighting near Selydove?"
    vector = r.embedder.embed([question])[0]
    dense = [r.index.chunks[i].doc_id for i, _ in r._dense(vector, 3, None)]
    lexical = [r.index.chunks[i].doc_id for i, _ in r._lexical(question, 3, None)]
    assert dense != lexical  # the corpus is built so the two disagree

    def order(weight: float) -> list[str]:
        return [p.chunk.doc_id for p in search(r, [question], 3, lexical_weight=weight)]

    assert order(0.0) == dense
    assert order(100.0) == lexical


def test_at_most_max_per_doc_passages_per_article(tmp_path) -> None:
    long_article = " ".join(f"The troops moved to position {n} near the river." for n in range(60))
    r = retriever(tmp_path, {"a": long_article, "b": "Troops moved near the river. " + FILLER},
                  chunk_size=200, chunk_overlap=0)
    found = search(r, ["Where did the troops move near the river?"], 5, max_per_doc=2)
    assert sum(p.chunk.doc_id == "a" for p in found) == 2
    assert "b" in [p.chunk.doc_id for p in found]


def test_overlapping_chunks_come_back_as_one_passage_with_exact_offsets(tmp_path) -> None:
    text = " ".join(f"The troops moved to position {n} near the river." for n in range(20))
    r = retriever(tmp_path, {"a": text}, chunk_size=200, chunk_overlap=100)
    found = search(r, ["troops moved to position near the river"], 4)
    for i, p in enumerate(found):
        assert text[p.chunk.start:p.chunk.end] == p.text
        for q in found[i + 1:]:
            assert p.chunk.end <= q.chunk.start or q.chunk.end <= p.chunk.start  # no passage overlaps another


def test_halves_of_a_sentence_too_long_for_a_chunk_come_back_as_one_passage(tmp_path) -> None:
    generals = ("The envoy named the generals as General Kim, deputy chief of the general staff for special "
                "operations; General Lee, deputy chief of the general staff and head of the reconnaissance "
                "directorate; and General Shin, head of the main operational directorate.")
    text = f"{FILLER} {generals} Rain fell on the hills all week."
    r = retriever(tmp_path, {"a": text}, chunk_size=150, chunk_overlap=0)
    assert any(c.text.endswith("general staff") for c in r.index.chunks)  # cut inside the sentence
    found = search(r, ["Which general heads the reconnaissance directorate, the envoy named generals"], 4)
    whole = [p for p in found if generals in p.text]
    assert whole and text[whole[0].chunk.start:whole[0].chunk.end] == whole[0].text  # exact offsets
    assert not any(p.text.endswith("general staff") for p in found)


def test_k_larger_than_the_index_returns_what_there_is(tmp_path) -> None:
    r = retriever(tmp_path, {"a": "One short article about rain."})
    found = search(r, ["rain"], 10)
    assert len(found) == 1 and found[0].chunk.doc_id == "a"


@pytest.mark.parametrize("wanted", [["b"], ["a", "b"], []])
def test_document_filter_limits_the_search(tmp_path, wanted) -> None:
    r = retriever(tmp_path, {"a": "Rain fell on the city all week.", "b": "Rain fell on the hills all week."})
    found = search(r, ["Where did rain fall?"], 5, doc_ids=wanted)
    assert {p.chunk.doc_id for p in found} == set(wanted)


def test_figures_are_numbers_but_not_dates() -> None:
    text = ("Up to 2,100 soldiers were flown in between October 23 and 28. Oct. 29 (UPI) — in 2024 "
            "Pyongyang sent 3.5mn shells; on 12 May troops held 600 sq km.")
    assert figures(text) == {"2100", "3.5", "600"}


def test_a_passage_with_a_new_figure_outranks_another_copy_of_a_known_one(tmp_path) -> None:
    r = retriever(tmp_path, {
        "a": "The Pentagon says 10,000 North Korean troops are in Russia now.",
        "b": "About 10,000 North Korean troops are in Russia now, US officials say.",
        "c": "Kyiv says there are 12,000 North Koreans in the country.",
        "d": "Rain fell on the valley all week, and the river rose.",
    })
    question = ["How many North Korean troops are in Russia now?"]
    assert "c" not in [p.chunk.doc_id for p in search(r, question, 2)]  # two copies of 10,000 win on similarity
    found = r.search(question, 2, 30, 3, None, Settings().lexical_weight, figure_bonus=2.0)
    assert "c" in [p.chunk.doc_id for p in found]  # so both figures are shown


def test_units_are_spelled_out_for_the_lexical_search() -> None:
    assert _lexical_text("some 600 sq km, 50km away, 1,000 km") == "some 600 square kilometres, 50 kilometres away, 1000 kilometres"
    assert _lexical_text("Kim said so") == "Kim said so"


@pytest.mark.parametrize("question, units", [
    ("How big is the area of Kursk held by Ukrainian forces?", "square kilometres miles"),
    ("How far did the missile fly?", "kilometres miles"),
    ("How high did it go?", "altitude kilometres metres feet"),
    ("How many troops are in Kursk?", ""),
    ("How big is the North Korean force?", ""),
])
def test_a_question_about_a_dimension_searches_its_units(question, units) -> None:
    assert unit_words(question) == units


def test_an_area_in_abbreviated_units_is_found_for_a_question_that_names_none(tmp_path) -> None:
    r = retriever(tmp_path, {
        "a": "Ukraine's troops hold some 600 sq km of land in Kursk, Zelenskyy said.",
        "b": "Ukraine's troops in Kursk held the land they took, Zelenskyy said on Thursday.",
    })
    best = search(r, ["How big is the area of land in Kursk held by Ukraine's troops?"], 1, lexical_weight=5.0)[0]
    assert best.chunk.doc_id == "a"


def test_outlet_and_date_filters_apply_before_ranking(tmp_path) -> None:
    """k passages still come back, all from the articles the filter admits, in dense and BM25 alike."""
    from datetime import date

    towns = {1: "Aldmere, where the river burst its banks", 2: "Brookfell after a week of rain",
             3: "Corran as the dam spillway opened"}
    texts = {f"{outlet}-{day}": f"Flood waters rose in {towns[day]}, {outlet} reporters wrote."
             for outlet in ("wire", "daily") for day in (1, 2, 3)}
    r = retriever(tmp_path, texts)
    meta = {d: replace(r.index.docs[d], source=d.split("-")[0], published=f"2024-05-0{d[-1]}") for d in texts}
    r.index.docs.update(meta)
    where = Filter(sources=frozenset({"Daily"}), since=date(2024, 5, 2))
    found = r.search(["Where did the flood waters rise?"], 2, 30, 3, where, Settings().lexical_weight)
    assert sorted(p.chunk.doc_id for p in found) == ["daily-2", "daily-3"]
    assert not r.search(["flood"], 2, 30, 3, Filter(until=date(2024, 4, 30)), 0.8)  # nothing that old


def test_a_story_updated_with_a_new_figure_is_no_copy_of_the_old_one():
    from rag.retrieve import _copy_of, _shingles
    from rag.text import figures
    old = ("The number of people killed in the landslide in Valdena has risen to 19, the civil protection "
           "agency said on Tuesday, as rescuers dug through mud and rubble for a second day.")
    picked = [(0, _shingles(old), figures(old))]
    assert _copy_of(old.replace("19", "23"), picked) is None  # the revision is shown
    assert _copy_of(old.replace("on Tuesday, ", ""), picked) == 0  # a trimmed copy counts once
    assert _copy_of(old[:old.index(", as rescuers")] + ".", picked) == 0
