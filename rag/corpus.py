"""Add articles to the corpus folder, each checked first: the core of `rag add` (and of
the web UI's upload).

A file is copied in only if the index will take it: the right type, not too large, not
empty, UTF-8 text (or a PDF with a text layer), some article text in it, and neither the
same file nor the same article as one already there. Every refusal is a ``Rejected``
with a reason a user understands ("it is empty"); nothing is read from log messages.

    >>> result = add_files([Path("flood.html")], Path("news"))   # doctest: +SKIP
    >>> result.added, [(r.name, r.reason) for r in result.rejected]   # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from .errors import SourceError
from .ingest import (MAX_FILE_BYTES, SUFFIXES, Unreadable, content_key, corpus_files, file_content_key,
                     read_article)


@dataclass(frozen=True)
class Rejected:
    name: str  # the file (or address) as the user gave it
    reason: str  # why it was not added, to follow "<name> was not added:"


@dataclass
class AddResult:
    added: list[Path] = field(default_factory=list)  # files now in the corpus folder
    rejected: list[Rejected] = field(default_factory=list)


def safe_filename(name: str) -> str | None:
    """Only the base name, with anything but letters, digits, '.', '-', '_' and spaces
    replaced; None when nothing usable is left."""
    base = re.split(r"[\\/]", name or "")[-1].strip()
    base = re.sub(r"[^\w.\- ]", "_", base).strip(" .")
    base = re.sub(r"\s+", " ", base)
    if len(base) > 120:
        stem, dot, suffix = base.rpartition(".")
        base = stem[: 120 - len(suffix) - 1] + dot + suffix if dot else base[:120]
    stem = base.rsplit(".", 1)[0] if "." in base else base
    return base if stem.strip("._- ") else None


def _size(n: int) -> str:
    return f"{n / 2**20:.1f}".removesuffix(".0") + " MB"


def _types(suffixes: Sequence[str]) -> str:
    shown = [s for s in suffixes if s != ".htm"]  # .html says it
    return ", ".join(shown[:-1]) + " and " + shown[-1] if len(shown) > 1 else shown[0]


def known_articles(corpus_dir: Path) -> dict[str, str]:
    """File and article-text hashes of what ``corpus_dir`` holds -> file name, to spot
    duplicates. (A caller with an index can build the same from it, for speed.)"""
    known: dict[str, str] = {}
    if not corpus_dir.is_dir():
        return known
    for path in corpus_files(corpus_dir):
        try:
            known.setdefault(hashlib.sha256(path.read_bytes()).hexdigest(), path.name)
        except OSError:
            continue
        if key := file_content_key(path):
            known.setdefault(key, path.name)
    return known


def check_file(path: Path, original_name: str, corpus_dir: Path, known: Mapping[str, str], *,
               max_bytes: int = MAX_FILE_BYTES, suffixes: Sequence[str] = SUFFIXES) -> tuple[str, str]:
    """(safe name, "") when the file can be added, else (name to show, reason)."""
    name = safe_filename(original_name)
    shown = name or Path(original_name or "?").name or "?"
    if name is None:
        return shown, "the file name is not usable"
    if not name.lower().endswith(tuple(suffixes)):
        return shown, f"only {_types(suffixes)} files can be added"
    try:
        size = path.stat().st_size
    except OSError:
        return shown, "the file could not be read"
    if size > max_bytes:
        return shown, f"it is larger than {_size(max_bytes)} ({size:,} bytes)"
    if size == 0:
        return shown, "it is empty"
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    if sha in known:
        return shown, f"the same file is already in the corpus as {known[sha]}"
    stem = name.rsplit(".", 1)[0].lower()
    if corpus_dir.is_dir() and any(p.stem.lower() == stem for p in corpus_dir.iterdir()):
        return shown, "a file with this name is already in the corpus; rename it to add it"
    # The final word: the loader the index uses, on a copy under the final name.
    with tempfile.TemporaryDirectory(prefix="rag-add-") as tmp:
        probe = Path(tmp) / name
        shutil.copyfile(path, probe)
        try:
            doc = read_article(probe)
        except Unreadable as why:
            return shown, str(why)
    if (key := content_key(doc)) in known:
        return shown, f"it is the same article as {known[key]}, already in the corpus"
    return name, ""


def add_files(paths: Sequence[Path], corpus_dir: Path, *, names: Sequence[str] | None = None,
              max_bytes: int = MAX_FILE_BYTES, suffixes: Sequence[str] = SUFFIXES,
              known: Mapping[str, str] | None = None) -> AddResult:
    """Check each file and copy the good ones into ``corpus_dir`` (created if need be).

    ``names`` are the names the files should have there (default: their own; an upload's
    temporary file has another); ``known`` is ``known_articles(corpus_dir)`` if the caller
    has it already. The index is not touched: sync it afterwards."""
    result = AddResult()
    seen = dict(known if known is not None else known_articles(corpus_dir))
    for i, path in enumerate(paths):
        path = Path(path)
        name, why = check_file(path, names[i] if names else path.name, corpus_dir, seen,
                               max_bytes=max_bytes, suffixes=suffixes)
        if why:
            result.rejected.append(Rejected(name, why))
            continue
        corpus_dir.mkdir(parents=True, exist_ok=True)
        tmp = corpus_dir / f".add-{os.getpid()}-{i}.part"  # not an article suffix: never loaded half-written
        shutil.copyfile(path, tmp)
        os.replace(tmp, corpus_dir / name)
        seen[hashlib.sha256((corpus_dir / name).read_bytes()).hexdigest()] = name
        if key := file_content_key(corpus_dir / name):
            seen[key] = name
        result.added.append(corpus_dir / name)
    return result


def _stage(source: str, tmp: Path, max_bytes: int, labels: dict[str, str],
           result: AddResult) -> list[tuple[Path, str]]:
    """(file, name to add it under) for one source; fetched pages and feed items are
    written to ``tmp``. Raises SourceError when the source as a whole is unusable."""
    from .fetch import feed_items, fetch, looks_like_feed, page_file

    if re.match(r"[a-z][a-z0-9+.-]*://", source, re.IGNORECASE):
        fetched = fetch(source, max_bytes)
        if looks_like_feed(fetched.data, fetched.content_type, urlsplit(fetched.url).path):
            items = feed_items(fetched.data, source)
        else:
            name, data = page_file(fetched)
            (tmp / name).write_bytes(data)
            labels[name] = source
            return [(tmp / name, name)]
    else:
        path = Path(source).expanduser()
        if path.is_dir():
            return [(p, p.name) for p in sorted(path.iterdir()) if p.is_file() and p.suffix.lower() in SUFFIXES]
        if not path.is_file():
            raise SourceError(source, "there is no such file or folder")
        if not looks_like_feed(path.read_bytes()[:4096], name=path.name):
            return [(path, path.name)]
        items = feed_items(path.read_bytes(), source)
    staged = []
    for name, markdown in items:
        labels[name] = f"{name} (an item of {source})"
        if not markdown:
            result.rejected.append(Rejected(labels[name], "the feed item has no text, only a title"))
            continue
        (tmp / name).write_text(markdown, encoding="utf-8")
        staged.append((tmp / name, name))
    return staged


def add_sources(sources: Sequence[str], corpus_dir: Path, *, max_bytes: int = MAX_FILE_BYTES) -> AddResult:
    """`rag add`: local article files (or folders of them), RSS/Atom feeds (files or
    addresses; each item becomes a Markdown article) and web page addresses (saved as
    .html). Each is checked as ``add_files`` does; the index is not touched."""
    result = AddResult()
    labels: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="rag-add-") as tmp:
        staged: list[tuple[Path, str]] = []
        for source in sources:
            try:
                staged += _stage(source, Path(tmp), max_bytes, labels, result)
            except SourceError as exc:
                result.rejected.append(Rejected(source, exc.reason))
        added = add_files([p for p, _ in staged], corpus_dir, names=[n for _, n in staged], max_bytes=max_bytes)
    result.added += added.added
    result.rejected += [Rejected(labels.get(r.name, r.name), r.reason) for r in added.rejected]
    return result
