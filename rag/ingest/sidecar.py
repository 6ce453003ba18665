"""The sidecar: a ``metadata.jsonl`` or ``metadata.csv`` in the corpus folder that gives
articles' metadata by file name, over anything the files themselves say.

    {"file": "flood.txt", "source": "Daily Bugle", "published": "2024-03-05", "author": "Jane Roe"}

    file,title,source,author,published,url
    flood.txt,,Daily Bugle,Jane Roe,2024-03-05,

Keys are the ArticleMeta fields (``date`` is read as ``published``); an empty value gives
nothing. A line that cannot be read is reported with its number and skipped; the rest
of the sidecar still counts. The sidecar is not an article.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from pathlib import Path

from .metadata import FIELDS

log = logging.getLogger(__name__)

SIDECARS = ("metadata.csv", "metadata.jsonl")  # the .jsonl, read second, wins where both name a file
_ALIASES = {"date": "published"}

Sidecar = dict[str, dict[str, object]]  # file name -> field -> raw value


def _entry(row: dict, where: str, unknown: set[str]) -> tuple[str, dict[str, object]] | None:
    name = row.get("file")
    if not isinstance(name, str) or not name.strip():
        log.warning("%s: no \"file\" to say which article it describes; skipped.", where)
        return None
    values: dict[str, object] = {}
    for key, value in row.items():
        field = _ALIASES.get(str(key).strip().lower(), str(key).strip().lower())
        if field == "file" or value in (None, ""):
            continue
        if field in FIELDS:
            values[field] = value
        else:
            unknown.add(str(key))
    return name.strip(), values


def _rows(path: Path, text: str) -> list[tuple[str, dict]]:
    """(where, row) for each row of one sidecar file."""
    if path.suffix == ".csv":
        reader = csv.DictReader(io.StringIO(text))
        if not reader.fieldnames or "file" not in [f.strip().lower() for f in reader.fieldnames]:
            log.warning("%s has no \"file\" column naming the articles; it is not used.", path)
            return []
        return [(f"{path} line {reader.line_num}", {k.strip().lower(): v for k, v in row.items() if k})
                for row in reader]
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            log.warning("%s line %d is not valid JSON (%s); skipped.", path, n, exc)
            continue
        if not isinstance(row, dict):
            log.warning("%s line %d is not a JSON object; skipped.", path, n)
            continue
        rows.append((f"{path} line {n}", {str(k).strip().lower(): v for k, v in row.items()}))
    return rows


def read_sidecar(folder: Path) -> Sidecar:
    """File name -> fields, from the sidecar(s) in ``folder`` (empty when there is none)."""
    out: Sidecar = {}
    named_in: dict[str, Path] = {}
    for name in SIDECARS:
        path = folder / name
        try:
            text = path.read_bytes().decode("utf-8-sig")
        except FileNotFoundError:
            continue
        except (OSError, UnicodeDecodeError) as exc:
            log.warning("%s could not be read (%s); the metadata in it is not used.", path, exc)
            continue
        unknown: set[str] = set()
        for where, row in _rows(path, text):
            if entry := _entry(row, where, unknown):
                out.setdefault(entry[0], {}).update(entry[1])
                named_in.setdefault(entry[0], path)
        if unknown:
            log.warning("%s: unknown field(s) %s ignored; the fields are file, %s.", path,
                        ", ".join(sorted(unknown)), ", ".join(FIELDS))
    for file, path in named_in.items():
        if not (folder / file).is_file():
            log.warning("%s names %s, which is not in %s; that line is not used.", path, file, folder)
    return out
