"""What every front end shares: an Answer as JSON-ready data or as terminal text, and the
loopback check.

The web UI (``rag.web``) and the HTTP API (``api``) both hand answers to programs,
so both use ``answer_dict``; both refuse to listen beyond this machine unprotected,
so both use ``is_loopback``.

    >>> is_loopback("127.0.0.1"), is_loopback("::1"), is_loopback("0.0.0.0")
    (True, True, False)
"""

from __future__ import annotations

import ipaddress
import textwrap
from datetime import date
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .answer import Answer


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


def print_answer(answer: Answer) -> None:
    """The answer, what its dates meant, its figures by source or timeline, then its sources."""
    if answer.window:
        w = answer.window
        print(f"(Articles published {'from ' + str(w.since) if w.since else ''}"
              f"{' ' if w.since and w.until else ''}{'up to ' + str(w.until) if w.until else ''}: \"{w.phrase}\")")
    print(answer.text)
    for e in answer.timeline:
        print(f"  {e.published}  {e.source or ''}  {textwrap.shorten(e.text, 100, placeholder=' …')} [{e.marker}]")
    if answer.disagreements:
        print("\nFigures by source:")
        for f in answer.disagreements:
            print(f"  {f.value:>12}  {f.source or '(outlet unknown)'}, {f.published or 'date unknown'} [{f.marker}]")
    print_sources(answer)


def print_sources(answer: Answer) -> None:
    if not answer.citations:
        return
    print("\nSources:")
    for c in answer.citations:
        quote = textwrap.shorten(" ".join(c.text.split()), 300, placeholder=" …")
        about = ", ".join(str(x) for x in (c.source, c.published, c.author) if x)
        where = f"{c.doc_id}, {f'page {c.page}, ' if c.page else ''}chars {c.start}-{c.end}"
        print(f"  [{c.marker}] {c.title}" + (f" — {about}" if about else "") + f" ({where})")
        if c.also:
            print(f"      also carried by: {', '.join(c.also)}")
        if c.url:
            print(f"      {c.url}")
        print(textwrap.indent(textwrap.fill(f"“{quote}”", 88), "      "))
