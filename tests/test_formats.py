"""Web pages and PDFs: the article is what gets indexed, boilerplate is not, and every
offset stays exact (``read_source(path)[start:end]`` is the chunk's text)."""

from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path

import pytest

from rag.chunking import chunk_document
from rag.ingest import PDF_SUFFIX, load_corpus, load_document, read_source

from .pdf_maker import make_pdf

NEWS = Path(__file__).resolve().parent / "data" / "news" / "corpus"
COURIER = NEWS / "landslide-harbour-courier.html"
BOILERPLATE = ["cookies", "Accept all", "Subscribe", "Opinion", "Related stories", "Hundreds leave their homes",
               "Most read", "Ferry timetable", "All rights reserved", "Privacy policy", "Terms of use",
               "dataLayer", "font-family", "By Priya Natarajan"]


def assert_offsets_exact(path: Path, size: int = 400, overlap: int = 100) -> None:
    doc = load_document(path)
    assert doc is not None
    source = read_source(path)
    assert source == doc.text
    for c in chunk_document(doc, size, overlap):
        assert source[c.start:c.end] == c.text


def words_in_place(raw: str, text: str, start: int, end: int) -> None:
    """Every word of text[start:end] with no entity in the file lies where it lies in the file."""
    for m in re.finditer(r"\S+", text[start:end]):
        a, b = start + m.start(), start + m.end()
        if "&" not in raw[max(0, a - 10):b + 10]:  # an entity decoded nearby may pad either side
            assert raw[a:b] == m.group(), (raw[a:b], m.group())


def test_web_page_boilerplate_is_left_out():
    doc = load_document(COURIER)
    assert doc is not None
    clean = doc.clean_text
    for phrase in BOILERPLATE:
        assert phrase not in clean, phrase
    for phrase in ["bringing the number of dead to 23", "found alive on Wednesday evening", "Four of the dead were children",
                   "The slide destroyed 14 houses", "were acted on."]:
        assert phrase in " ".join(clean.split()), phrase
    assert doc.title == "Valdena landslide: final death toll put at 23 as search ends"


def test_web_page_offsets_are_exact_and_entities_read_correctly():
    raw = COURIER.read_text(encoding="utf-8")
    doc = load_document(COURIER)
    assert doc is not None and len(doc.text) == len(raw)
    for s, e in doc.spans:
        words_in_place(raw, doc.text, s, e)
    clean = " ".join(doc.clean_text.split())
    assert "Monday’s landslide" in clean and "“This is the figure we expect to be final,” said" in clean
    assert "&rsquo;" not in doc.clean_text and "&ldquo;" not in doc.clean_text
    assert_offsets_exact(COURIER)


def test_a_page_on_one_line_still_leaves_the_boilerplate_out(tmp_path):
    path = tmp_path / "minified.html"
    path.write_text(COURIER.read_text(encoding="utf-8").replace("\n", " "), encoding="utf-8")
    doc = load_document(path)
    assert doc is not None
    for phrase in BOILERPLATE:
        assert phrase not in doc.clean_text, phrase
    assert "bringing the number of dead to 23" in doc.clean_text
    assert_offsets_exact(path)


NO_ARTICLE = """<!DOCTYPE html><html><head><title>Coastline Daily - Local news</title></head><body>
<div class="cookie-consent"><p>We use cookies to improve your experience on our site. By continuing you agree to our use of cookies.</p></div>
<nav><a href="/">Home</a> <a href="/local">Local</a> <a href="/travel">Travel</a></nav>
<ul><li><a href="/a">Port Alder opens its first new tram line in forty years</a></li>
<li><a href="/b">Hundreds evacuated as engineers watch unstable slope</a></li></ul>
<footer><p>&copy; 2025 Coastline Daily. All rights reserved.</p></footer></body></html>
"""


def test_a_page_without_article_text_is_skipped_with_a_warning(tmp_path, caplog):
    path = tmp_path / "section-front.html"
    path.write_text(NO_ARTICLE, encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="rag.ingest"):
        assert load_document(path) is None
    assert "section-front.html" in caplog.text and "no article text" in caplog.text


def test_a_folder_of_saved_pages_loads(tmp_path):
    for name in ("landslide-harbour-courier.html", "tram-line-coastline-daily.html"):
        shutil.copy(NEWS / name, tmp_path / name)
    (tmp_path / "section-front.html").write_text(NO_ARTICLE, encoding="utf-8")
    docs = load_corpus(tmp_path)
    assert [d.doc_id for d in docs] == ["landslide-harbour-courier", "tram-line-coastline-daily"]
    assert "212 million crowns" in docs[1].clean_text and "Advertise with us" not in docs[1].clean_text


def test_the_fixture_corpus_loads_without_its_readme_or_sidecar(caplog):
    with caplog.at_level(logging.WARNING, logger="rag.ingest"):
        docs = load_corpus(NEWS)
    assert not caplog.records
    assert len(docs) == 8 and all(d.meta.source and d.meta.published for d in docs)
    assert not (NEWS / "README.md").exists() and (NEWS.parent / "README.md").exists()
    for doc in docs:
        assert_offsets_exact(doc.path)


# --- PDF ------------------------------------------------------------------------------------------

PAGES = [
    ["Flood kills 12 in river town", "At least 12 people died when the Vell river burst its banks.",
     "Rescue teams worked through the night to reach the villages.", "1"],
    ["Some 400 residents spent the night in a school gym, officials said.",
     "The mayor said the water was the highest since 1957.", "2"],
]


@pytest.fixture
def pdf(tmp_path: Path) -> Path:
    path = tmp_path / "flood report.pdf"
    path.write_bytes(make_pdf(PAGES))
    return path


def test_pdf_pages_are_joined_by_form_feeds(pdf):
    text = read_source(pdf)
    assert text is not None and text.count("\f") == 1
    first, second = text.split("\f")
    assert "At least 12 people died" in first and "400 residents" in second
    assert read_source(pdf) == text  # the same bytes always give the same text


def test_pdf_chunks_carry_their_page_and_exact_offsets(pdf):
    doc = load_document(pdf)
    assert doc is not None and doc.path.suffix == PDF_SUFFIX
    assert doc.title == "Flood kills 12 in river town"
    chunks = chunk_document(doc, 100, 0)
    text = read_source(pdf)
    assert {c.page for c in chunks} == {1, 2}
    for c in chunks:
        assert text[c.start:c.end] == c.text
        assert "\f" not in c.text  # a chunk never spans two pages
        page_text = text.split("\f")[c.page - 1]
        assert c.text in page_text
    assert not re.search(r"(?m)^\d$", doc.clean_text)  # page numbers are not article text


def test_pdf_without_text_layer_is_skipped_with_a_warning(tmp_path, caplog):
    path = tmp_path / "scan.pdf"
    path.write_bytes(make_pdf([[], []]))
    with caplog.at_level(logging.WARNING, logger="rag.ingest"):
        assert load_document(path) is None
    assert "scan.pdf" in caplog.text and "no text layer: run OCR on it first" in caplog.text


def test_a_broken_pdf_is_skipped_with_a_warning(tmp_path, caplog):
    path = tmp_path / "broken.pdf"
    path.write_bytes(b"%PDF-1.4 Pentagon troops")
    with caplog.at_level(logging.WARNING, logger="rag.ingest"):
        assert load_document(path) is None
    assert "broken.pdf" in caplog.text and "not a readable PDF" in caplog.text
