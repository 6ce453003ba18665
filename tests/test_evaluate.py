"""`rag eval --set`: the benchmark scoring rules, folder sets, the per-type report and the
LLM reply cache, on the tiny set in tests/data/evalset with the fake models (one slow
test runs it with the real ones)."""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from pathlib import Path

import pytest

from rag.answer import Answer, Citation, Timings
from rag.cli import main
from rag.errors import InputError
from rag.evaluate import CachedLLM, load_set, markdown_table, run_eval, run_sets
from rag.evaluate.rules import (declines, evidence_cited, evidence_retrieved, first_yes_no, is_correct, normalize,
                                span_correct, yesno_correct)

from tests.conftest import FakeLLM

EVALSET = Path(__file__).parent / "data" / "evalset"

# Which figure each question's fake answer states; the reply cites the shown passage holding it.
SCRIPT = {
    "visitors": ("12,500", "The festival drew 12,500 visitors"),
    "design": ("Okafor", "Engineer Tomás Okafor led the design team"),
    "before": ("Kestrel", "Yes, the Kestrel footbridge opened on Friday"),
}


def scripted(messages: list[dict[str, str]], script: dict[str, tuple[str, str]] = SCRIPT) -> str:
    user = messages[-1]["content"]
    question = user.rsplit("Question:", 1)[-1] if "Question:" in user else user[-300:]
    passages = re.findall(r"\[(\d+)\] (.*?)(?=\n\n\[\d+\] |\n\nAnswer the question)", user, re.S)
    for key, (figure, sentence) in script.items():
        if key in question:
            for n, body in passages:
                if figure in body:
                    return f"{sentence} [{n}]."
    return "The articles don't say."


def answer(text: str, declined: bool = False, cited: bool = False) -> Answer:
    citations = [Citation(1, "a", "A", Path("a.txt"), 0, 4, "text", 0.9)] if cited else []
    return Answer("q", text, citations, [], declined, Timings(0.0, None, 0.0))


# --- scoring rules --------------------------------------------------------------------------


def test_span_ignores_case_accents_and_punctuation():
    assert span_correct("Engineer TOMÁS OKAFOR led it [1].", ["tomas okafor"], declined=False)
    assert span_correct("Sam Bankman\u2011Fried’s firm", ["sam bankman-fried"], declined=False)  # any hyphen
    assert span_correct("SBF (Sam Bankman Fried)", ["sam bankman-fried"], declined=False)
    assert span_correct("It premiered on Nov. 12, 2020 [2].", ["nov 12, 2020"], declined=False)
    assert not span_correct("It premiered on Nov. 13, 2020 [2].", ["nov 12, 2020"], declined=False)


def test_thousands_separator_is_ignored_but_not_a_list_comma():
    assert span_correct("About 10,000 troops [1].", ["10000"], declined=False)
    assert span_correct("About 10000 troops [1].", ["10,000"], declined=False)
    assert normalize("on 12, 2020") == " on 12 2020 "  # a comma and a space: no thousands separator
    assert not span_correct("About 10,500 troops.", ["10000"], declined=False)


def test_span_matches_whole_words_and_never_when_declined():
    assert not span_correct("The Amazonian rainforest [1].", ["amazon"], declined=False)
    assert not span_correct("Athens [1].", ["athens"], declined=True)


def test_first_yes_or_no_wins():
    assert first_yes_no("No, it did not; yes, the later report did.") == "no"
    assert first_yes_no("Yes [1]. No other outlet said so.") == "yes"
    assert yesno_correct("Yes, it did [1].", "yes", declined=False)
    assert not yesno_correct("Yes, it did [1].", "yes", declined=True)
    assert not yesno_correct("No, and yes.", "yes", declined=False)


def test_yes_or_no_inside_another_word_does_not_count():
    assert first_yes_no("Her eyes say nobody knows; yesterday's report: no.") == "no"
    assert first_yes_no("Nobody noticed, yesterday.") is None
    assert not yesno_correct("The eyes have it.", "yes", declined=False)


def test_decline_needs_the_decline_flag_and_no_citations():
    assert declines(answer("The articles don't say.", declined=True))
    assert not declines(answer("The articles don't say [1].", declined=True, cited=True))
    assert not declines(answer("Athens [1].", cited=True))
    assert is_correct("decline", [], answer("The articles don't say.", declined=True))
    assert not is_correct("span", ["athens"], answer("The articles don't say.", declined=True))


def test_evidence_is_matched_by_file_name():
    from rag.chunking import Chunk
    from rag.retrieve import Passage

    shown = [Passage(Chunk(stem, 0, 0, 4, "text"), stem, Path(f"/corpus/{stem}.txt"), 1.0, 0.5) for stem in "ab"]
    cite_b = Citation(1, "b", "b", Path("/corpus/b.txt"), 0, 4, "text", 0.5)
    a = Answer("q", "Text [1].", [cite_b], shown, False, Timings(0.0, 0.1, 0.2))
    assert evidence_retrieved(a, ["a.txt"]) and not evidence_retrieved(a, ["c.txt"])
    assert evidence_cited(a, ["b.txt", "c.txt"]) and not evidence_cited(a, ["a.txt"])


# --- folder sets ----------------------------------------------------------------------------


def test_folder_set_loads_with_its_fields():
    qset = load_set(EVALSET)
    assert qset.name == "evalset" and qset.corpus_dir == EVALSET / "corpus"
    assert [q.id for q in qset.questions] == ["ev_1", "ev_2", "ev_3", "ev_4"]
    q = qset.questions[2]
    assert (q.type, q.answer_kind, q.answers, q.evidence_files) == ("temporal", "yesno", ["yes"],
                                                                   ["ev_bridge.txt", "ev_ferry.txt"])


def _copy_set(tmp_path: Path) -> Path:
    folder = tmp_path / "set"
    shutil.copytree(EVALSET, folder)
    return folder


@pytest.mark.parametrize("line, problem", [
    ("{not json", "line 5: not valid JSON"),
    ('{"id": "x", "question": "Q?", "answers": ["a"], "type": "t", "answer_kind": "span"}', "evidence_files"),
    ('{"id": "x", "question": "Q?", "answers": ["a"], "type": "t", "answer_kind": "guess", "evidence_files": []}',
     "answer_kind 'guess'"),
    ('{"id": "x", "question": "Q?", "answers": ["maybe"], "type": "t", "answer_kind": "yesno", "evidence_files": []}',
     "yesno"),
    ('{"id": "x", "question": "Q?", "answers": ["a"], "type": "t", "answer_kind": "span", '
     '"evidence_files": ["no.txt"]}',
     "no.txt not in"),
    ('{"id": "ev_1", "question": "Q?", "answers": ["a"], "type": "t", "answer_kind": "span", "evidence_files": []}',
     "used twice"),
])
def test_bad_question_line_is_named(tmp_path, line, problem):
    folder = _copy_set(tmp_path)
    with open(folder / "questions.jsonl", "a") as f:
        f.write(line + "\n")
    with pytest.raises(InputError, match="questions.jsonl") as err:
        load_set(folder)
    assert problem in str(err.value)


def test_folder_without_corpus_is_a_clear_error(tmp_path, capsys):
    assert main(["eval", "--set", str(tmp_path)]) == 1
    assert f"Question set {tmp_path} needs a corpus/ folder" in capsys.readouterr().err


# --- running sets ---------------------------------------------------------------------------


def test_folder_set_is_scored_per_type_with_evidence(settings, fake_embedder, tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # to see the temporary index go
    [rep] = run_sets(settings, [EVALSET], llm=FakeLLM([scripted] * 20), embedder=fake_embedder, echo=False)
    rows = {r.id: r for r in rep.rows}
    assert rows["ev_1"].correct and rows["ev_1"].cited_files == ["ev_festival.txt"]
    assert rows["ev_2"].correct and rows["ev_2"].evidence_cited and rows["ev_2"].evidence_retrieved
    assert rows["ev_3"].correct and rows["ev_3"].markers_valid
    assert rows["ev_4"].correct and rows["ev_4"].declined and rows["ev_4"].evidence_retrieved is None
    assert [(g.type, g.n) for g in rep.groups] == [("fact", 2), ("temporal", 1), ("null", 1), ("all", 4)]
    assert rep.total.correct == 1.0 and rep.total.declined == 0.25 and rep.total.evidence_cited == 1.0
    assert rep.groups[2].evidence_retrieved is None  # nothing answerable among the null questions
    assert not list(tmp_path.glob("rag-eval-*"))
    table = markdown_table([rep]).splitlines()
    assert table[0].startswith("| set | type | n | correct | declined | evidence retrieved | evidence cited")
    assert "| evalset | fact | 2 | 100% | 0% | 100% | 100% | 100% |" in table[2]
    assert table[4].startswith("| evalset | null | 1 | 100% | 100% | — | — |")
    assert table[5].startswith("| evalset | **all** | 4 | 100% | 25% |")


def test_wrong_answers_are_counted_wrong(settings, fake_embedder):
    """Answers that pass the citation check but say the wrong thing: a wrong name, a "no"."""
    script = dict(SCRIPT, design=("Calder", "The Kestrel footbridge over the Calder was designed by the Valley Courier"),
                  before=("Kestrel", "No, the Kestrel footbridge opened on Friday"))

    def wrong(messages):
        question = messages[-1]["content"].rsplit("Question:", 1)[-1]
        key = next((k for k in script if k in question), None)
        return scripted(messages, {key: script[key]} if key else {})

    [rep] = run_sets(settings, [EVALSET], llm=FakeLLM([wrong] * 20), embedder=fake_embedder, echo=False, limit=3)
    rows = {r.id: r for r in rep.rows}
    assert len(rep.rows) == 3  # --limit: the first 3 only
    assert rows["ev_1"].correct
    assert "Valley Courier" in rows["ev_2"].answer and not rows["ev_2"].correct and not rows["ev_2"].declined
    assert rows["ev_2"].evidence_cited and rows["ev_2"].cited_files == ["ev_bridge.txt"]  # cited, and still wrong
    assert rows["ev_3"].answer.startswith("No") and not rows["ev_3"].correct
    assert [(g.type, g.correct) for g in rep.groups] == [("fact", 0.5), ("temporal", 0.0), ("all", 1 / 3)]


def test_own_set_keeps_its_scores(settings, fake_embedder):
    """The bundled set run among others reports exactly what run_eval reports."""
    llm = FakeLLM([scripted] * 10)
    reports = run_sets(settings, [EVALSET, "own"], llm=llm, embedder=fake_embedder, echo=False, limit=3)
    assert [r.name for r in reports] == ["evalset", "own"]
    own = reports[1]
    alone = run_eval(settings, limit=3, echo=False, engine=_engine(settings, fake_embedder))
    keep = ("answers_correct", "markers_valid", "citations_supported", "unanswerable_declined", "recall_at_k")
    assert {k: own.totals[k] for k in keep} == {k: alone.totals[k] for k in keep}
    assert [r.correct for r in own.rows] == [r.correct for r in alone.results]
    assert own.total.n == 3 and own.rows[0].type == "fact"


def _engine(settings, embedder):
    from rag.engine import Engine

    return Engine(settings, llm=FakeLLM([scripted] * 10), embedder=embedder)


# --- the LLM cache --------------------------------------------------------------------------


def test_second_run_through_the_cache_calls_no_model(settings, fake_embedder, tmp_path):
    cache = tmp_path / "replies.json"
    first_llm = FakeLLM([scripted] * 20)
    first = run_sets(settings, [EVALSET], llm=first_llm, embedder=fake_embedder, echo=False, llm_cache=cache)
    assert len(first_llm.calls) >= 3
    second_llm = FakeLLM([scripted] * 20)
    second = run_sets(settings, [EVALSET], llm=second_llm, embedder=fake_embedder, echo=False, llm_cache=cache)
    assert second_llm.calls == []
    assert [r.answer for r in second[0].rows] == [r.answer for r in first[0].rows]
    assert all(r.cached_calls == r.model_calls for r in second[0].rows)
    assert json.loads(cache.read_text())["format"] == "rag-llm-cache/1"


def test_cache_regenerates_only_a_changed_prompt(tmp_path):
    cache = tmp_path / "replies.json"
    llm = CachedLLM(FakeLLM(["one", "two", "three"]), cache)
    ask = [{"role": "user", "content": "A?"}]
    assert "".join(llm.stream(ask, 10, 0.0)) == "one"
    again = CachedLLM(FakeLLM(["fresh"]), cache)
    assert "".join(again.stream(ask, 10, 0.0)) == "one"  # same prompt: replayed
    assert "".join(again.stream(ask, 11, 0.0)) == "fresh"  # other max_tokens: generated
    assert (again.hits, again.misses) == (1, 1)
    assert again.count_tokens("abcdefgh") == 2  # passed through to the model


def test_reply_cut_short_is_not_cached(tmp_path):
    cache = tmp_path / "replies.json"
    llm = CachedLLM(FakeLLM(["one two three"]), cache)
    stream = llm.stream([{"role": "user", "content": "A?"}], 10, 0.0)
    next(stream)
    stream.close()
    assert not cache.exists()


def test_damaged_cache_is_a_clear_error(tmp_path):
    cache = tmp_path / "replies.json"
    cache.write_text("{half")
    with pytest.raises(InputError, match=f"LLM cache {cache} cannot be read.*Delete it"):
        CachedLLM(FakeLLM(), cache)


def test_cli_eval_reports_the_cache_and_writes_json(fake_embedder, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("rag.models.get_llm", lambda s, progress=True: FakeLLM([scripted] * 20))
    monkeypatch.setattr("rag.engine.get_embedder", lambda s: fake_embedder)
    out, cache = tmp_path / "report.json", tmp_path / "replies.json"
    argv = ["eval", "--set", str(EVALSET), "--limit", "2", "--out", str(out), "--llm-cache", str(cache)]
    monkeypatch.setenv("RAG_MIN_RELEVANCE", "0")
    monkeypatch.setenv("RAG_CACHE_DIR", str(tmp_path / "cache"))
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "| evalset | **all** | 2 | 100% |" in printed
    assert "none of 2 model replies was replayed" in printed and "latencies are real" in printed
    assert main(argv) == 0  # again: every reply now comes from the cache
    printed = capsys.readouterr().out
    assert "2 of 2 model replies were replayed" in printed and "not real latencies" in printed
    data = json.loads(out.read_text())
    [s] = data["sets"]
    assert [r["id"] for r in s["rows"]] == ["ev_1", "ev_2"] and s["rows"][0]["cited_files"] == ["ev_festival.txt"]
    assert {"question", "answer", "correct", "declined", "seconds", "ttft"} <= set(s["rows"][0])
    assert "not real latencies" in data["llm_cache"]


@pytest.mark.slow
def test_cli_eval_on_a_folder_set_with_the_real_models(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    out = tmp_path / "report.json"
    assert main(["eval", "--set", str(EVALSET), "--limit", "1", "--out", str(out)]) == 0
    assert "| evalset | **all** | 1 |" in capsys.readouterr().out
    [row] = json.loads(out.read_text())["sets"][0]["rows"]
    assert row["id"] == "ev_1" and row["markers_valid"] and row["evidence_retrieved"]
    assert row["correct"], row["answer"]  # "12,500 visitors", said in one sentence of one article
    assert row["ttft"] is not None and row["model_calls"] is None  # no cache: calls are not counted
    assert not list(tmp_path.glob("rag-eval-*"))  # the temporary index is gone
