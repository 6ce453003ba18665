"""What every front end shares: an Answer as JSON-ready data, and the loopback check.

The web UI (``rag.web``) and the HTTP API (``api``) both hand answers to programs,
so both use ``answer_dict``; both refuse to listen beyond this machine unprotected,
so both use ``is_loopback``.

    >>> is_loopback("127.0.0.1"), is_loopback("::1"), is_loopback("0.0.0.0")
    (True, True, False)
"""

from __future__ import annotations

import ipaddress
from datetime import date
from typing import Any


def citation_dict(c: Any) -> dict:
    """A Citation as JSON-serialisable data. The key is ``file``, not ``path``:
    gradio_client treats any dict with a ``path`` as a file to download."""
    return {"marker": c.marker, "doc_id": c.doc_id, "title": c.title, "source": c.source,
            "date": _iso(c.published), "author": c.author, "url": c.url,
            "page": c.page, "also": list(c.also), "file": str(c.path), "start": c.start, "end": c.end, "text": c.text,
            "score": float(c.score)}


def _iso(d: date | None) -> str | None:
    return d.isoformat() if d else None


def answer_dict(answer: Any) -> dict:
    """``{"text", "declined", "citations", "disagreements", "timeline", "window"}``: every
    marker [n] in text has a citation; the news fields are empty lists and null when unused."""
    w = answer.window
    return {"text": answer.text, "declined": bool(answer.declined),
            "citations": [citation_dict(c) for c in answer.citations],
            "disagreements": [{"quantity": f.quantity, "value": f.value, "source": f.source,
                               "date": _iso(f.published), "marker": f.marker} for f in answer.disagreements],
            "timeline": [{"date": _iso(e.published), "text": e.text, "source": e.source, "marker": e.marker}
                         for e in answer.timeline],
            "window": {"since": _iso(w.since), "until": _iso(w.until), "phrase": w.phrase} if w else None}


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (127.0.0.0/8, ::1, "localhost")."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
