"""Article metadata: each source of each field, their priority, the sidecar over all of
them, and what is never guessed (a date from the mtime, a year for "Oct. 29")."""

from __future__ import annotations

import json
import logging
import os
from datetime import date
from pathlib import Path

import pytest

from rag.ingest import ArticleMeta, load_corpus, load_document, parse_date, read_source

NEWS = Path(__file__).resolve().parent / "data" / "news" / "corpus"
BODY = "<p>Rescuers searched through the night for people buried when the hillside gave way in Valdena.</p>"


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def page(head: str, body: str = BODY) -> str:
    return f"<!DOCTYPE html><html><head>{head}</head><body><article>{body}</article></body></html>"


def meta_of(path: Path) -> ArticleMeta:
    doc = load_document(path)
    assert doc is not None
    return doc.meta


def assert_exact(path: Path) -> None:
    doc = load_document(path)
    assert doc is not None
    source = read_source(path)
    assert source == doc.text
    for s, e in doc.spans:
        assert source[s:e] == doc.text[s:e] and doc.text[s:e].strip() == doc.text[s:e] != ""


# --- web pages: every source, best first ----------------------------------------------------------

LAYERS = {
    "published_time": '<meta property="article:published_time" content="2025-03-06T18:40:00+01:00">',
    "json_ld": ('<script type="application/ld+json">{"@context": "https://schema.org", "@graph": ['
                '{"@type": "WebSite", "name": "Site"}, {"@type": "NewsArticle", "headline": "LD headline", '
                '"datePublished": "2025-03-05", "author": [{"@type": "Person", "name": "Priya Natarajan"}, '
                '{"@type": "Person", "name": "Lukas Brand"}], "publisher": {"@type": "Organization", '
                '"name": "LD Publisher"}}]}</script>'),
    "site_name": '<meta property="og:site_name" content="OG Site">',
    "og_title": '<meta property="og:title" content="OG title">',
    "canonical": '<link rel="canonical" href="https://courier.example/valdena">',
    "title": "<title>Title tag</title>",
    "author": '<meta name="author" content="Meta Author">',
}
TIME = '<p><time datetime="2025-03-04">4 March</time></p>'


def test_html_every_source_is_read(tmp_path):
    meta = meta_of(write(tmp_path, "p.html", page("".join(LAYERS.values()), BODY + "\n" + TIME)))
    assert meta == ArticleMeta("LD headline", "LD Publisher", "Priya Natarajan, Lukas Brand", date(2025, 3, 6),
                               "https://courier.example/valdena")


@pytest.mark.parametrize("dropped, expected", [
    # Without the best source of a field, the next one gives it.
    (["published_time"], {"published": date(2025, 3, 5)}),  # JSON-LD datePublished
    (["published_time", "json_ld"], {"published": date(2025, 3, 4), "title": "OG title", "source": "OG Site",
                                     "author": "Meta Author"}),  # <time datetime>, og:title, og:site_name
    (["json_ld", "og_title"], {"title": "Title tag", "author": "Meta Author", "source": "OG Site"}),
    (["json_ld", "og_title", "title"], {"title": "Rescuers searched through the night for people buried when the "
                                                 "hillside gave way in Valdena.",  # the first content line
                                        "author": "Meta Author", "source": "OG Site"}),
    (["json_ld", "site_name"], {"source": None, "title": "OG title", "author": "Meta Author"}),
    (["canonical"], {"url": None}),
])
def test_html_sources_in_priority_order(tmp_path, dropped, expected):
    head = "".join(v for k, v in LAYERS.items() if k not in dropped)
    meta = meta_of(write(tmp_path, "p.html", page(head, BODY + "\n" + TIME)))
    full = ArticleMeta("LD headline", "LD Publisher", "Priya Natarajan, Lukas Brand", date(2025, 3, 6),
                       "https://courier.example/valdena")
    want = {**full.__dict__, **expected}
    assert meta.__dict__ == want


def test_fixture_page_metadata():
    meta = meta_of(NEWS / "landslide-harbour-courier.html")
    assert meta == ArticleMeta("Valdena landslide: final death toll put at 23 as search ends", "The Harbour Courier",
                               "Priya Natarajan", date(2025, 3, 6),
                               "https://harbourcourier.example/2025/03/06/valdena-landslide-final-toll")


# --- Markdown front matter --------------------------------------------------------------------------

FRONT = """---
title: "Valdena death toll rises to 19"
source: Northern Ledger
author: [Daniel Okafor, Ines Marr]
date: 2025-03-04
url: https://ledger.example/valdena
---
Rescuers in Valdena said on Tuesday that 19 people had died.
"""


def test_front_matter_gives_the_fields_and_is_not_indexed(tmp_path):
    path = write(tmp_path, "ledger.md", FRONT)
    doc = load_document(path)
    assert doc is not None
    assert doc.meta == ArticleMeta("Valdena death toll rises to 19", "Northern Ledger", "Daniel Okafor, Ines Marr",
                                   date(2025, 3, 4), "https://ledger.example/valdena")
    assert doc.title == doc.meta.title
    assert doc.clean_text == "Rescuers in Valdena said on Tuesday that 19 people had died."
    assert "Northern Ledger" not in doc.clean_text and "---" not in doc.clean_text
    [(s, e)] = doc.spans
    assert s == FRONT.index("Rescuers") and doc.text == FRONT  # offsets into the whole file, front matter included
    assert_exact(path)


def test_broken_front_matter_is_reported_and_still_not_indexed(tmp_path, caplog):
    path = write(tmp_path, "bad.md", "---\ntitle: [unclosed\n---\nThe article says 19 people died.\n")
    with caplog.at_level(logging.WARNING, logger="rag.ingest"):
        doc = load_document(path)
    assert doc is not None and doc.clean_text == "The article says 19 people died."
    assert "bad.md" in caplog.text and "not valid YAML" in caplog.text


def test_a_txt_file_starting_with_dashes_has_no_front_matter(tmp_path):
    doc = load_document(write(tmp_path, "rule.txt", "---\nkeywords: flood\n---\nBody text of the article.\n"))
    assert doc is not None and "keywords: flood" in doc.clean_text


# --- .txt header lines and datelines ----------------------------------------------------------------

HEADER = ("The FTX trial is bigger than one man\n\n"
          "Source: The Verge. Author: Topher L. McDougal, The Conversation. Published: 2023-09-28 (September 28, 2023).\n\n"
          "Before his fall, he made himself out to be the trustworthy face of the industry.\n")


def test_header_line_gives_the_fields_and_is_not_indexed(tmp_path):
    path = write(tmp_path, "verge.txt", HEADER)
    doc = load_document(path)
    assert doc is not None
    assert doc.meta == ArticleMeta("The FTX trial is bigger than one man", "The Verge",
                                   "Topher L. McDougal, The Conversation", date(2023, 9, 28), None)
    assert "Source:" not in doc.clean_text and "Published" not in doc.clean_text
    assert [doc.text[s:e] for s, e in doc.spans] == [
        "The FTX trial is bigger than one man",
        "Before his fall, he made himself out to be the trustworthy face of the industry."]
    assert_exact(path)


@pytest.mark.parametrize("author", ["None", "", "unknown"])
def test_an_empty_author_is_unknown(tmp_path, author):
    text = f"Headline\nSource: Business Line. Author: {author}. Published: 2023-10-28.\nBody of the article.\n"
    assert meta_of(write(tmp_path, "a.txt", text)).author is None


def test_dateline_gives_the_outlet_but_no_year_is_invented(tmp_path):
    meta = meta_of(write(tmp_path, "upi.txt", "Oct. 29 (UPI) — North Korea is sending about 10,000 soldiers.\n"))
    assert meta.source == "UPI" and meta.published is None
    meta = meta_of(write(tmp_path, "reuters.txt",
                         "Troops move north\nLONDON, Oct 29, 2024 (Reuters) - Ministers met on Tuesday.\n"))
    assert meta.source == "Reuters" and meta.published == date(2024, 10, 29)
    meta = meta_of(write(tmp_path, "ap.txt", "KYIV, Ukraine (AP) — The mayor said 12 homes burned.\n"))
    assert meta.source == "AP" and meta.published is None


def test_a_caption_credit_is_not_a_dateline(tmp_path):
    text = "Austin, left, and Kim hold a briefing in Washington. (AP)\nThe ministers met on Wednesday.\n"
    assert meta_of(write(tmp_path, "cap.txt", text)).source is None


def test_header_beats_dateline():
    meta = meta_of(NEWS / "evacuation-wire-coastline-daily.txt")
    assert meta.source == "Coastline Daily" and meta.author == "Meridian Press Agency"
    assert meta_of(NEWS / "evacuation-wire-tessel-times.md").source == "The Tessel Times"


# --- the sidecar --------------------------------------------------------------------------------------


def test_jsonl_sidecar_overrides_everything_and_is_not_an_article(tmp_path):
    write(tmp_path, "ledger.md", FRONT)
    write(tmp_path, "upi.txt", "Oct. 29 (UPI) — North Korea is sending about 10,000 soldiers.\n")
    write(tmp_path, "metadata.jsonl", "\n".join(json.dumps(r) for r in [
        {"file": "ledger.md", "source": "The Ledger", "published": "2025-03-05", "url": ""},
        {"file": "upi.txt", "date": "October 29, 2024", "author": "Lee Min"},
    ]) + "\n")
    docs = {d.doc_id: d for d in load_corpus(tmp_path)}
    assert set(docs) == {"ledger", "upi"}
    assert docs["ledger"].meta == ArticleMeta("Valdena death toll rises to 19", "The Ledger", "Daniel Okafor, Ines Marr",
                                              date(2025, 3, 5), "https://ledger.example/valdena")  # "" overrides nothing
    assert docs["upi"].meta.published == date(2024, 10, 29) and docs["upi"].meta.source == "UPI"
    assert docs["upi"].meta.author == "Lee Min"


def test_csv_sidecar(tmp_path):
    write(tmp_path, "upi.txt", "Oct. 29 (UPI) — North Korea is sending about 10,000 soldiers.\n")
    write(tmp_path, "metadata.csv", "file,title,source,author,published,url\n"
                                    'upi.txt,"Troops, and more",United Press International,,2024-10-29,\n')
    [doc] = load_corpus(tmp_path)
    assert doc.meta == ArticleMeta("Troops, and more", "United Press International", None, date(2024, 10, 29), None)


def test_a_bad_sidecar_line_is_reported_and_the_rest_counts(tmp_path, caplog):
    write(tmp_path, "a.txt", "First article about the flood in Valdena.\n")
    write(tmp_path, "b.txt", "Second article about the tram in Port Alder.\n")
    write(tmp_path, "metadata.jsonl", '{"file": "a.txt", "source": "Valley Post"}\n{not json\n'
                                      '{"source": "no file key"}\n{"file": "gone.txt", "source": "X"}\n'
                                      '{"file": "b.txt", "source": "Coastline Daily", "colour": "blue"}\n')
    with caplog.at_level(logging.WARNING, logger="rag.ingest"):
        docs = {d.doc_id: d for d in load_corpus(tmp_path)}
    assert docs["a"].meta.source == "Valley Post" and docs["b"].meta.source == "Coastline Daily"
    text = caplog.text
    assert "metadata.jsonl line 2 is not valid JSON" in text
    assert "line 3" in text and "gone.txt" in text and "colour" in text


def test_fixture_sidecar_fills_what_the_page_lacks():
    meta = meta_of(NEWS / "tram-line-coastline-daily.html")
    assert meta.source == "Coastline Daily" and meta.published == date(2025, 2, 27) and meta.author == "Felix Aro"


# --- never guessed --------------------------------------------------------------------------------------


def test_the_file_time_is_no_publication_date(tmp_path):
    path = write(tmp_path, "undated.txt", "Headline\nThe council met on Wednesday and approved the budget.\n")
    os.utime(path, (1_700_000_000, 1_700_000_000))  # 2023-11-14
    assert meta_of(path).published is None


@pytest.mark.parametrize("value", ["Tuesday", "March 4", "2025", "soon", "2025-13-45"])
def test_an_unparseable_date_is_reported_and_left_unknown(tmp_path, caplog, value):
    path = write(tmp_path, "odd.txt", f"Headline\nSource: Valley Post. Published: {value}.\nThe body says 12 died.\n")
    with caplog.at_level(logging.WARNING, logger="rag.ingest"):
        meta = meta_of(path)
    assert meta.published is None and meta.source == "Valley Post"  # nothing else is lost
    [record] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "odd.txt" in record.getMessage() and repr(value) in record.getMessage()


def test_an_unparseable_date_falls_back_to_the_next_source(tmp_path, caplog):
    head = '<meta property="article:published_time" content="yesterday">' + LAYERS["json_ld"]
    with caplog.at_level(logging.WARNING, logger="rag.ingest"):
        meta = meta_of(write(tmp_path, "p.html", page(head)))
    assert meta.published == date(2025, 3, 5) and "'yesterday'" in caplog.text


@pytest.mark.parametrize("value, expected", [
    ("2023-09-28 (September 28, 2023)", date(2023, 9, 28)),
    ("2025-03-06T23:40:00-05:00", date(2025, 3, 6)),  # the date as written, not moved to UTC
    ("Tue, 04 Mar 2025 22:30:00 +0100", date(2025, 3, 4)),
    ("6 March 2025", date(2025, 3, 6)),
    (date(2025, 3, 6), date(2025, 3, 6)),
])
def test_parse_date(value, expected):
    assert parse_date(value) == expected


@pytest.mark.parametrize("value", ["Oct. 29", "October 2024", "Tuesday", "", "n/a"])
def test_parse_date_refuses_partial_dates(value):
    with pytest.raises(ValueError):
        parse_date(value)
