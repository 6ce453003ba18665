import pytest

from rag.config import MIN_PROMPT_TOKENS, Settings
from rag.errors import InputError


def test_defaults_are_valid():
    s = Settings()
    assert s.n_ctx - s.max_tokens >= MIN_PROMPT_TOKENS


def test_an_environment_variable_overrides_a_default(monkeypatch):
    monkeypatch.setenv("RAG_TOP_K", "6")
    assert Settings().top_k == 6


@pytest.mark.parametrize("var, value", [("RAG_TOP_K", "abc"), ("RAG_TOP_K", "0"), ("RAG_TEMPERATURE", "9")])
def test_a_bad_value_is_an_input_error_naming_the_variable(monkeypatch, var, value):
    monkeypatch.setenv(var, value)
    with pytest.raises(InputError, match=f"{var}='{value}'"):
        Settings()


@pytest.mark.parametrize("values", [{"n_ctx": 512}, {"max_tokens": 4096}, {"n_ctx": 1024, "max_tokens": 900}])
def test_the_answer_may_not_crowd_out_the_prompt(values):
    with pytest.raises(InputError, match="Raise RAG_N_CTX or lower RAG_MAX_TOKENS"):
        Settings(**values)


def test_the_configuration_reference_in_docs_is_the_settings_themselves():
    from pathlib import Path

    from rag.config import reference

    doc = (Path(__file__).resolve().parent.parent / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert doc.endswith(reference()), "docs/configuration.md is stale: regenerate it from rag.config.reference()"
