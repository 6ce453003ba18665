"""Loading and cleaning articles: what is dropped, what is kept, and that every
span is an exact slice of the file as decoded."""

from __future__ import annotations

import hashlib
import logging
import re
import shutil
from pathlib import Path

import pytest

import rag.ingest as ingest
from rag.errors import CorpusError
from rag.ingest import Document, content_spans, load_corpus, load_document

SEEDS = Path(__file__).resolve().parent.parent / "seeds"
D000, D001, D002, D003, D004 = (
    "000_3aae16b9763f2444", "001_498c3693e6a17ef7", "002_200f049a1b819fde",
    "003_79174ea0389c72b6", "004_bd4addd136b7a187",
)
HEADLINE_004 = "North Korean Troops in Russian Uniforms Are Heading toward Ukraine, US Says"
HEADLINE_003 = "North Korean Troops in Russian Uniforms Advance Towards Ukraine, Raising Concerns for US Officials"


@pytest.fixture(scope="module")
def seed_docs() -> dict[str, Document]:
    return {d.doc_id: d for d in load_corpus(SEEDS)}


def kept_lines(doc: Document) -> set[str]:
    return {line.strip() for s, e in doc.spans for line in doc.text[s:e].splitlines() if line.strip()}


def assert_spans_exact(doc: Document, raw: bytes) -> None:
    """Spans are sorted, disjoint, trimmed slices of exactly the decoded file text."""
    assert doc.text == raw.decode("utf-8-sig")
    prev_end = 0
    for s, e in doc.spans:
        assert prev_end <= s < e <= len(doc.text)
        piece = doc.text[s:e]
        assert piece == piece.strip() and piece
        prev_end = e
    assert doc.clean_text == "\n".join(doc.text[s:e] for s, e in doc.spans)


# --- the seeds ---------------------------------------------------------------------------


def test_all_seeds_load_with_exact_spans(seed_docs):
    assert set(seed_docs) == {D000, D001, D002, D003, D004}
    for doc_id, doc in seed_docs.items():
        raw = (SEEDS / f"{doc_id}.txt").read_bytes()
        assert_spans_exact(doc, raw)
        assert doc.sha256 == hashlib.sha256(raw).hexdigest()
        assert doc.path == (SEEDS / f"{doc_id}.txt").resolve()


def test_newsletter_promo_and_tagline_are_dropped(seed_docs):
    clean = seed_docs[D002].clean_text
    assert "Unlock the US Election Countdown newsletter for free" not in clean
    assert "The stories that matter on money and politics" not in clean
    assert "Read the full article here" not in clean
    assert clean.startswith("Washington and Kyiv have warned")


def test_notification_and_survey_menu_is_dropped(seed_docs):
    doc = seed_docs[D003]
    lines = kept_lines(doc)
    menu = ["Get Updates", "Get notified of breaking news, exclusive insights, and must-see stories!",
            "Notifications", "Settings", "Clear Notifications", "Use the toggle to switch on notifications",
            "• Block for 8 hours", "• Don't block", "Gender", "Select your Gender", "• Male", "• Female",
            "• Others", "Age", "Select your Age Range", "• Under 18", "• 18 to 25", "• 45 to 55", "• 55+"]
    assert not lines & set(menu)
    assert "Get notified" not in doc.clean_text and "Select your" not in doc.clean_text
    # The article ends before the menu: the last kept line is prose.
    assert doc.clean_text.rstrip().endswith(".")


def test_photo_captions_are_kept_once_without_their_credits(seed_docs):
    # A caption says who, where and when ("… on Wednesday, Oct. 30, 2024"): content, not boilerplate.
    assert "File Photo by" not in seed_docs[D001].clean_text
    assert "Kremlin Pool/EPA-EFE" not in seed_docs[D001].clean_text
    assert seed_docs[D001].clean_text.count("make a toast in Pyongyang") == 1
    # …but not the lede sentence that caption repeats: it would be indexed twice.
    assert seed_docs[D001].clean_text.count("North Korea is sending about 10,000 soldiers to Russia") == 1
    doc4 = seed_docs[D004]
    assert "(AP)" not in doc4.clean_text
    assert doc4.clean_text.count("hold a joint press briefing at the Pentagon on Wednesday, Oct. 30, 2024") == 1
    assert "via REUTERS" not in doc4.clean_text and "FILE PHOTO" not in doc4.clean_text
    assert doc4.clean_text.count("A Hwasong-18 intercontinental ballistic missile is launched") == 1
    assert "TT" not in kept_lines(doc4)


def test_a_caption_that_is_only_a_credit_or_repeats_the_article_is_dropped():
    assert content_spans("Body text.\n(AP)\nMore text.") == [(0, 10), (16, 26)]
    text = "Ministers met in Rome. (AP)\nThe talks went on. Ministers met in Rome.\n"
    assert [text[s:e] for s, e in content_spans(text)] == ["The talks went on. Ministers met in Rome."]


def test_repeated_headlines_are_kept_once(seed_docs):
    clean = seed_docs[D004].clean_text
    assert clean.count(HEADLINE_004) == 1
    assert clean.count("NKorea Leader: Longest ICBM Test 'Appropriate Military Action' against Enemies") == 1


@pytest.mark.parametrize("doc_id, phrase", [
    (D000, "recruit another 160,000 people"),
    (D000, "wrested control of Selydove"),
    (D000, "Major General Pat Ryder"),
    (D001, "Oct. 29 (UPI)"),
    (D002, "up to 2,100 soldiers"),
    (D003, "approximately 50 kilometres from the Ukrainian border"),
    (D004, "flight-time of 87 minutes"),
    (D004, "It reached an altitude of 7,000 km"),
])
def test_article_sentences_are_kept(seed_docs, doc_id, phrase):
    assert phrase in seed_docs[doc_id].clean_text


def test_titles_are_headlines_or_ledes(seed_docs):
    assert seed_docs[D004].title == HEADLINE_004
    assert seed_docs[D003].title == HEADLINE_003
    assert seed_docs[D002].title.startswith("Washington and Kyiv have warned")
    assert seed_docs[D001].title.startswith("Oct. 29 (UPI)")
    assert seed_docs[D000].title.startswith('A "small number" of North Korean troops')
    for doc in seed_docs.values():
        assert 0 < len(doc.title) <= 101 and "\n" not in doc.title
        if doc.title.endswith("…"):  # shortened at a word boundary of the first content line that is no caption
            stem = doc.title[:-1]
            first = next(line for line in doc.clean_text.split("\n") if line.startswith(stem))
            assert first[len(stem)] == " "


# --- unreadable files ------------------------------------------------------------------


def test_binary_and_non_utf8_files_are_skipped_with_a_warning(corpus, caplog):
    (corpus / "image.txt").write_bytes(b"GIF89a\x00\x01\x02 not text at all")
    (corpus / "latin1.txt").write_bytes("Caf\xe9 in M\xfcnchen reopened today.".encode("latin-1"))
    with caplog.at_level(logging.WARNING, logger="rag.ingest"):
        docs = load_corpus(corpus)
    assert {d.doc_id for d in docs} == {D000, D001, D002, D003, D004}
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("image.txt" in m and "binary" in m for m in messages), messages
    assert any("latin1.txt" in m and "UTF-8" in m for m in messages), messages


def test_unreadable_file_is_skipped_not_fatal(corpus, caplog, monkeypatch):
    """A file that cannot be opened (permissions, deleted meanwhile) is skipped with a warning."""
    locked = corpus / "locked.txt"
    locked.write_text("A perfectly good article that nobody may read.\n", encoding="utf-8")
    real_read = Path.read_bytes

    def read_bytes(self: Path) -> bytes:
        if self.name == "locked.txt":
            raise PermissionError(13, "Permission denied", str(self))
        return real_read(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    with caplog.at_level(logging.WARNING, logger="rag.ingest"):
        docs = load_corpus(corpus)
    assert len(docs) == 5
    assert any("locked.txt" in r.getMessage() for r in caplog.records)


def test_oversized_file_is_skipped(corpus, caplog, monkeypatch):
    monkeypatch.setattr(ingest, "MAX_FILE_BYTES", 5_000)
    with caplog.at_level(logging.WARNING, logger="rag.ingest"):
        docs = load_corpus(corpus)
    sizes = {p.stem: p.stat().st_size for p in corpus.iterdir()}
    assert {d.doc_id for d in docs} == {k for k, v in sizes.items() if v <= 5_000}
    assert any("larger than" in r.getMessage() for r in caplog.records)


def test_empty_folder_raises_actionable_error(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.docx").write_bytes(b"PK\x03\x04")  # not an article type
    with pytest.raises(CorpusError, match=r"no articles.*\.txt.*Add some"):
        load_corpus(empty)


def test_folder_of_only_unreadable_files_raises(tmp_path, caplog):
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "a.txt").write_bytes(b"\x00\x01\x02\x03")
    (folder / "b.txt").write_bytes(b"\xff\xfe\xfa bad bytes")
    (folder / "c.txt").write_text("\n   \n\t\n", encoding="utf-8")  # nothing but whitespace
    with caplog.at_level(logging.WARNING, logger="rag.ingest"), \
            pytest.raises(CorpusError, match=r"No readable articles in .*every file was skipped"):
        load_corpus(folder)
    text = caplog.text
    assert "a.txt" in text and "b.txt" in text and "c.txt" in text


def test_missing_folder_raises(tmp_path):
    with pytest.raises(CorpusError, match=r"does not exist.*Point to a folder"):
        load_corpus(tmp_path / "nowhere")


def test_a_file_is_not_a_folder(tmp_path):
    f = tmp_path / "article.txt"
    f.write_text("Some text.", encoding="utf-8")
    with pytest.raises(CorpusError, match="does not exist"):
        load_corpus(f)


# --- duplicates and names ----------------------------------------------------------------


def test_exact_duplicate_is_skipped_with_a_warning(corpus, caplog):
    shutil.copy(corpus / f"{D002}.txt", corpus / "zz copy of ft.txt")
    with caplog.at_level(logging.WARNING, logger="rag.ingest"):
        docs = load_corpus(corpus)
    assert [d.doc_id for d in docs] == [D000, D001, D002, D003, D004]
    assert any("zz copy of ft.txt" in r.getMessage() and D002 in r.getMessage() for r in caplog.records)


def test_duplicate_with_other_line_endings_is_still_a_duplicate(corpus, caplog):
    raw = (corpus / f"{D000}.txt").read_bytes()
    (corpus / "zz crlf.txt").write_bytes(raw.replace(b"\n", b"\r\n"))
    with caplog.at_level(logging.WARNING, logger="rag.ingest"):
        docs = load_corpus(corpus)
    assert "zz crlf" not in {d.doc_id for d in docs}
    assert "zz crlf.txt" in caplog.text


def test_same_stem_different_suffix_does_not_give_two_docs_one_id(corpus, caplog):
    """doc_id is the stem, so ``x.txt`` and ``x.md`` cannot both be loaded under one id."""
    (corpus / "story.md").write_text("The first story is about rain in Kyiv.\n", encoding="utf-8")
    (corpus / "story.txt").write_text("A different story is about snow in Seoul.\n", encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="rag.ingest"):
        docs = load_corpus(corpus)
    ids = [d.doc_id for d in docs]
    assert len(ids) == len(set(ids)) == 6
    assert "story.txt" in caplog.text


def test_names_with_spaces_and_non_ascii_load(tmp_path):
    folder = tmp_path / "Ärtikel ordner"
    folder.mkdir()
    names = ["north korea – troops.txt", "Северная Корея.txt", "北朝鮮 ニュース.md", "café report.TXT"]
    for i, name in enumerate(names):
        (folder / name).write_text(f"Article number {i} says {i + 10} things happened.\n", encoding="utf-8")
    docs = load_corpus(folder)
    assert sorted(d.doc_id for d in docs) == sorted(Path(n).stem for n in names)
    for doc in docs:
        assert doc.path.exists() and doc.path.stem == doc.doc_id
        assert doc.text[doc.spans[0][0]:doc.spans[0][1]].startswith("Article number")


def test_utf8_bom_is_not_part_of_the_text(tmp_path):
    path = tmp_path / "bom.txt"
    path.write_bytes("\ufeffHeadline with a BOM\nThe body says 42 things.\n".encode("utf-8"))
    doc = load_document(path)
    assert doc is not None and doc.title == "Headline with a BOM" and not doc.text.startswith("\ufeff")
    assert_spans_exact(doc, path.read_bytes())


# --- formats ---------------------------------------------------------------------------------


HTML = """<!DOCTYPE html>
<html>
<head>
<title>Ignored &amp; page title</title>
<style>
body { color: red; }
</style>
<script>
var tracker = "analytics";
</script>
</head>
<body>
<h1>Troops &amp; tanks reach Kursk</h1>
<p>The <b>Pentagon</b> said 10,000 troops were in Russia. <a
href="https://example.com/x">More</a> arrived later.</p>
<!-- a comment > with a bracket -->
<p>Officials met in Washington on Wednesday.</p>
</body>
</html>
"""


def test_html_tags_are_blanked_without_shifting_offsets(tmp_path):
    path = tmp_path / "page.html"
    path.write_text(HTML, encoding="utf-8")
    doc = load_document(path)
    assert doc is not None
    assert len(doc.text) == len(HTML)
    # Every character is where it was in the file, blanked to a space, or an entity decoded in place.
    entities = [m.span() for m in re.finditer(r"&\w+;", HTML)]
    assert all(t == h or t == " " or any(a <= i < b for a, b in entities)
               for i, (t, h) in enumerate(zip(doc.text, HTML)))
    at = HTML.index("Troops &amp; tanks")
    assert doc.text[at:at + 18] == "Troops     & tanks"  # read as "&", padded where the entity was
    assert all(doc.text[s:e] == doc.text[s:e].strip() != "" for s, e in doc.spans)
    clean = doc.clean_text
    assert "<" not in clean and "href" not in clean
    assert "Pentagon" in clean and "10,000 troops" in clean and "Officials met in Washington" in clean
    i = HTML.index("Officials met")
    assert doc.text[i:i + 13] == "Officials met"
    assert "tracker" not in clean and "color: red" not in clean  # script and style are not article text
    assert "with a bracket" not in clean
    assert doc.title == "Ignored & page title"  # entities unescaped for display only


def test_crlf_line_endings_keep_exact_offsets(tmp_path):
    lf = (SEEDS / f"{D004}.txt").read_bytes()
    path = tmp_path / "crlf.txt"
    path.write_bytes(lf.replace(b"\n", b"\r\n"))
    doc = load_document(path)
    ref = load_document(SEEDS / f"{D004}.txt")
    assert doc is not None and ref is not None
    assert_spans_exact(doc, path.read_bytes())
    assert "\r" in doc.text
    assert all(doc.text[e - 1] != "\r" for _, e in doc.spans)
    assert doc.clean_text.replace("\r", "") == ref.clean_text
    assert doc.title == ref.title == HEADLINE_004


def test_content_spans_drop_lines_in_the_middle_and_split_blocks():
    text = "Headline here\n\nFirst paragraph.\nRead more\nSecond paragraph.\nAdvertisement\n\nThird one.\n"
    spans = content_spans(text)
    assert [text[s:e] for s, e in spans] == ["Headline here\n\nFirst paragraph.", "Second paragraph.", "Third one."]


def test_bullets_of_article_text_are_kept():
    text = "Key points:\n• North Korea sent 10,000 troops to Russia.\n- Some are in Kursk already.\n"
    kept = "\n".join(text[s:e] for s, e in content_spans(text))
    assert "10,000 troops" in kept and "in Kursk already" in kept


def test_repeated_line_is_kept_once_even_away_from_boilerplate():
    text = "Troops reach Kursk\n\nThe first sentence is here.\nTroops reach Kursk\nThe second sentence is here.\n"
    kept = [text[s:e] for s, e in content_spans(text)]
    assert kept == ["Troops reach Kursk\n\nThe first sentence is here.", "The second sentence is here."]
