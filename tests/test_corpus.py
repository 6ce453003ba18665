"""Adding articles: each file checked with a reason a user understands, feeds turned into
articles, pages fetched from a local HTTP server (never the internet), then indexed."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from rag import cli
from rag.corpus import Rejected, add_files, add_sources, safe_filename
from rag.ingest import load_corpus, load_document

from .pdf_maker import make_pdf
from .test_formats import NO_ARTICLE

NEWS = Path(__file__).resolve().parent / "data" / "news" / "corpus"
ARTICLE = "Port Alder council approves budget\nThe council approved a budget of 84.6 million crowns on Wednesday.\n"

FEED = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/">
<channel>
<title>Valley Post – Brenna Valley news</title>
<link>https://valleypost.example/</link>
<item>
<title>Valdena landslide: 12 dead, 30 missing</title>
<link>https://valleypost.example/2025/03/03/valdena</link>
<guid>vp-2025-0303-1</guid>
<dc:creator>Mira Halloran</dc:creator>
<pubDate>Mon, 03 Mar 2025 23:10:00 +0100</pubDate>
<description>&lt;p&gt;At least &lt;b&gt;12 people&lt;/b&gt; were killed when a hillside gave way above Valdena.&lt;/p&gt;&lt;p&gt;About 30 people are missing, police said.&lt;/p&gt;</description>
</item>
<item>
<title>Tram line opens &amp; fares stay the same</title>
<link>https://valleypost.example/2025/02/27/tram</link>
<pubDate>Thu, 27 Feb 2025 09:00:00 +0100</pubDate>
<description>Port Alder's new tram line opened to passengers on Thursday morning.</description>
</item>
<item>
<title>Photo gallery: the valley in snow</title>
<link>https://valleypost.example/gallery</link>
</item>
</channel>
</rss>
"""


def write(folder: Path, name: str, data: str | bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


# --- add_files --------------------------------------------------------------------------------------


def test_good_files_are_copied_in_and_bad_ones_get_a_reason(tmp_path):
    incoming, corpus = tmp_path / "incoming", tmp_path / "corpus"
    write(corpus, "existing.txt", ARTICLE)
    files = [
        write(incoming, "good.txt", "Tram line opens\nThe line has 11 stops and trams every eight minutes.\n"),
        write(incoming, "page.html", (NEWS / "landslide-harbour-courier.html").read_bytes()),
        write(incoming, "report.pdf", make_pdf([["The council met on Wednesday and approved the budget."]])),
        write(incoming, "notes.docx", b"PK\x03\x04"),
        write(incoming, "big.txt", "word " * 400),
        write(incoming, "empty.md", b""),
        write(incoming, "blank.md", " \n\n"),
        write(incoming, "binary.txt", b"PK\x03\x04\x00\x00\x01\x02" * 64),
        write(incoming, "latin1.txt", "Café owners said prices rose.".encode("latin-1")),
        write(incoming, "front.html", NO_ARTICLE),
        write(incoming, "scan.pdf", make_pdf([[]])),
        write(incoming, "copy.txt", ARTICLE),
        write(incoming, "crlf copy.txt", ARTICLE.replace("\n", "\r\n")),
        write(incoming / "other", "existing.md", "Another article with the same name as one in the corpus.\n"),
    ]
    result = add_files(files, corpus, max_bytes=1500)
    assert [p.name for p in result.added] == ["good.txt", "report.pdf"]
    assert (corpus / "good.txt").read_bytes() == files[0].read_bytes()
    reasons = {r.name: r.reason for r in result.rejected}
    assert reasons == {
        "page.html": "it is larger than 0 MB (3,806 bytes)",
        "notes.docx": "only .txt, .md, .html and .pdf files can be added",
        "big.txt": "it is larger than 0 MB (2,000 bytes)",
        "empty.md": "it is empty",
        "blank.md": "it is empty",
        "binary.txt": "it looks like a binary file, not text",
        "latin1.txt": "it is not valid UTF-8 text (byte 3); re-save it as UTF-8 to index it",
        "front.html": "no article text in it",
        "scan.pdf": "no text layer: run OCR on it first (it holds only images of text, or nothing)",
        "copy.txt": "the same file is already in the corpus as existing.txt",
        "crlf copy.txt": "it is the same article as existing.txt, already in the corpus",
        "existing.md": "a file with this name is already in the corpus; rename it to add it",
    }
    assert sorted(p.name for p in corpus.iterdir()) == ["existing.txt", "good.txt", "report.pdf"]


def test_a_smaller_cap_and_fewer_suffixes_can_be_asked_for(tmp_path):
    """A caller can ask for a smaller size cap (the web UI's 2 MB) and fewer formats."""
    upload = write(tmp_path / "gradio", "tmp123", "x" * (2 * 1024 * 1024 + 1))
    result = add_files([upload], tmp_path / "corpus", names=["../../big one.md"], max_bytes=2 * 1024 * 1024,
                       suffixes=(".txt", ".md"))
    assert result.rejected == [Rejected("big one.md", "it is larger than 2 MB (2,097,153 bytes)")]
    pdf = write(tmp_path / "gradio", "tmp456", b"%PDF-1.4")
    result = add_files([pdf], tmp_path / "corpus", names=["report.pdf"], suffixes=(".txt", ".md"))
    assert result.rejected == [Rejected("report.pdf", "only .txt and .md files can be added")]


def test_names_are_reduced_to_safe_base_names():
    assert safe_filename("../../etc/passwd.txt") == "passwd.txt"
    assert safe_filename("C:\\Users\\x\\notes.md") == "notes.md"
    assert safe_filename(".hidden.txt") == "hidden.txt"
    assert safe_filename('a<b>"c".txt') == "a_b__c_.txt"
    assert safe_filename("..") is None and safe_filename("") is None


def test_two_copies_in_one_batch_add_one(tmp_path):
    a = write(tmp_path / "in", "a.txt", ARTICLE)
    b = write(tmp_path / "in2", "b.txt", ARTICLE)
    result = add_files([a, b], tmp_path / "corpus")
    assert [p.name for p in result.added] == ["a.txt"]
    assert result.rejected == [Rejected("b.txt", "the same file is already in the corpus as a.txt")]


# --- feeds ------------------------------------------------------------------------------------------


def test_a_feed_file_becomes_one_markdown_article_per_item(tmp_path):
    feed = write(tmp_path, "valley.rss", FEED)
    corpus = tmp_path / "corpus"
    result = add_sources([str(feed)], corpus)
    assert len(result.added) == 2 and all(p.suffix == ".md" for p in result.added)
    [no_text] = result.rejected
    assert "an item of" in no_text.name and no_text.reason == "the feed item has no text, only a title"
    docs = {d.meta.title: d for d in load_corpus(corpus)}
    slide = docs["Valdena landslide: 12 dead, 30 missing"]
    assert slide.meta.source == "Valley Post – Brenna Valley news" and slide.meta.author == "Mira Halloran"
    assert slide.meta.published == date(2025, 3, 3)  # as the feed wrote it, not moved to UTC
    assert slide.meta.url == "https://valleypost.example/2025/03/03/valdena"
    assert "At least 12 people were killed" in slide.clean_text and "<p>" not in slide.text and "<b>" not in slide.text
    assert "About 30 people are missing" in slide.clean_text
    assert "source:" not in slide.clean_text  # the front matter is not article text
    assert "Tram line opens & fares stay the same" in docs
    again = add_sources([str(feed)], corpus)  # the same feed twice adds nothing twice
    assert not again.added and all("already in the corpus" in r.reason for r in again.rejected[1:])


@pytest.mark.parametrize("content, why", [
    ("Valdena landslide: 12 dead\n", "it is not an RSS or Atom feed: it is not XML"),
    ('{"items": []}', "it is not an RSS or Atom feed: it is not XML"),
    ("<rss><channel><title>Broken<item></channel>", "its XML is broken"),
    ('<?xml version="1.0"?><catalog><book>Dune</book></catalog>', "neither RSS nor Atom"),
    ('<rss version="2.0"><channel><title>Empty</title></channel></rss>', "the feed has no items"),
])
def test_a_feed_that_is_not_one_is_named_with_the_reason(tmp_path, content, why):
    feed = write(tmp_path, "news.rss", content)
    result = add_sources([str(feed)], tmp_path / "corpus")
    assert not result.added
    [rejected] = result.rejected
    assert rejected.name == str(feed) and why in rejected.reason


def test_a_missing_source_is_named(tmp_path):
    result = add_sources([str(tmp_path / "nowhere.txt")], tmp_path / "corpus")
    assert result.rejected == [Rejected(str(tmp_path / "nowhere.txt"), "there is no such file or folder")]


def test_a_folder_adds_its_article_files(tmp_path):
    folder = tmp_path / "saved"
    for name in ("landslide-harbour-courier.html", "tram-line-coastline-daily.html", "budget-alder-gazette.txt"):
        shutil.copy(NEWS / name, write(folder, "x", "").parent / name)
    (folder / "x").unlink()
    (folder / "page_files").mkdir()  # a browser's folder of images beside a saved page
    result = add_sources([str(folder)], tmp_path / "corpus")
    assert sorted(p.name for p in result.added) == ["budget-alder-gazette.txt", "landslide-harbour-courier.html",
                                                    "tram-line-coastline-daily.html"]


# --- addresses, from a server on this machine -------------------------------------------------------------


@pytest.fixture
def server() -> Iterator[str]:
    """A web server on 127.0.0.1 serving a page, a feed, a section front and a 404."""
    routes = {
        "/2025/03/06/valdena-landslide-final-toll.html": ("text/html; charset=utf-8",
                                                          (NEWS / "landslide-harbour-courier.html").read_bytes()),
        "/feeds/valley.xml": ("application/rss+xml", FEED.encode()),
        "/feed-in-disguise.rss": ("text/plain", b"Just some words, no feed here."),
        "/local/": ("text/html", NO_ARTICLE.encode()),
        "/latin1": ("text/html; charset=iso-8859-1",
                    "<html><body><article><p>Caf\xe9 owners in Port Alder said prices rose by 4 per cent this year."
                    "</p></article></body></html>".encode("latin-1")),
    }

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            if self.path not in routes:
                self.send_error(404, "Not Found")
                return
            kind, body = routes[self.path]
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def test_a_page_address_is_fetched_and_saved_as_html(tmp_path, server):
    corpus = tmp_path / "corpus"
    result = add_sources([f"{server}/2025/03/06/valdena-landslide-final-toll.html", f"{server}/latin1"], corpus)
    assert not result.rejected
    page, latin = result.added
    assert page.name.startswith("valdena-landslide-final-toll-") and page.suffix == ".html"
    assert page.read_bytes() == (NEWS / "landslide-harbour-courier.html").read_bytes()
    doc = load_document(page)
    assert doc is not None and doc.meta.source == "The Harbour Courier" and doc.meta.published == date(2025, 3, 6)
    assert "Café owners" in latin.read_text(encoding="utf-8")  # saved as UTF-8, the loader's encoding


def test_a_feed_address_adds_its_items(tmp_path, server):
    result = add_sources([f"{server}/feeds/valley.xml"], tmp_path / "corpus")
    assert len(result.added) == 2
    assert {d.meta.source for d in load_corpus(tmp_path / "corpus")} == {"Valley Post – Brenna Valley news"}


def test_bad_addresses_are_named_with_the_reason(tmp_path, server):
    sources = [f"{server}/local/", f"{server}/missing", "ftp://example.org/feed", f"{server}/feed-in-disguise.rss"]
    result = add_sources(sources, tmp_path / "corpus")
    assert not result.added
    reasons = {r.name: r.reason for r in result.rejected}
    assert reasons[f"{server}/local/"] == "no article text in it"
    assert reasons[f"{server}/missing"] == "the server answered 404 Not Found"
    assert reasons["ftp://example.org/feed"] == "it is not a web address (http:// or https://)"
    assert reasons[f"{server}/feed-in-disguise.rss"].startswith("it is not an RSS or Atom feed: it is not XML")
    assert not (tmp_path / "corpus").exists() or not list((tmp_path / "corpus").iterdir())


def test_an_address_that_cannot_be_reached_is_named(tmp_path):
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    [rejected] = add_sources([f"http://127.0.0.1:{port}/x"], tmp_path / "corpus").rejected
    assert rejected.reason.startswith("it could not be fetched (") and "online" in rejected.reason


# --- rag add ------------------------------------------------------------------------------------------


def test_rag_add_adds_then_indexes(tmp_path, server, monkeypatch, capsys, fake_embedder):
    import rag.models

    monkeypatch.setattr(rag.models, "get_embedder", lambda settings: fake_embedder)
    corpus, index_dir = tmp_path / "corpus", tmp_path / "index"
    write(corpus, "budget.txt", (NEWS / "budget-alder-gazette.txt").read_bytes())
    feed = write(tmp_path, "valley.rss", FEED)
    code = cli.main(["add", str(feed), f"{server}/2025/03/06/valdena-landslide-final-toll.html",
                     f"{server}/local/", "--corpus-dir", str(corpus), "--index-dir", str(index_dir)])
    out, err = capsys.readouterr()
    assert code == 1  # something was not added, and it says what
    assert out.count("Added ") == 3 and "Indexed 4 documents" in out
    assert f"warning: {server}/local/ was not added: no article text in it." in err
    assert "the feed item has no text, only a title" in err

    from rag.index import load

    index = load(index_dir, corpus)
    sources = {info.source for info in index.docs.values()}
    assert sources == {"The Alder Gazette", "Valley Post – Brenna Valley news", "The Harbour Courier"}
    assert cli.main(["add", str(NEWS / "football-northern-ledger.md"), "--corpus-dir", str(corpus),
                     "--index-dir", str(index_dir)]) == 0
