"""What every front end shares: an Answer as JSON-ready data, and the loopback check.

The web UI (``ui_app``) and the HTTP API (``api``) both hand answers to programs,
so both use ``answer_dict``; both refuse to listen beyond this machine unprotected,
so both use ``is_loopback``.

    >>> is_loopback("127.0.0.1"), is_loopback("::1"), is_loopback("0.0.0.0")
    (True, True, False)
"""

from __future__ import annotations

import ipaddress
from typing import Any


def citation_dict(c: Any) -> dict:
    """A Citation as JSON-serialisable data. The key is ``file``, not ``path``:
    gradio_client treats any dict with a ``path`` as a file to download."""
    return {"marker": c.marker, "doc_id": c.doc_id, "title": c.title, "source": c.source,
            "date": c.published.isoformat() if c.published else None, "author": c.author, "url": c.url,
            "page": c.page, "file": str(c.path), "start": c.start, "end": c.end, "text": c.text,
            "score": float(c.score)}


def answer_dict(answer: Any) -> dict:
    """``{"text", "declined", "citations"}``: every marker [n] in text has a citation."""
    return {"text": answer.text, "declined": bool(answer.declined),
            "citations": [citation_dict(c) for c in answer.citations]}


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (127.0.0.0/8, ::1, "localhost")."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
