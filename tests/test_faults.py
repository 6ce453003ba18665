"""Faults in the on-disk index: a writer killed with SIGKILL at random moments, damaged
files, and an index built with other settings. After any of them the index must be
either the previous complete one or a complete new one (never a mix), and the next
``sync`` must leave an index that matches the corpus exactly.

No models: a hashed bag-of-words embedder (conftest's FakeEmbedder) stands in, slowed
down in the killed subprocess so that a rebuild takes a couple of seconds.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from rag import index as rag_index
from rag.chunking import chunk_document
from rag.config import Settings
from rag.errors import IndexStoreError
from rag.ingest import decode, load_document

from tests.conftest import FakeEmbedder

ROOT = Path(__file__).resolve().parent.parent
N_ARTICLES = 300
N_MODIFIED = 100
SLEEP_PER_TEXT = 0.005  # seconds per embedded text in the killed subprocess

# --- a generated corpus ----------------------------------------------------------------

_WORDS = ("army minister border village talks missile drone parliament harbour winter budget convoy "
          "officials report region council election bridge supply energy grain treaty envoy summit "
          "artillery river railway refinery court protest shelter hospital school factory port").split()
_PLACES = "Kharkiv Odesa Lviv Dnipro Kursk Belgorod Seoul Tokyo Warsaw Riga Vilnius Tallinn Helsinki Oslo".split()


def _sentence(rng: random.Random, tag: str) -> str:
    words = [rng.choice(_WORDS) for _ in range(rng.randint(9, 16))]
    return (f"{rng.choice(_PLACES)} {tag} said the {' '.join(words)} reached "
            f"{rng.randint(2, 99_999):,} on day {rng.randint(1, 365)}.")


def _article(i: int, version: int) -> str:
    """A few paragraphs of unique text; v2 of a modified article is longer or shorter."""
    rng = random.Random(f"article-{i}")
    paragraphs = [" ".join(_sentence(rng, f"unit{i}") for _ in range(rng.randint(2, 4))) for _ in range(3)]
    if version == 2:
        extra = random.Random(f"edit-{i}")
        if i % 2:
            paragraphs.append(" ".join(_sentence(extra, f"update{i}") for _ in range(extra.randint(2, 5))))
        else:
            paragraphs = paragraphs[:1] + [_sentence(extra, f"correction{i}")]
    return f"Dispatch number {i} from the newsroom\n\n" + "\n\n".join(paragraphs) + "\n"


MODIFIED = frozenset(random.Random(2024).sample(range(N_ARTICLES), N_MODIFIED))


def write_corpus(folder: Path, version: int) -> None:
    """Corpus v1, or v2 with N_MODIFIED articles edited; only changed files are rewritten."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(N_ARTICLES):
        text = _article(i, version if i in MODIFIED else 1)
        path = folder / f"article_{i:03d}.txt"
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")


# --- checks ---------------------------------------------------------------------------


def snapshot(index: rag_index.Index) -> tuple:
    """Everything that defines an index's content: manifest docs, chunks in row order, vectors."""
    return (dict(index.docs), list(index.chunks), index.embedder, index.chunk_size, index.chunk_overlap,
            np.asarray(index.vectors).copy())


def same(a: tuple, b: tuple) -> bool:
    return a[:5] == b[:5] and a[5].shape == b[5].shape and np.allclose(a[5], b[5], atol=1e-6)


def assert_matches_corpus(index_dir: Path, corpus_dir: Path, settings: Settings, embedder) -> rag_index.Index:
    """The index on disk loads and is exactly what the corpus and settings call for."""
    index = rag_index.load(index_dir, corpus_dir)
    manifest = json.loads((index_dir / rag_index.MANIFEST).read_text(encoding="utf-8"))
    assert manifest["embedder"] == embedder.name and manifest["dim"] == embedder.dim
    assert (manifest["chunk_size"], manifest["chunk_overlap"]) == (settings.chunk_size, settings.chunk_overlap)
    files = {p.stem: p for p in corpus_dir.glob("*.txt")}
    assert set(index.docs) == set(files)
    assert index.faiss.ntotal == len(index.chunks) == sum(info.chunks for info in index.docs.values())
    expected_chunks = []
    for doc_id in sorted(files):
        path, info = files[doc_id], index.docs[doc_id]
        data = path.read_bytes()
        assert info.sha256 == hashlib.sha256(data).hexdigest(), f"{doc_id}: stale hash in the manifest"
        assert info.file == path.name
        doc = load_document(path)
        expected_chunks.extend(chunk_document(doc, settings.chunk_size, settings.chunk_overlap))
        text = decode(data, path)
        for c in (c for c in index.chunks if c.doc_id == doc_id):
            assert text[c.start : c.end] == c.text
    assert index.chunks == expected_chunks
    want = embedder.embed([c.text for c in index.chunks])
    assert np.allclose(index.vectors, want, atol=1e-6), "vectors do not belong to these chunks/this embedder"
    return index


def temp_files(index_dir: Path) -> list[str]:
    return sorted(p.name for p in index_dir.iterdir() if p.name.startswith(".") and p.name.endswith(".tmp"))


# --- a writer in a subprocess, killed at will ---------------------------------------------

CHILD = r"""
import os, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[4])
from rag.config import Settings
from rag import index as rag_index
from tests.conftest import FakeEmbedder

PER_TEXT = float(sys.argv[5])
HOLD = os.environ.get("RAG_TEST_HOLD", "")


class SlowEmbedder(FakeEmbedder):
    def embed(self, texts, progress=False):
        for _ in texts:
            time.sleep(PER_TEXT)
        return super().embed(texts, progress)


def hold(what):
    print("HOLD", what, flush=True)
    time.sleep(600)


if HOLD:
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        real_fsync(fd)
        try:
            name = os.path.basename(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            name = ""
        if name.startswith("." + HOLD) and name.endswith(".tmp"):
            hold(name)  # the temporary file is written and synced, not yet renamed

    def replace(src, dst):
        real_replace(src, dst)
        if HOLD == "switched" and os.path.basename(dst) == "manifest.json":
            hold(dst)  # the new manifest is in place, old files not yet removed

    os.fsync, os.replace = fsync, replace

settings = Settings(corpus_dir=Path(sys.argv[1]), index_dir=Path(sys.argv[2]), cache_dir=Path(sys.argv[3]))
print("START", flush=True)
index = rag_index.sync(settings, SlowEmbedder())
print("DONE", len(index.chunks), flush=True)
"""


class Writer:
    """``rag.index.sync`` running in a subprocess that prints START, then DONE (or HOLD)."""

    def __init__(self, settings: Settings, hold: str = "", per_text: float = SLEEP_PER_TEXT) -> None:
        env = {**os.environ, "RAG_TEST_HOLD": hold}
        self.proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(settings.corpus_dir), str(settings.index_dir),
             str(settings.cache_dir), str(ROOT), str(per_text)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        for line in self.proc.stdout:  # type: ignore[union-attr]
            self.lines.put(line.strip())
        self.lines.put("EOF")

    def wait_for(self, prefix: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                self.kill()
                raise AssertionError(f"writer printed no {prefix} within {timeout}s") from None
            if line.startswith(prefix):
                return line
            if line == "EOF":
                err = self.proc.stderr.read()  # type: ignore[union-attr]
                raise AssertionError(f"writer ended before {prefix}: {err[-2000:]}")

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def finished(self) -> bool:
        """True if the writer printed DONE before it died."""
        while True:
            try:
                line = self.lines.get(timeout=5)
            except queue.Empty:
                return False
            if line.startswith("DONE"):
                return True
            if line == "EOF":
                return False


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A corpus folder, its index directory, and reference indexes of v1 and v2 built in-process."""
    base = tmp_path_factory.mktemp("faults")
    refs = {}
    for version in (1, 2):
        corpus = base / f"ref-corpus-v{version}"
        write_corpus(corpus, version)
        s = Settings(corpus_dir=corpus, index_dir=base / f"ref-index-v{version}", cache_dir=base / "cache")
        refs[version] = snapshot(rag_index.sync(s, FakeEmbedder()))
    return {"base": base, "refs": refs}


def fresh(world: dict, name: str, version: int = 1) -> Settings:
    """A corpus at ``version`` with a complete index of it."""
    base = world["base"] / name
    settings = Settings(corpus_dir=base / "corpus", index_dir=base / "index", cache_dir=base / "cache")
    write_corpus(settings.corpus_dir, version)
    assert same(snapshot(rag_index.sync(settings, FakeEmbedder())), world["refs"][version])
    return settings


# --- (a) SIGKILL mid-build ------------------------------------------------------------------


def test_generated_corpus_has_the_intended_shape(world):
    v1, v2 = world["refs"][1], world["refs"][2]
    assert len(v1[0]) == len(v2[0]) == N_ARTICLES
    changed = {d for d in v1[0] if v1[0][d].sha256 != v2[0][d].sha256}
    assert len(changed) == N_MODIFIED
    assert len(v1[1]) != len(v2[1])  # chunk counts differ, so a mixed index could not pass as either
    assert sum(1 for d in changed if v1[0][d].chunks != v2[0][d].chunks) > N_MODIFIED // 2


def test_sigkill_at_random_points_of_a_rebuild_leaves_old_or_new_index_never_a_mix(world):
    settings = fresh(world, "random-kills", version=1)
    refs, embedder = world["refs"], FakeEmbedder()

    # An undisturbed rebuild in the subprocess: it completes and takes a couple of seconds.
    write_corpus(settings.corpus_dir, 2)
    writer = Writer(settings)
    writer.wait_for("START")
    t0 = time.monotonic()
    writer.wait_for("DONE")
    duration = time.monotonic() - t0
    writer.kill()
    assert same(snapshot(rag_index.load(settings.index_dir, settings.corpus_dir)), refs[2])
    assert duration > 0.5, f"rebuild took only {duration:.2f}s: kills would not land inside it"

    # Kills at seeded random moments spread over the whole rebuild and a little beyond
    # (one in each slice of it), the corpus flipping v2 -> v1 -> v2 ... so every round
    # really rebuilds from the previous complete index.
    rng = random.Random(7)
    rounds = 6
    delays = [0.0] + [rng.uniform(i, i + 1) * duration * 1.4 / (rounds - 1) for i in range(rounds - 1)]
    current, outcomes = 2, []
    for delay in delays:
        target = 1 if current == 2 else 2
        write_corpus(settings.corpus_dir, target)
        writer = Writer(settings)
        writer.wait_for("START")
        time.sleep(delay)
        writer.kill()
        done = writer.finished()

        loaded = snapshot(rag_index.load(settings.index_dir, settings.corpus_dir))
        if same(loaded, refs[current]):
            outcome = "previous"
        elif same(loaded, refs[target]):
            outcome = "new"
        else:
            pytest.fail(f"after a kill at {delay:.2f}s the index is neither v{current} nor v{target}")
        assert not (done and outcome == "previous"), "the writer finished but its index was not committed"
        outcomes.append((round(delay, 2), outcome, sorted(temp_files(settings.index_dir))))

        rag_index.sync(settings, embedder)  # the next run completes the interrupted update
        assert same(snapshot(assert_matches_corpus(settings.index_dir, settings.corpus_dir, settings, embedder)),
                     refs[target])
        current = target
    print(f"\nrebuild {duration:.2f}s; kills (delay s, index after kill, temp files left): {outcomes}")
    assert sum(o == "previous" for _, o, _ in outcomes) >= 3, f"too few kills landed mid-build: {outcomes}"


@pytest.mark.parametrize("moment", ["vectors", "chunks", "manifest", "switched"])
def test_sigkill_during_each_file_write_keeps_a_complete_index(world, moment):
    """Killed when a file's temporary copy is written and synced but not renamed yet
    (vectors, chunks, manifest), or just after the manifest switch."""
    settings = fresh(world, f"kill-at-{moment}", version=1)
    write_corpus(settings.corpus_dir, 2)
    writer = Writer(settings, hold=moment, per_text=0)
    writer.wait_for("HOLD")
    writer.kill()

    loaded = snapshot(rag_index.load(settings.index_dir, settings.corpus_dir))
    assert same(loaded, world["refs"][2 if moment == "switched" else 1])
    if moment != "switched":
        assert any(name.startswith(f".{moment}") for name in temp_files(settings.index_dir))  # the fault happened

    embedder = FakeEmbedder()
    rag_index.sync(settings, embedder)
    assert same(snapshot(assert_matches_corpus(settings.index_dir, settings.corpus_dir, settings, embedder)),
                 world["refs"][2])


def test_temp_files_of_a_killed_write_are_cleaned_by_the_next_save(world):
    settings = fresh(world, "stale-temp", version=1)
    for version, moment in ((2, "vectors"), (1, "manifest")):
        write_corpus(settings.corpus_dir, version)
        writer = Writer(settings, hold=moment, per_text=0)
        writer.wait_for("HOLD")
        writer.kill()
        assert temp_files(settings.index_dir)
        rag_index.sync(settings, FakeEmbedder())  # a successful save
        assert temp_files(settings.index_dir) == []


# --- (b) damaged files ----------------------------------------------------------------------


def _manifest(settings: Settings) -> dict:
    return json.loads((settings.index_dir / rag_index.MANIFEST).read_text(encoding="utf-8"))


def _data_file(settings: Settings, key: str) -> Path:
    return settings.index_dir / _manifest(settings)["files"][key]


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def damage(settings: Settings, how: str) -> str:
    """Damage the index on disk; returns the name the warning must mention."""
    if how in ("faiss-truncated", "faiss-flipped", "faiss-missing", "chunks-truncated", "chunks-flipped"):
        kind, harm = how.split("-")
        path = _data_file(settings, "vectors" if kind == "faiss" else "chunks")
        {"truncated": _truncate, "flipped": _flip_byte, "missing": Path.unlink}[harm](path)
        return path.name
    if how == "chunks-row-dropped":  # checksum fixed up, so only the row count check can catch it
        m = _manifest(settings)
        path = _data_file(settings, "chunks")
        data = b"".join(path.read_bytes().splitlines(keepends=True)[:-1])
        path.write_bytes(data)
        m["checksums"][path.name] = hashlib.sha256(data).hexdigest()
        (settings.index_dir / rag_index.MANIFEST).write_text(json.dumps(m))
        return str(settings.index_dir)
    if how == "manifest-truncated":
        _truncate(settings.index_dir / rag_index.MANIFEST)
        return str(settings.index_dir)
    if how == "manifest-old-format":
        m = _manifest(settings)
        m["format_version"] = 0
        (settings.index_dir / rag_index.MANIFEST).write_text(json.dumps(m))
        return str(settings.index_dir)
    raise AssertionError(how)


DAMAGE = ["faiss-truncated", "faiss-flipped", "faiss-missing", "chunks-truncated", "chunks-flipped",
          "chunks-row-dropped", "manifest-truncated", "manifest-old-format"]


@pytest.fixture
def small(tmp_path: Path, settings: Settings, fake_embedder: FakeEmbedder) -> Settings:
    """The bundled corpus (conftest's ``settings``) with a complete index."""
    rag_index.sync(settings, fake_embedder)
    return settings


@pytest.mark.parametrize("how", DAMAGE)
def test_damaged_index_raises_on_load_and_is_rebuilt_with_a_warning(small, fake_embedder, caplog, how):
    before = snapshot(rag_index.load(small.index_dir, small.corpus_dir))
    named = damage(small, how)
    with pytest.raises(IndexStoreError):
        rag_index.load(small.index_dir, small.corpus_dir)

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="rag.index"):
        rebuilt = rag_index.sync(small, fake_embedder)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert any(named in w and "Rebuilding" in w for w in warnings), warnings
    assert same(snapshot(rebuilt), before)  # the same content, rebuilt from the corpus
    assert rebuilt.faiss.ntotal == len(rebuilt.chunks)


# A damaged data file has the same name as the rebuilt one (files are named by content
# hash): the rebuild must rewrite it rather than trust the name.
@pytest.mark.parametrize("how", DAMAGE)
def test_rebuild_after_damage_repairs_the_files_on_disk(small, fake_embedder, how):
    damage(small, how)
    rag_index.sync(small, fake_embedder)
    assert_matches_corpus(small.index_dir, small.corpus_dir, small, fake_embedder)  # loads again
    calls = fake_embedder.calls
    rag_index.sync(small, fake_embedder)
    assert fake_embedder.calls == calls, "a repaired index must not be rebuilt again"


# --- (c) an index built with other settings ----------------------------------------------


class OtherEmbedder(FakeEmbedder):
    """Another model of the same dimension: same words, very different vectors."""

    name = "other-embedder"

    def embed(self, texts, progress=False):
        return np.ascontiguousarray(super().embed(texts, progress)[:, ::-1])


class NarrowEmbedder(FakeEmbedder):
    """The same name, another dimension (e.g. a model folder replaced in place)."""

    dim = 32


@pytest.mark.parametrize("change", ["embedder-name", "embedder-dim", "chunk-size", "chunk-overlap"])
def test_index_from_other_settings_is_rebuilt_not_mixed(small, caplog, change):
    embedder = {"embedder-name": OtherEmbedder(), "embedder-dim": NarrowEmbedder()}.get(change, FakeEmbedder())
    settings = {"chunk-size": small.model_copy(update={"chunk_size": 250}),
                "chunk-overlap": small.model_copy(update={"chunk_overlap": 0})}.get(change, small)
    old = rag_index.load(small.index_dir, small.corpus_dir)

    with caplog.at_level(logging.WARNING, logger="rag.index"):
        rebuilt = rag_index.sync(settings, embedder)
    # Every row was embedded by the new embedder: nothing kept from the old index.
    assert embedder.texts_embedded == len(rebuilt.chunks) == rebuilt.faiss.ntotal
    index = assert_matches_corpus(settings.index_dir, settings.corpus_dir, settings, embedder)
    assert index.faiss.d == embedder.dim
    if change.startswith("chunk"):
        assert index.chunks != old.chunks
    if change != "embedder-dim":  # the code logs no warning for a same-name dimension change (see report)
        assert any("Rebuilding" in r.getMessage() for r in caplog.records)
