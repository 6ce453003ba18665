import os
import shutil
import subprocess
import sys

import pytest

from rag.cli import main

from tests.conftest import ROOT


def test_help_does_not_import_heavy_libraries():
    code = ("import sys; from rag.cli import build_parser; build_parser(); "
            "heavy = {'torch', 'llama_cpp', 'gradio', 'sentence_transformers', 'faiss'} & set(sys.modules); "
            "print(sorted(heavy)); sys.exit(1 if heavy else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize("question", ["", "   "])
def test_ask_with_empty_question_fails_clearly(capsys, question):
    assert main(["ask", question]) == 1
    assert "question is empty" in capsys.readouterr().err


def test_index_on_empty_folder_fails_clearly(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["index", str(empty), "--index-dir", str(tmp_path / "idx")]) == 1
    err = capsys.readouterr().err
    assert "has no articles" in err and str(empty) in err
    assert not (tmp_path / "idx" / "manifest.json").exists()


def test_index_on_missing_folder_fails_clearly(tmp_path, capsys):
    assert main(["index", str(tmp_path / "nope"), "--index-dir", str(tmp_path / "idx")]) == 1
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.slow
def test_ask_reports_a_damaged_index_while_the_models_load(real_settings, real_engine, tmp_path):
    """llama-cpp-python points stdout and stderr at /dev/null while it loads a model: a
    load in the background swallowed this warning. ``real_engine`` built the index copied here."""
    index = tmp_path / "index"
    shutil.copytree(real_settings.index_dir, index)
    damaged = next(index.glob("*.faiss"))
    damaged.write_bytes(b"not a faiss index")
    result = subprocess.run([sys.executable, "-m", "rag.cli", "ask", "--index-dir", str(index),
                             "How many North Korean troops are in Russia according to the Pentagon?"],
                            capture_output=True, text=True, cwd=ROOT,
                            env={**os.environ, "RAG_CORPUS_DIR": str(real_settings.corpus_dir)})
    assert result.returncode == 0, result.stderr
    assert damaged.name in result.stderr and "Rebuilding" in result.stderr, result.stderr
    assert "10,000" in result.stdout
