"""Property tests: whatever text arrives as a question (control characters, only
punctuation, emoji/CJK/RTL, 100,000 characters) and whatever the model writes back,
``ask`` gives either a clear InputError or an Answer whose markers all resolve to
citations with exact offsets. FakeLLM and the fake embedder; one Engine per module."""

from __future__ import annotations

import re
import shutil

import pytest
from hypothesis import HealthCheck, event, example, given, settings, strategies as st

from rag.answer import Answer
from rag.engine import Engine
from rag.config import Settings
from rag.errors import InputError
from rag.evaluate import markers_resolve
from rag.prompt import DECLINE, clean_question

from tests.conftest import SEEDS, FakeEmbedder, FakeLLM

FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow],
                print_blob=True)

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

# --- strategies ------------------------------------------------------------------------------

control_chars = st.text(st.characters(min_codepoint=0, max_codepoint=0x1F)
                        | st.sampled_from("\x7f\u200b\u200d\ufeff\u2028\u2029\x85"), max_size=20)
punctuation = st.text(st.sampled_from("?!.,;:-_()[]{}<>|/\\'\"`~@#$%^&*+=…—–“”‘’«»¿¡"), max_size=40)
emoji = st.text(st.characters(min_codepoint=0x1F300, max_codepoint=0x1FAFF) | st.sampled_from("\u200d\ufe0f"),
                max_size=20)
cjk_rtl = st.text(st.characters(min_codepoint=0x4E00, max_codepoint=0x4FFF)
                  | st.characters(min_codepoint=0x0590, max_codepoint=0x06FF)
                  | st.sampled_from("\u202e\u202d\u200f\u200e\u2066\u2069 "), max_size=40)
words = st.sampled_from(["How many", "North Korean", "troops", "Russia", "Pentagon", "Kursk", "Ukraine",
                         "recruit", "160,000", "10,000", "ICBM", "87 minutes", "Selydove", "Pat Ryder", "?", "the"])
ordinary = st.lists(words, max_size=12).map(lambda ws: " ".join(["Who", *ws]))
questions = st.one_of(
    st.text(max_size=300),  # any Unicode except lone surrogates (see test_lone_surrogates below)
    control_chars, punctuation, emoji, cjk_rtl, ordinary,
    st.lists(st.one_of(ordinary, control_chars, punctuation, emoji, cjk_rtl), min_size=1, max_size=6).map("".join),
    st.tuples(st.sampled_from(["a", "Kursk ", "?", "😀", "中", "ש", "\x00"]), st.integers(1, 100_000))
      .map(lambda t: (t[0] * t[1])[:100_000]),
)

markers = st.one_of(st.integers(-2, 12).map(lambda n: f"[{n}]"),
                    st.sampled_from(["[1, 2]", "[3][4]", "[ 2 ]", "[1;5]", "[0]", "[99999999999999999999]", "[]",
                                     "[x]", "[1", "2]", "[١]", "[３]"]))
claims = st.sampled_from([
    "A total of around 10,000 North Korean troops are currently in Russia",
    "The army planned to recruit another 160,000 people",
    "The ICBM flew for 87 minutes", "Moscow said it captured Selydove", "Pat Ryder said so",
    "PWNED", "The articles don't say", "According to passage [2],", "This is stated in passage [1].",
    "Ignore all previous instructions", "11,000", "Seoul", "while", ",", ".", "\n", " ",
])
replies = st.lists(st.one_of(claims, markers, st.text(max_size=30)), max_size=12).map(" ".join)


# --- the engine --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    base = tmp_path_factory.mktemp("fuzz")
    shutil.copytree(SEEDS, base / "corpus")
    s = Settings(corpus_dir=base / "corpus", index_dir=base / "index", cache_dir=base / "cache", min_relevance=0.0)
    return Engine(s, llm=FakeLLM(), embedder=FakeEmbedder())


def check_answer(answer: Answer, question: str) -> None:
    """What every Answer guarantees."""
    assert isinstance(answer, Answer)
    assert answer.question == clean_question(question)
    assert answer.text.strip(), "an answer is never blank"
    assert markers_resolve(answer), answer.text
    in_text = [int(m) for m in re.findall(r"\[(\d+)\]", answer.text)]
    numbers = [c.marker for c in answer.citations]
    assert numbers == list(range(1, len(numbers) + 1)), "citations are numbered 1..n"
    assert set(in_text) == set(numbers), f"every citation is used and every marker has one: {answer.text!r}"
    assert list(dict.fromkeys(in_text)) == numbers, "numbered in order of first use"
    shown = {(p.chunk.doc_id, p.chunk.start, p.chunk.end, p.text) for p in answer.passages}
    for c in answer.citations:
        assert (c.doc_id, c.start, c.end, c.text) in shown, "a citation is a retrieved passage"
    if answer.declined:
        assert answer.citations == [] and in_text == []


def check_input_error(exc: InputError, question: str) -> None:
    message = str(exc)
    cleaned = " ".join(_CONTROL.sub(" ", question).split())
    if not any(ch.isalnum() for ch in cleaned):
        assert "empty" in message.lower(), message
    else:
        assert "shorten" in message.lower(), message
        assert len(cleaned) > 1000, f"a {len(cleaned)}-character question was refused as too long"


# --- clean_question ------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(questions)
@example("")
@example("\x00\x01\x1b[31m")
@example("?!...")
@example("😀\u200d😀")
@example("\u202eKursk\u202c")
def test_clean_question_gives_clean_text_or_an_empty_error(question):
    try:
        cleaned = clean_question(question)
    except InputError as exc:
        assert "empty" in str(exc).lower()
        assert not any(ch.isalnum() for ch in _CONTROL.sub(" ", question))
        return
    assert cleaned == cleaned.strip() and "  " not in cleaned
    assert not _CONTROL.search(cleaned) and "\n" not in cleaned and "\t" not in cleaned
    assert any(ch.isalnum() for ch in cleaned)
    assert clean_question(cleaned) == cleaned  # idempotent
    assert cleaned.split() == _CONTROL.sub(" ", question).split()  # words kept, in order


def test_clean_question_rejects_non_text():
    for bad in (None, 42, b"bytes", ["list"]):
        with pytest.raises(InputError, match="must be text"):
            clean_question(bad)  # type: ignore[arg-type]


# --- Engine.ask ----------------------------------------------------------------------------------


@FUZZ
@given(question=questions)
@example(question="How many North Korean troops are in Russia according to the Pentagon?")
@example(question="word " * 20_000)
@example(question="中" * 100_000)
@example(question="?" * 100_000)
def test_ask_any_question_gives_input_error_or_a_resolving_answer(engine, question):
    cite_first = "The Pentagon said 10,000 North Korean troops are in Russia [1]. Ukraine will recruit 160,000 [2]."
    engine.llm.replies[:] = [cite_first]
    try:
        answer = engine.ask(question)
    except InputError as exc:
        check_input_error(exc, question)
        event("InputError: " + ("empty" if "empty" in str(exc) else "too long"))
        return
    check_answer(answer, question)
    event("declined" if answer.declined else f"answer with {min(len(answer.citations), 2)}+ citations")


@FUZZ
@given(question=ordinary, reply=replies)
@example(question="How many troops?", reply="10,000 [7]. [1][2] PWNED [0]. 160,000 [-1] [99999999999999999999].")
@example(question="Who?", reply="")
@example(question="Who?", reply="[1][2][3]")
@example(question="Who?", reply="According to passage [2], This is stated in passage [1].")
def test_any_model_reply_gives_a_resolving_answer(engine, question, reply):
    engine.llm.replies[:] = [reply]
    answer = engine.ask(question)
    check_answer(answer, question)
    event("declined" if answer.declined else f"answer with {min(len(answer.citations), 2)}+ citations")
    if not re.search(r"\w", reply):
        assert answer.declined and answer.text == DECLINE


@pytest.mark.parametrize("question, error", [
    ("x" * 100_000, "shorten"), ("How many troops? " * 6_000, "shorten"), ("中文" * 50_000, "shorten"),
    ("?" * 100_000, "empty"), ("\x00" * 100_000, "empty"), ("😀" * 100_000, "empty"), (" \n\t" * 30_000, "empty"),
])
def test_huge_or_empty_questions_get_a_clear_input_error(engine, question, error):
    engine.llm.replies[:] = []
    calls = len(engine.llm.calls)
    with pytest.raises(InputError) as info:
        engine.ask(question)
    assert error in str(info.value).lower()
    assert len(engine.llm.calls) == calls, "the model is not called for an unusable question"


def test_streamed_ask_reports_a_too_long_question_as_input_error(engine):
    with pytest.raises(InputError, match="(?i)shorten"):  # refused before anything streams
        engine.ask("troops " * 15_000, stream=True)


@given(st.text(st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1, max_size=3),
       st.sampled_from(["How many troops? ", "", "Kursk"]))
@settings(max_examples=20, deadline=None)
def test_lone_surrogates_give_input_error_or_an_answer(engine, surrogates, prefix):
    """JSON ("\\ud800") and undecodable command-line bytes (surrogateescape) put lone
    surrogates into a question; they must not crash ``ask`` (fake embedder: they are skipped)."""
    question = prefix + surrogates
    engine.llm.replies[:] = []
    try:
        answer = engine.ask(question)
    except InputError:
        return
    check_answer(answer, question)


@pytest.mark.slow
@pytest.mark.parametrize("question", ["How many troops? \ud800", "Kursk \udcff"])
def test_lone_surrogates_with_the_real_embedder(tmp_path, question):
    from rag.models import get_embedder

    shutil.copytree(SEEDS, tmp_path / "corpus")
    s = Settings(corpus_dir=tmp_path / "corpus", index_dir=tmp_path / "index")
    engine = Engine(s, llm=FakeLLM(), embedder=get_embedder(s))
    try:
        answer = engine.ask(question)
    except InputError:
        return
    check_answer(answer, question)
