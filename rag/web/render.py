"""The web UI's HTML: answers with citation badges, the streaming message, the sources
panel, and the news extras (figures the sources disagree on, a timeline, the dates a
question searched). Pure functions of the pipeline's dataclasses; no Gradio here.

Everything that comes from an article or from the model goes through ``inert`` before
any markup of ours is added: article text is untrusted and must never become live
HTML, a link or Markdown formatting. URLs are shown as text, never as links.

    >>> inert("<b>10,000</b>")
    '&#60;b&#62;10,000&#60;&#47;b&#62;'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

from ..answer import Answer, Citation, Figure, TimelineEntry, Window
from ..text import RENDERED_MARKER


@dataclass(frozen=True)
class Context:
    """The article text around a cited passage, as the sources panel shows it."""

    before: str
    span: str  # the cited characters
    after: str
    note: str = ""  # why the article itself is not shown (changed or gone since indexing)


@dataclass(frozen=True)
class Turn:
    """One finished question of a conversation: its answer, or the error that stopped it."""

    question: str
    answer: Answer | None = None  # None when answering failed
    error: str = ""
    contexts: Mapping[int, Context] = field(default_factory=dict)  # by citation marker


@dataclass(frozen=True)
class Pending:
    """A question still being answered."""

    question: str
    partial: str = ""  # the first look's text so far (a later look's is never shown)
    status: str = ""  # e.g. "Checking the passages again…"


# --- making untrusted text inert ---------------------------------------------------


def inert(text: str) -> str:
    """Text that renders as itself in HTML *and* Markdown: every character other than
    letters, digits, spaces and commas becomes a numeric character reference, so no
    tag, link, emphasis, autolink or LaTeX can form. Newlines become <br>."""
    out = []
    for ch in text:
        if ch.isalnum() or ch in " ,":
            out.append(ch)
        elif ch == "\n":
            out.append("<br>")
        elif ch in "\r\t\f\v":
            out.append(" ")
        else:
            out.append(f"&#{ord(ch)};")
    return "".join(out)


def inert_block(text: str) -> str:
    """Like ``inert`` but keeps newlines as they are (for pre-wrap blocks)."""
    return "\n".join(inert(line) for line in text.split("\n"))


def inert_attr(text: str) -> str:
    """``inert`` for an attribute value: on one line."""
    return inert(" ".join(text.split()))


# --- citations -----------------------------------------------------------------------


def src_id(marker: int, turn: int | None = None) -> str:
    """Anchor of a source block: ``src-N`` for the latest answer, ``src-tT-N`` for earlier ones."""
    return f"src-{marker}" if turn is None else f"src-t{turn}-{marker}"


def day(d: date | None) -> str:
    """A date as the answers write it: "March 3, 2025" (never a guess: "" when unknown)."""
    return f"{d:%B} {d.day}, {d.year}" if d else ""


def metadata(c: Citation) -> list[tuple[str, str]]:
    """What is known of the cited article, as (kind, text): outlet, date, author, URL (as
    text, never a link), page of a PDF, other outlets that carried the same (wire) text."""
    parts = [("outlet", c.source or ""), ("date", day(c.published)), ("author", f"by {c.author}" if c.author else ""),
             ("url", c.url or ""), ("page", f"page {c.page}" if c.page else ""),
             ("also", f"also carried by {', '.join(c.also)}" if c.also else "")]
    return [(kind, text) for kind, text in parts if text]


def badge(c: Citation, turn: int | None = None) -> str:
    """A clickable [n]: it scrolls to the source block; its tooltip names the article."""
    tip = " · ".join([f"Source {c.marker}: {c.title}", *(text for _, text in metadata(c))])
    return (f'<a class="cite-badge" href="#{src_id(c.marker, turn)}" title="{inert_attr(tip)}">'
            f"{c.marker}</a>")


def _marker(n: int, by_marker: Mapping[int, Citation], turn: int | None) -> str:
    return badge(by_marker[n], turn) if n in by_marker else inert(f"[{n}]")


def render_answer(text: str, citations: Sequence[Citation], turn: int | None = None) -> str:
    """The verified answer as safe HTML with each [n] of a citation turned into a badge."""
    by_marker = {c.marker: c for c in citations}
    parts: list[str] = []
    pos = 0
    for m in RENDERED_MARKER.finditer(text):
        n = int(m.group(1))
        if n not in by_marker:
            continue  # not a citation of this answer: stays plain (escaped) text
        parts.append(inert(text[pos:m.start()]))
        parts.append(badge(by_marker[n], turn))
        pos = m.end()
    parts.append(inert(text[pos:]))
    return f'<div class="rag-answer">{"".join(parts)}</div>'


def render_declined(text: str) -> str:
    return ('<div class="rag-declined"><span class="rag-declined-label">No answer in the articles</span>'
            f"{inert(text)}</div>")


def render_error(message: str) -> str:
    return f'<div class="rag-error">&#9888; {inert(message)}</div>'


# --- the news extras -------------------------------------------------------------------


def render_disagreements(figures: Sequence[Figure], citations: Sequence[Citation], turn: int | None = None) -> str:
    """A small table of each source's figure for a quantity the passages disagree on."""
    if not figures:
        return ""
    by_marker = {c.marker: c for c in citations}
    rows = "".join(f"<tr><td>{inert(f.quantity)}</td><td>{inert(f.value)}</td><td>{inert(f.source or '')}</td>"
                   f"<td>{day(f.published)}</td><td>{_marker(f.marker, by_marker, turn)}</td></tr>"
                   for f in figures)
    return ('<table class="rag-figures"><caption>The sources give different figures</caption><thead><tr>'
            "<th>Quantity</th><th>Value</th><th>Outlet</th><th>Date</th><th>Source</th></tr></thead>"
            f"<tbody>{rows}</tbody></table>")


def render_timeline(entries: Sequence[TimelineEntry], citations: Sequence[Citation],
                    turn: int | None = None) -> str:
    """The dated events of a timeline answer, in order, each with its outlet and badge."""
    if not entries:
        return ""
    by_marker = {c.marker: c for c in citations}
    items = "".join(f'<li><span class="rag-when">{day(e.published) or "undated"}</span> {inert(e.text)}'
                    + (f' <span class="rag-outlet">({inert(e.source)})</span>' if e.source else "")
                    + f" {_marker(e.marker, by_marker, turn)}</li>" for e in entries)
    return f'<ol class="rag-timeline">{items}</ol>'


def render_window(window: Window | None) -> str:
    """The dates the question's own words searched, e.g. "last week"."""
    if window is None or not (window.since or window.until):
        return ""
    if window.since and window.until:
        span = f"from {day(window.since)} to {day(window.until)}"
    else:
        span = f"on or after {day(window.since)}" if window.since else f"on or before {day(window.until)}"
    said = f" (&#8220;{inert(window.phrase)}&#8221;)" if window.phrase else ""
    return f'<div class="rag-window">&#128197; Searched articles published {span}{said}.</div>'


# --- the chat --------------------------------------------------------------------------


def render_turn(turn: Turn, index: int | None = None) -> str:
    """The assistant message for one finished turn (``index`` None = the latest)."""
    a = turn.answer
    if a is None:
        return render_error(turn.error or "No answer.")
    window = render_window(a.window)
    if a.declined:
        return render_declined(a.text) + window
    # A timeline answer's text is its entries written out one after another (rag.looks): the
    # dated list shows the same entries, cited, so it replaces the text rather than repeat it.
    body = (f'<div class="rag-answer">{render_timeline(a.timeline, a.citations, index)}</div>' if a.timeline
            else render_answer(a.text, a.citations, index))
    return body + render_disagreements(a.disagreements, a.citations, index) + window


def render_pending(p: Pending) -> str:
    """The message of a question being answered: the first look's text as it streams,
    and under it a status line while a later look checks the passages again."""
    body = inert(p.partial) if p.partial else "Searching the articles&#8230;"
    line = f'<div class="rag-status">&#9203; {inert(p.status)}</div>' if p.status else ""
    return f'<div class="rag-streaming">{body}&#9612;</div>{line}'


def chat_messages(turns: Sequence[Turn], pending: Pending | None = None) -> list[dict]:
    """Chatbot messages for the conversation, plus a question still being answered."""
    messages: list[dict] = []
    for i, turn in enumerate(turns):
        latest = i == len(turns) - 1 and pending is None
        messages.append({"role": "user", "content": inert(turn.question)})
        messages.append({"role": "assistant", "content": render_turn(turn, None if latest else i)})
    if pending is not None:
        messages.append({"role": "user", "content": inert(pending.question)})
        messages.append({"role": "assistant", "content": render_pending(pending)})
    return messages


# --- the sources panel -------------------------------------------------------------------


def source_block(c: Citation, ctx: Context, turn: int | None = None) -> str:
    """One cited passage, highlighted in its article, under the article's metadata."""
    note = f'<div class="src-note">{inert(ctx.note)}</div>' if ctx.note else ""
    about = "".join(f' &#183; <span class="src-{kind}">{inert(text)}</span>' for kind, text in metadata(c))
    return (
        f'<section class="src-block" id="{src_id(c.marker, turn)}" data-marker="{c.marker}" '
        f'data-doc="{inert_attr(c.doc_id)}" data-start="{c.start}" data-end="{c.end}">'
        f'<div class="src-meta"><span class="src-marker">{c.marker}</span> '
        f'<span class="src-title">{inert(c.title)}</span>{about}</div>'
        f'<div class="src-where"><code>{inert(c.doc_id)}</code> &#183; score {c.score:.3f} &#183; '
        f"chars {c.start}&#8211;{c.end}</div>{note}"
        f'<div class="src-context">{inert_block(ctx.before)}<mark class="cite-mark">'
        f'{inert_block(ctx.span)}</mark>{inert_block(ctx.after)}</div></section>'
    )


def turn_sources(turn: Turn, index: int | None) -> str:
    a = turn.answer
    if a is None:
        return '<div class="src-empty">Nothing was cited: the question could not be answered.</div>'
    if a.declined or not a.citations:
        return ('<div class="src-empty src-declined">Nothing was cited: the articles do not '
                "answer this question.</div>")
    return "".join(source_block(c, turn.contexts.get(c.marker) or Context("", c.text, ""), index)
                   for c in a.citations)


def render_sources(turns: Sequence[Turn]) -> str:
    """Sources of the latest answer (ids src-N), then earlier answers' sources folded away."""
    if not turns:
        return '<div class="src-empty">Sources of the answer appear here, with each cited passage highlighted.</div>'
    last = turns[-1]
    parts = [f'<div class="src-head">Sources for: {inert(last.question)}</div>', turn_sources(last, None)]
    for i in range(len(turns) - 2, -1, -1):
        parts.append(f'<details class="src-turn"><summary>Earlier: {inert(turns[i].question)}</summary>'
                     f"{turn_sources(turns[i], i)}</details>")
    return "".join(parts)


def corpus_status(corpus: str, docs: int, chunks: int, embedder: str, llm: str) -> str:
    """The status line once the models and the index are loaded."""
    return (f"**Corpus** {inert(corpus)} &#183; **{count(docs, 'document')}**, **{count(chunks, 'chunk')}** "
            f"&#183; **Embedder** {inert(embedder)} &#183; **LLM** {inert(llm)}")


def count(n: int, noun: str) -> str:
    return f"{n} {noun}{'s' * (n != 1)}"
