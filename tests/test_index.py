"""The on-disk index: manifest, content-addressed data files, incremental sync,
corruption detection and crash safety, with the fake embedder."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from datetime import date
from pathlib import Path

import numpy as np
import pytest

import rag.index as rindex
from rag.config import Settings
from rag.errors import IndexStoreError
from rag.index import FORMAT_VERSION, MANIFEST, load, sync
from rag.ingest import CLEANING_VERSION

from .conftest import FakeEmbedder

D000, D002, D004 = "000_3aae16b9763f2444", "002_200f049a1b819fde", "004_bd4addd136b7a187"


def manifest(settings: Settings) -> dict:
    return json.loads((settings.index_dir / MANIFEST).read_text(encoding="utf-8"))


def listing(folder: Path) -> dict[str, int]:
    """File name -> mtime_ns for everything in the index folder."""
    return {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}


def data_files(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir() if p.name.startswith(("vectors-", "chunks-"))}


def assert_rows_match_chunks(index, embedder: FakeEmbedder) -> None:
    """Row i of the FAISS index is the embedding of chunk i (the fake is deterministic)."""
    expected = FakeEmbedder().embed([c.text for c in index.chunks])
    assert index.faiss.ntotal == len(index.chunks)
    np.testing.assert_allclose(index.vectors, expected, atol=1e-6)


def assert_consistent(index) -> None:
    for c in index.chunks:
        text = (index.corpus_dir / index.docs[c.doc_id].file).read_bytes().decode("utf-8-sig")
        assert text[c.start:c.end] == c.text
    for d, info in index.docs.items():
        assert info.chunks == sum(c.doc_id == d for c in index.chunks) > 0


@pytest.fixture
def built(settings, fake_embedder):
    return sync(settings, fake_embedder)


# --- building ------------------------------------------------------------------------------


def test_build_writes_manifest_and_data_files(settings, fake_embedder, corpus, caplog):
    with caplog.at_level(logging.WARNING, logger="rag.index"):
        index = sync(settings, fake_embedder)
    assert not caplog.records  # a first build is not a repair
    m = manifest(settings)
    assert m["format_version"] == FORMAT_VERSION
    assert m["embedder"] == "fake-embedder" and m["dim"] == 64
    assert m["chunk_size"] == 400 and m["chunk_overlap"] == 100
    assert set(m["docs"]) == {p.stem for p in corpus.glob("*.txt")}
    for doc_id, info in m["docs"].items():
        raw = (corpus / info["file"]).read_bytes()
        assert info["sha256"] == hashlib.sha256(raw).hexdigest() and info["doc_id"] == doc_id
        assert info["title"] and info["chunks"] > 0
    assert sum(info["chunks"] for info in m["docs"].values()) == len(index.chunks)
    assert m["files"]["vectors"].startswith("vectors-") and m["files"]["vectors"].endswith(".faiss")
    assert m["files"]["chunks"].startswith("chunks-") and m["files"]["chunks"].endswith(".jsonl")
    for name in m["files"].values():  # content-addressed and checksummed
        digest = hashlib.sha256((settings.index_dir / name).read_bytes()).hexdigest()
        assert m["checksums"][name] == digest and digest[:16] in name
    assert data_files(settings.index_dir) == set(m["files"].values())
    assert fake_embedder.texts_embedded == len(index.chunks)
    assert_rows_match_chunks(index, fake_embedder)
    assert_consistent(index)


def test_load_gives_back_what_was_built(settings, built):
    loaded = load(settings.index_dir, settings.corpus_dir)
    assert loaded.chunks == built.chunks and loaded.docs == built.docs
    assert (loaded.embedder, loaded.chunk_size, loaded.chunk_overlap) == ("fake-embedder", 400, 100)
    np.testing.assert_array_equal(loaded.vectors, built.vectors)
    assert loaded.source_path(D000) == (settings.corpus_dir / f"{D000}.txt").resolve()


def test_no_stray_files_after_a_successful_save(settings, built):
    names = {p.name for p in settings.index_dir.iterdir()}
    assert names == {MANIFEST, ".lock"} | data_files(settings.index_dir)
    assert len(data_files(settings.index_dir)) == 2
    assert not [n for n in names if n.endswith(".tmp") or n.startswith(f".{MANIFEST}")]


# --- incremental sync ----------------------------------------------------------------------


def test_resync_with_nothing_changed_embeds_and_writes_nothing(settings, fake_embedder, built):
    before = listing(settings.index_dir)
    calls, texts = fake_embedder.calls, fake_embedder.texts_embedded
    again = sync(settings, fake_embedder)
    assert (fake_embedder.calls, fake_embedder.texts_embedded) == (calls, texts)
    assert listing(settings.index_dir) == before
    assert again.chunks == built.chunks


def test_touching_a_file_without_changing_it_embeds_nothing(settings, fake_embedder, corpus, built):
    os.utime(corpus / f"{D000}.txt", ns=(1, 1))
    texts = fake_embedder.texts_embedded
    sync(settings, fake_embedder)
    assert fake_embedder.texts_embedded == texts


def test_editing_one_document_re_embeds_only_its_chunks(settings, fake_embedder, corpus, built):
    path = corpus / f"{D002}.txt"
    path.write_text(path.read_text(encoding="utf-8") + "\nA brand new closing sentence about Kursk appears.\n",
                    encoding="utf-8")
    texts = fake_embedder.texts_embedded
    index = sync(settings, fake_embedder)
    new_002 = [c for c in index.chunks if c.doc_id == D002]
    assert fake_embedder.texts_embedded - texts == len(new_002)
    assert any("brand new closing sentence" in c.text for c in new_002)
    assert [c for c in index.chunks if c.doc_id != D002] == [c for c in built.chunks if c.doc_id != D002]
    assert manifest(settings)["docs"][D002]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert_rows_match_chunks(index, fake_embedder)
    assert_consistent(index)
    assert load(settings.index_dir, corpus).chunks == index.chunks


def test_adding_a_document_embeds_only_it(settings, fake_embedder, corpus, built):
    (corpus / "005 new – article.txt").write_text(
        "Seoul said on Friday that 1,500 more troops had left. Officials in Tokyo agreed.\n", encoding="utf-8")
    texts = fake_embedder.texts_embedded
    index = sync(settings, fake_embedder)
    assert "005 new – article" in index.docs
    assert fake_embedder.texts_embedded - texts == index.docs["005 new – article"].chunks == 1
    assert_rows_match_chunks(index, fake_embedder)
    assert_consistent(index)


def test_removing_a_document_drops_it_without_embedding(settings, fake_embedder, corpus, built):
    (corpus / f"{D004}.txt").unlink()
    texts = fake_embedder.texts_embedded
    index = sync(settings, fake_embedder)
    assert fake_embedder.texts_embedded == texts
    assert D004 not in index.docs and all(c.doc_id != D004 for c in index.chunks)
    assert D004 not in manifest(settings)["docs"]
    assert_rows_match_chunks(index, fake_embedder)
    assert load(settings.index_dir, corpus).chunks == index.chunks


def test_old_data_files_are_removed_after_a_successful_save(settings, fake_embedder, corpus, built):
    old = data_files(settings.index_dir)
    (corpus / f"{D004}.txt").unlink()
    sync(settings, fake_embedder)
    new = data_files(settings.index_dir)
    assert len(new) == 2 and not new & old
    assert new == set(manifest(settings)["files"].values())


def test_sync_accepts_preloaded_docs(settings, fake_embedder):
    from rag.ingest import load_corpus

    docs = [d for d in load_corpus(settings.corpus_dir) if d.doc_id != D000]
    index = sync(settings, fake_embedder, docs=docs)
    assert D000 not in index.docs and len(index.docs) == 4


# --- article metadata ------------------------------------------------------------------------

NEWS = Path(__file__).resolve().parent / "data" / "news" / "corpus"


@pytest.fixture
def news_settings(tmp_path) -> Settings:
    folder = tmp_path / "news"
    shutil.copytree(NEWS, folder)
    return Settings(corpus_dir=folder, index_dir=tmp_path / "news-index", cache_dir=tmp_path / "cache")


def test_metadata_is_stored_in_the_manifest_and_exposed(news_settings, fake_embedder):
    index = sync(news_settings, fake_embedder)
    info = manifest(news_settings)["docs"]["landslide-harbour-courier"]
    assert (info["source"], info["author"], info["published"], info["url"]) == (
        "The Harbour Courier", "Priya Natarajan", "2025-03-06",
        "https://harbourcourier.example/2025/03/06/valdena-landslide-final-toll")
    assert manifest(news_settings)["docs"]["evacuation-wire-tessel-times"]["author"] is None
    loaded = load(news_settings.index_dir, news_settings.corpus_dir)
    assert loaded.docs == index.docs
    meta = loaded.meta("landslide-valley-post")
    assert (meta.title, meta.source, meta.author, meta.published) == (
        "At least 12 killed as hillside collapses onto Valdena homes", "Valley Post", "Mira Halloran", date(2025, 3, 3))


def test_a_sidecar_edit_re_indexes_that_article_only(news_settings, fake_embedder):
    built = sync(news_settings, fake_embedder)
    sidecar = news_settings.corpus_dir / "metadata.jsonl"
    sidecar.write_text(sidecar.read_text(encoding="utf-8").replace("Felix Aro", "Felix Arosa"), encoding="utf-8")
    texts = fake_embedder.texts_embedded
    index = sync(news_settings, fake_embedder)
    tram = "tram-line-coastline-daily"
    assert index.meta(tram).author == "Felix Arosa" and manifest(news_settings)["docs"][tram]["author"] == "Felix Arosa"
    assert fake_embedder.texts_embedded - texts == index.docs[tram].chunks > 0
    assert {d: i for d, i in index.docs.items() if d != tram} == {d: i for d, i in built.docs.items() if d != tram}
    assert index.docs[tram].fingerprint != built.docs[tram].fingerprint
    texts = fake_embedder.texts_embedded
    sync(news_settings, fake_embedder)  # and then it is settled
    assert fake_embedder.texts_embedded == texts


def test_a_front_matter_edit_re_indexes_that_article(news_settings, fake_embedder):
    sync(news_settings, fake_embedder)
    path = news_settings.corpus_dir / "football-northern-ledger.md"
    path.write_text(path.read_text(encoding="utf-8").replace("date: 2025-03-02", "date: 2025-03-03"), encoding="utf-8")
    index = sync(news_settings, fake_embedder)
    assert index.meta("football-northern-ledger").published == date(2025, 3, 3)


def test_an_index_of_the_previous_format_is_rebuilt(settings, fake_embedder, built, caplog):
    m = manifest(settings)
    m["format_version"] = 1
    for info in m["docs"].values():  # what a format-1 manifest held
        for key in ("source", "author", "published", "url", "fingerprint"):
            del info[key]
    (settings.index_dir / MANIFEST).write_text(json.dumps(m), encoding="utf-8")
    texts = fake_embedder.texts_embedded
    with caplog.at_level(logging.WARNING, logger="rag.index"):
        index = sync(settings, fake_embedder)
    assert "format 1" in caplog.text and "Rebuilding" in caplog.text
    assert fake_embedder.texts_embedded - texts == len(index.chunks)
    assert manifest(settings)["docs"]["001_498c3693e6a17ef7"]["source"] == "UPI"  # from its dateline


# --- settings changes --------------------------------------------------------------------


def test_changing_chunk_size_rebuilds_everything_with_a_warning(settings, fake_embedder, built, caplog):
    smaller = Settings(corpus_dir=settings.corpus_dir, index_dir=settings.index_dir,
                       cache_dir=settings.cache_dir, chunk_size=300)
    texts = fake_embedder.texts_embedded
    with caplog.at_level(logging.WARNING, logger="rag.index"):
        index = sync(smaller, fake_embedder)
    assert "chunk_size=400" in caplog.text and "Rebuilding" in caplog.text
    assert fake_embedder.texts_embedded - texts == len(index.chunks) > len(built.chunks)
    assert manifest(settings)["chunk_size"] == 300 and all(len(c.text) <= 300 for c in index.chunks)
    assert_rows_match_chunks(index, fake_embedder)


def test_changing_chunk_overlap_rebuilds(settings, fake_embedder, built, caplog):
    other = Settings(corpus_dir=settings.corpus_dir, index_dir=settings.index_dir, chunk_overlap=0)
    texts = fake_embedder.texts_embedded
    with caplog.at_level(logging.WARNING, logger="rag.index"):
        index = sync(other, fake_embedder)
    assert "Rebuilding" in caplog.text and fake_embedder.texts_embedded - texts == len(index.chunks)


def test_an_index_cut_under_older_cleaning_rules_rebuilds(settings, fake_embedder, built, caplog):
    # Same files, same settings: only the ingest rules changed (a pre-"cleaning" manifest means v1).
    path = settings.index_dir / "manifest.json"
    old = json.loads(path.read_text())
    del old["cleaning"]
    path.write_text(json.dumps(old))
    texts = fake_embedder.texts_embedded
    with caplog.at_level(logging.WARNING, logger="rag.index"):
        index = sync(settings, fake_embedder)
    assert "cleaning rules v1" in caplog.text and "Rebuilding" in caplog.text
    assert fake_embedder.texts_embedded - texts == len(index.chunks)
    assert manifest(settings)["cleaning"] == CLEANING_VERSION


def test_changing_the_embedder_rebuilds_with_a_warning(settings, fake_embedder, built, caplog):
    class OtherEmbedder(FakeEmbedder):
        name = "other-embedder"

    other = OtherEmbedder()
    with caplog.at_level(logging.WARNING, logger="rag.index"):
        index = sync(settings, other)
    assert "fake-embedder" in caplog.text and "other-embedder" in caplog.text and "Rebuilding" in caplog.text
    assert other.texts_embedded == len(index.chunks)
    assert manifest(settings)["embedder"] == "other-embedder"


def test_changing_the_dimension_rebuilds(settings, fake_embedder, built):
    class Narrow(FakeEmbedder):
        dim = 32

    narrow = Narrow()
    index = sync(settings, narrow)
    assert narrow.texts_embedded == len(index.chunks) and index.faiss.d == 32
    assert manifest(settings)["dim"] == 32
    assert load(settings.index_dir, settings.corpus_dir).faiss.d == 32


# --- damage ------------------------------------------------------------------------------


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x20
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("which", ["vectors", "chunks"])
@pytest.mark.parametrize("damage", [_truncate, _flip_a_byte])
def test_damaged_data_file_is_detected_and_rebuilt(settings, fake_embedder, built, caplog, which, damage):
    name = manifest(settings)["files"][which]
    damage(settings.index_dir / name)
    with pytest.raises(IndexStoreError, match=f"{name}.*damaged"):
        load(settings.index_dir, settings.corpus_dir)
    texts = fake_embedder.texts_embedded
    with caplog.at_level(logging.WARNING, logger="rag.index"):
        index = sync(settings, fake_embedder)
    assert name in caplog.text and "Rebuilding" in caplog.text
    assert fake_embedder.texts_embedded - texts == len(index.chunks)
    # Repaired on disk, not only in memory: the next load works and matches.
    loaded = load(settings.index_dir, settings.corpus_dir)
    assert loaded.chunks == built.chunks
    np.testing.assert_array_equal(loaded.vectors, built.vectors)


def test_missing_data_file_is_detected_and_rebuilt(settings, fake_embedder, built, caplog):
    (settings.index_dir / manifest(settings)["files"]["vectors"]).unlink()
    with pytest.raises(IndexStoreError):
        load(settings.index_dir, settings.corpus_dir)
    with caplog.at_level(logging.WARNING, logger="rag.index"):
        sync(settings, fake_embedder)
    assert "Rebuilding" in caplog.text
    load(settings.index_dir, settings.corpus_dir)


def test_load_without_an_index_raises(settings):
    with pytest.raises(IndexStoreError, match="No index"):
        load(settings.index_dir, settings.corpus_dir)


@pytest.mark.parametrize("content", [b"{not json", b"", b"\xff\xfe\x00garbage", b"[1, 2, 3]", b'"a string"',
                                     b"null", b'{"format_version": 1}'])
def test_garbage_manifest_is_rebuilt(settings, fake_embedder, built, caplog, content):
    (settings.index_dir / MANIFEST).write_bytes(content)
    with pytest.raises(IndexStoreError):
        load(settings.index_dir, settings.corpus_dir)
    with caplog.at_level(logging.WARNING, logger="rag.index"):
        index = sync(settings, fake_embedder)
    assert "Rebuilding" in caplog.text
    assert load(settings.index_dir, settings.corpus_dir).chunks == index.chunks == built.chunks


@pytest.mark.parametrize("key", ["files", "checksums", "docs", "dim", "embedder", "chunk_size", "chunk_overlap"])
def test_manifest_missing_a_field_is_an_index_error(settings, fake_embedder, built, caplog, key):
    m = manifest(settings)
    del m[key]
    (settings.index_dir / MANIFEST).write_text(json.dumps(m), encoding="utf-8")
    with pytest.raises(IndexStoreError):
        load(settings.index_dir, settings.corpus_dir)
    with caplog.at_level(logging.WARNING, logger="rag.index"):
        sync(settings, fake_embedder)
    assert load(settings.index_dir, settings.corpus_dir).chunks == built.chunks


def test_other_format_version_is_rebuilt(settings, fake_embedder, built, caplog):
    m = manifest(settings)
    m["format_version"] = FORMAT_VERSION + 1
    (settings.index_dir / MANIFEST).write_text(json.dumps(m), encoding="utf-8")
    with pytest.raises(IndexStoreError, match="format"):
        load(settings.index_dir, settings.corpus_dir)
    with caplog.at_level(logging.WARNING, logger="rag.index"):
        sync(settings, fake_embedder)
    assert "format" in caplog.text and manifest(settings)["format_version"] == FORMAT_VERSION


# --- crash safety ----------------------------------------------------------------------------


def _edit(corpus: Path) -> None:
    path = corpus / f"{D002}.txt"
    path.write_text(path.read_text(encoding="utf-8") + "\nOne more sentence was added today.\n", encoding="utf-8")


def test_crash_writing_the_manifest_leaves_the_previous_index(settings, fake_embedder, corpus, built, monkeypatch):
    before = (settings.index_dir / MANIFEST).read_bytes()
    real_write = rindex._atomic_write

    def failing_write(path: Path, data: bytes) -> None:
        if path.name == MANIFEST:
            raise OSError(28, "No space left on device")
        real_write(path, data)

    _edit(corpus)
    monkeypatch.setattr(rindex, "_atomic_write", failing_write)
    with pytest.raises(OSError, match="No space"):
        sync(settings, fake_embedder)
    assert (settings.index_dir / MANIFEST).read_bytes() == before
    loaded = load(settings.index_dir, corpus)
    assert loaded.chunks == built.chunks
    np.testing.assert_array_equal(loaded.vectors, built.vectors)

    monkeypatch.undo()  # the disk has room again: the next sync finishes the job and tidies up
    index = sync(settings, fake_embedder)
    assert any("One more sentence" in c.text for c in index.chunks)
    assert data_files(settings.index_dir) == set(manifest(settings)["files"].values())


def test_failed_rename_leaves_no_temp_file(settings, fake_embedder, corpus, built, monkeypatch):
    before = (settings.index_dir / MANIFEST).read_bytes()
    real_replace = os.replace

    def failing_replace(src, dst, *args, **kwargs):
        if Path(dst).name == MANIFEST:
            raise OSError(5, "Input/output error")
        return real_replace(src, dst, *args, **kwargs)

    _edit(corpus)
    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="Input/output"):
        sync(settings, fake_embedder)
    monkeypatch.undo()
    assert (settings.index_dir / MANIFEST).read_bytes() == before
    assert not [p for p in settings.index_dir.iterdir() if p.name.endswith(".tmp")]
    assert load(settings.index_dir, corpus).chunks == built.chunks


def test_atomic_write_replaces_whole_file(tmp_path):
    target = tmp_path / "f.bin"
    target.write_bytes(b"old contents")
    rindex._atomic_write(target, b"new")
    assert target.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]
    assert (target.stat().st_mode & 0o777) == 0o644


# --- staleness -------------------------------------------------------------------------------
