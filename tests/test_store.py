"""The store contract, the same cases against every backend: FAISS (embedded), Milvus Lite
(a temporary folder) and a milvus-lite server process on 127.0.0.1 (Milvus's protocol over
the loopback). Filters apply before ranking; upserts replace an article's rows; the
Retriever gives the same passages over each store."""

from __future__ import annotations

import importlib.util
import shutil
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from rag.config import Settings
from rag.retrieve import Retriever
from rag.store import Filter, as_store, sync

from .conftest import SEEDS, FakeEmbedder

HAVE_MILVUS = importlib.util.find_spec("pymilvus") is not None and importlib.util.find_spec("milvus_lite") is not None
needs_milvus = pytest.mark.skipif(not HAVE_MILVUS, reason="the cluster extra is not installed "
                                  "(pip install -e '.[cluster]' brings pymilvus and milvus-lite)")
BACKENDS = ["faiss", pytest.param("milvus-lite", marks=needs_milvus), pytest.param("milvus-server", marks=needs_milvus)]

ARTICLES = {  # outlet, date, text
    "wire-1": ("Wire", "2024-05-01", "Flood waters rose in the valley town of Selydove after heavy rain."),
    "wire-2": ("Wire", "2024-05-03", "The river burst its banks and flood waters reached the town hall."),
    "daily-1": ("Daily", "2024-05-02", "Flood waters rose in the valley, the Daily report said, and 160,000 fled."),
    "daily-2": ("Daily", "2024-05-04", "Rescuers reached the flooded valley villages by boat on Saturday."),
    "nodate": ("Daily", None, "Flood waters rose in the valley again, residents said."),
    "other": (None, None, "The council met on Monday to discuss the school budget and the new library."),
}


def write(folder: Path, name: str, outlet: str | None, day: str | None, text: str) -> None:
    header = " ".join(filter(None, [f"Source: {outlet}." if outlet else "", f"Published: {day}." if day else ""]))
    (folder / f"{name}.txt").write_text(f"{header}\n\n{text}\n" if header else text + "\n", encoding="utf-8")


@pytest.fixture(scope="module")
def milvus_uri(tmp_path_factory):
    from rag.cluster.local import milvus_server

    with milvus_server(tmp_path_factory.mktemp("milvus-server")) as uri:
        yield uri


@pytest.fixture(params=BACKENDS)
def settings_for(request, tmp_path):
    """Settings for a backend over an empty corpus folder (the test writes the articles)."""
    folder = tmp_path / "corpus"
    folder.mkdir()
    extra: dict = {}
    if request.param == "milvus-lite":
        extra = {"vector_store": "milvus", "milvus_uri": str(tmp_path / "lite.db")}
    elif request.param == "milvus-server":
        collection = f"c_{abs(hash(request.node.name)) % 10**9}"  # a fresh collection per test
        extra = {"vector_store": "milvus", "milvus_uri": request.getfixturevalue("milvus_uri"),
                 "milvus_collection": collection}
    return Settings(corpus_dir=folder, index_dir=tmp_path / "index", **extra)


@pytest.fixture
def store(settings_for):
    for name, (outlet, day, text) in ARTICLES.items():
        write(settings_for.corpus_dir, name, outlet, day, text)
    return as_store(sync(settings_for, FakeEmbedder()))


def doc_ids(store, hits) -> list[str]:
    chunks = store.chunks([k for k, _ in hits])
    return [chunks[k].doc_id for k, _ in hits]


def test_articles_and_metadata_are_stored(store) -> None:
    assert len(store) == len(ARTICLES) and set(store.docs) == set(ARTICLES)
    assert store.doc("daily-1").source == "Daily" and store.doc("daily-1").published == "2024-05-02"
    assert store.doc("other").source is None and "160,000 fled" in store.article("daily-1")


def test_dense_search_is_exact_cosine_best_first(store) -> None:
    e = FakeEmbedder()
    q = e.embed(["flood waters rose in the valley"])[0]
    hits = store.dense(q, 3, None)
    chunks = store.chunks([k for k, _ in hits])
    want = sorted((float(e.embed([c.text])[0] @ q) for c in store.chunks(k for k, _ in store.dense(q, 6, None)).values()),
                  reverse=True)[:3]
    assert [round(s, 4) for _, s in hits] == [round(s, 4) for s in want]
    vectors = store.vectors([k for k, _ in hits])
    assert np.allclose(vectors @ q, [s for _, s in hits], atol=1e-5)
    assert np.allclose(vectors, e.embed([chunks[k].text for k, _ in hits]), atol=1e-5)


def test_lexical_search_finds_exact_words_and_numbers(store) -> None:
    assert doc_ids(store, store.lexical("Selydove", 3, None)) == ["wire-1"]
    assert doc_ids(store, store.lexical("160000 people", 3, None)) == ["daily-1"]  # "160,000" either way
    assert store.lexical("zeppelin", 3, None) == []
    assert all(s > 0 for _, s in store.lexical("flood valley", 5, None))


@pytest.mark.parametrize("where, admitted", [
    (Filter(doc_ids=frozenset({"daily-2", "other"})), {"daily-2", "other"}),
    (Filter(sources=frozenset({"WIRE"})), {"wire-1", "wire-2"}),  # outlets compared without case
    (Filter(since=date(2024, 5, 3)), {"wire-2", "daily-2"}),  # no date: never admitted by a date bound
    (Filter(until=date(2024, 5, 2)), {"wire-1", "daily-1"}),
    (Filter(sources=frozenset({"Daily"}), since=date(2024, 5, 2), until=date(2024, 5, 3)), {"daily-1"}),
    (Filter(until=date(2000, 1, 1)), set()),
])
def test_filters_apply_before_ranking(store, where, admitted) -> None:
    """n hits still come back, all from admitted articles, although others rank higher."""
    q = FakeEmbedder().embed(["flood waters rose in the valley"])[0]
    n = min(2, len(admitted))
    for hits in (store.dense(q, 2, where), store.lexical("flood waters valley council", 2, where)):
        assert set(doc_ids(store, hits)) <= admitted and len(hits) == n


def test_upsert_replaces_an_articles_rows_and_delete_removes_them(store) -> None:
    e = FakeEmbedder()
    long_text = " ".join(f"Sentence {n} of the longer report on the school budget and library." for n in range(30))
    write(store_folder(store), "other", None, None, long_text)
    from rag.chunking import chunk_document
    from rag.index import DocInfo
    from rag.ingest import load_document

    doc = load_document(store_folder(store) / "other.txt")
    chunks = chunk_document(doc, 200, 0)
    assert len(chunks) > 3
    store.upsert(DocInfo.of(doc, len(chunks)), chunks, e.embed([c.text for c in chunks]))
    assert len(store) == len(ARTICLES) - 1 + len(chunks) and store.doc("other").chunks == len(chunks)
    shorter = chunks[:2]
    store.upsert(DocInfo.of(doc, 2), shorter, e.embed([c.text for c in shorter]))  # again, now 2 chunks
    assert len(store) == len(ARTICLES) + 1  # the rows past its new last chunk are gone
    assert "Sentence 29" not in store.article("other")
    store.delete(["other", "wire-1"])
    assert set(store.docs) == set(ARTICLES) - {"other", "wire-1"}
    assert "wire-1" not in doc_ids(store, store.lexical("Selydove flood", 5, None))


def store_folder(store) -> Path:
    return Path(store.index.corpus_dir if hasattr(store, "index") else store.corpus_dir)


def test_sync_embeds_only_new_or_changed_articles(settings_for) -> None:
    for name, (outlet, day, text) in ARTICLES.items():
        write(settings_for.corpus_dir, name, outlet, day, text)
    e = FakeEmbedder()
    sync(settings_for, e)
    first = e.texts_embedded
    assert len(as_store(sync(settings_for, e))) == len(ARTICLES) and e.texts_embedded == first  # nothing changed
    write(settings_for.corpus_dir, "wire-2", "Wire", "2024-05-03", "The river burst its banks on Tuesday.")
    (settings_for.corpus_dir / "other.txt").unlink()
    store = as_store(sync(settings_for, e))
    assert e.texts_embedded == first + 1 and set(store.docs) == set(ARTICLES) - {"other"}
    assert "Tuesday" in store.article("wire-2")


def test_the_retriever_gives_the_same_passages_over_every_store(settings_for, tmp_path) -> None:
    """Over the bundled articles, each store gives the passages the FAISS store gives."""
    for f in SEEDS.glob("*.txt"):
        shutil.copy(f, settings_for.corpus_dir / f.name)
    e = FakeEmbedder()
    here = Retriever(sync(settings_for, e), e)
    faiss_settings = Settings(corpus_dir=settings_for.corpus_dir, index_dir=tmp_path / "faiss-index")
    there = Retriever(sync(faiss_settings, e), e)
    for question in ("How many North Korean troops are in Russia?", "Who visited Moscow?",
                     "How big is the area held in Kursk?"):
        args = ([question], 4, 30, 3, None, 0.8, 0.5)
        assert [(p.chunk, round(p.score, 4)) for p in here.search(*args)] == \
            [(p.chunk, round(p.score, 4)) for p in there.search(*args)]


def test_a_released_collection_is_loaded_again_when_opened(settings_for) -> None:
    """As after a restart of the Milvus server, or Milvus Lite opened by a new process."""
    if settings_for.vector_store != "milvus":
        pytest.skip("Milvus only")
    write(settings_for.corpus_dir, "wire-1", *ARTICLES["wire-1"])
    store = as_store(sync(settings_for, FakeEmbedder()))
    store.client.release_collection(store.name)
    assert doc_ids(store, as_store(sync(settings_for, FakeEmbedder())).lexical("Selydove", 3, None)) == ["wire-1"]


def test_the_engine_answers_over_every_store(settings_for) -> None:
    """The whole pipeline (a scripted model) over each store: passages, citation, outlet."""
    from rag.engine import Engine

    from .conftest import FakeLLM

    for name, (outlet, day, text) in ARTICLES.items():
        write(settings_for.corpus_dir, name, outlet, day, text)
    settings = settings_for.model_copy(update={"min_relevance": 0.0, "second_look": 0.0})
    engine = Engine(settings, llm=FakeLLM(["Flood waters rose in the valley town of Selydove [1]."]),
                    embedder=FakeEmbedder())
    answer = engine.ask("Where did flood waters rise in Selydove?", sources=["wire"])
    assert {p.chunk.doc_id for p in answer.passages} <= {"wire-1", "wire-2"}
    assert not answer.declined and answer.citations[0].doc_id == "wire-1" and answer.citations[0].source == "Wire"
