"""The web UI: a Gradio chat over the indexed articles, with clickable citations.

``create_app(settings)`` builds the page without starting anything heavy: the
embedder, the index and the LLM are loaded by the page's load event, so the
first visit shows "Loading models…" instead of a blank page. ``launch()`` serves
it on 127.0.0.1 by default.

Everything shown in the page that comes from an article or from the model is
made inert before any markup of ours is added (see ``inert``): article text is
untrusted and must never become live HTML, a link or Markdown formatting.
Per-visitor state (the conversation) lives in ``gr.State``; the only
process-wide object is the shared Engine from ``rag.answer.get_engine``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gradio as gr

from .answer import Delta, Final, Status
from .config import Settings
from .errors import CorpusError, InputError, RagError
from .ingest import load_document, read_source
from .present import answer_dict, citation_dict  # noqa: F401 (public here too, as before)
from .present import is_loopback as _is_loopback
from .text import RENDERED_MARKER

log = logging.getLogger(__name__)

MAX_UPLOAD = "2mb"  # Gradio's spelling; 2 MiB
MAX_UPLOAD_BYTES = 2 * 1024 * 1024
UPLOAD_SUFFIXES = (".txt", ".md")
CONTEXT_CHARS = 600  # article text shown on each side of a cited passage
PASSWORD_ENV = "RAG_UI_PASSWORD"
ALLOW_PUBLIC_ENV = "RAG_UI_ALLOW_PUBLIC"
USER = "rag"

EXAMPLES = [
    "How many North Korean troops are in Russia according to the Pentagon?",
    "Which towns did Russia say it captured in Donetsk?",
    "How long did North Korea's ICBM fly?",
    "Who won the 2022 football World Cup?",
]

ASK_API_DESCRIPTION = (
    "Answer one question from the articles (no history, not streamed). Returns "
    '{"text", "declined", "citations": [{"marker", "doc_id", "title", "source", "date", "author", "url", "page", '
    '"file", "start", "end", "text", "score"}]} (source, date, author, url and page are null where unknown); '
    "every marker [n] in text has a citation whose text is the file's text[start:end] (character offsets). "
    "The key is 'file', not 'path', because gradio_client treats any dict with a 'path' as a file to download."
)


CSS = """
#status { font-size: 0.9em; }
#sources-panel { max-height: 640px; overflow-y: auto; }
.src-empty { color: #6b7280; font-style: italic; padding: 0.5em 0; }
.src-head { font-weight: 600; margin: 0.2em 0 0.6em; }
.src-block { border: 1px solid #d1d5db; border-radius: 8px; padding: 0.6em 0.8em; margin: 0 0 0.8em;
             scroll-margin-top: 12px; transition: box-shadow 0.3s, border-color 0.3s; }
.src-block.src-active { border-color: #2563eb; box-shadow: 0 0 0 3px rgba(37, 99, 235, 0.35); }
.src-meta { font-size: 0.85em; color: #374151; margin-bottom: 0.4em; }
.src-meta .src-marker { display: inline-block; min-width: 1.6em; text-align: center; font-weight: 700;
                        color: #fff; background: #2563eb; border-radius: 0.8em; padding: 0 0.35em; }
.src-meta .src-title { font-weight: 600; }
.src-meta code { font-size: 0.95em; }
.src-context { white-space: pre-wrap; font-size: 0.88em; line-height: 1.45; color: #1f2937;
               max-height: 260px; overflow-y: auto; }
.src-context mark.cite-mark { background: #fde68a; color: #111827; padding: 0 1px; border-radius: 2px; }
.src-note { font-size: 0.8em; color: #b45309; }
details.src-turn { margin-top: 0.8em; }
details.src-turn > summary { cursor: pointer; color: #4b5563; }
a.cite-badge, a.cite-badge:visited { display: inline-block; min-width: 1.35em; padding: 0 0.35em; margin: 0 1px;
    border-radius: 0.7em; background: #2563eb; color: #fff !important; font-size: 0.75em; font-weight: 700;
    line-height: 1.5; text-align: center; text-decoration: none !important; vertical-align: super; cursor: pointer; }
a.cite-badge:hover { background: #1d4ed8; }
.rag-declined { color: #6b7280; font-style: italic; border-left: 3px solid #9ca3af; padding-left: 0.6em; }
.rag-declined .rag-declined-label { display: block; font-size: 0.8em; font-weight: 600; font-style: normal;
    text-transform: uppercase; letter-spacing: 0.04em; color: #6b7280; }
.rag-error { color: #b91c1c; }
.rag-streaming { color: #374151; }
.rag-status { color: #6b7280; font-size: 0.9em; margin-top: 0.3em; }
.upload-ok { color: #15803d; }
.upload-err { color: #b91c1c; }
"""

# Clicking a citation badge scrolls its source block into view and highlights it.
# Runs once per page (the listener is on the document, so re-rendered messages
# keep working); the href="#src-N" anchor is the fallback without JavaScript.
CLICK_JS = """
if (!window.__ragCiteHandler) {
  window.__ragCiteHandler = true;
  document.addEventListener('click', function (ev) {
    var badge = ev.target && ev.target.closest ? ev.target.closest('a.cite-badge') : null;
    if (!badge) return;
    var id = (badge.getAttribute('href') || '').replace(/^#/, '');
    var block = id ? document.getElementById(id) : null;
    if (!block) return;
    ev.preventDefault();
    ev.stopPropagation();
    var turn = block.closest('details');
    if (turn) turn.open = true;
    document.querySelectorAll('.src-block.src-active').forEach(function (b) { b.classList.remove('src-active'); });
    block.classList.add('src-active');
    block.scrollIntoView({block: 'nearest'});
    var ctx = block.querySelector('.src-context'), mark = block.querySelector('mark');
    if (ctx && mark) ctx.scrollTop += mark.getBoundingClientRect().top - ctx.getBoundingClientRect().top - 40;
  }, true);
}
"""

# Each source shows its article around the passage; scroll each box to its highlight.
SOURCES_JS = """
function ragShowMarks() {
  element.querySelectorAll('.src-context').forEach(function (ctx) {
    var mark = ctx.querySelector('mark');
    if (mark && mark.getClientRects().length) {
      ctx.scrollTop += mark.getBoundingClientRect().top - ctx.getBoundingClientRect().top - 40;
    }
  });
}
ragShowMarks();
watch('value', ragShowMarks);
"""


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
    """Like ``inert`` but keeps newlines as they are (for pre-wrap blocks in gr.HTML)."""
    return "\n".join(inert(line) for line in text.split("\n"))


def src_id(marker: int, turn: int | None = None) -> str:
    """Anchor of a source block: ``src-N`` for the latest answer, ``src-tT-N`` for earlier ones."""
    return f"src-{marker}" if turn is None else f"src-t{turn}-{marker}"


def render_answer(text: str, markers: set[int], turn: int | None = None) -> str:
    """The verified answer as safe HTML with each known [n] turned into a badge."""
    parts: list[str] = []
    pos = 0
    for m in RENDERED_MARKER.finditer(text):
        n = int(m.group(1))
        if n not in markers:
            continue  # not a citation of this answer: stays plain (escaped) text
        parts.append(inert(text[pos:m.start()]))
        parts.append(f'<a class="cite-badge" href="#{src_id(n, turn)}" title="Show source {n}">{n}</a>')
        pos = m.end()
    parts.append(inert(text[pos:]))
    return f'<div class="rag-answer">{"".join(parts)}</div>'


def render_declined(text: str) -> str:
    return ('<div class="rag-declined"><span class="rag-declined-label">No answer in the articles</span>'
            f"{inert(text)}</div>")


def render_turn(turn: dict, index: int | None) -> str:
    """The assistant message for one finished turn (``index`` None = latest)."""
    if turn.get("error"):
        return f'<div class="rag-error">&#9888; {inert(turn["error"])}</div>'
    if turn.get("declined"):
        return render_declined(turn["text"])
    return render_answer(turn["text"], {c["marker"] for c in turn["citations"]}, index)


def chat_messages(turns: list[dict], pending: tuple[str, str, str] | None = None) -> list[dict]:
    """Chatbot messages for the conversation, plus a question still being answered:
    (question, the first look's text so far, a status line such as "Checking the passages again…")."""
    messages: list[dict] = []
    for i, turn in enumerate(turns):
        latest = i == len(turns) - 1 and pending is None
        messages.append({"role": "user", "content": inert(turn["question"])})
        messages.append({"role": "assistant", "content": render_turn(turn, None if latest else i)})
    if pending is not None:
        question, partial, status = pending
        body = inert(partial) if partial else "Searching the articles&#8230;"
        line = f'<div class="rag-status">&#9203; {inert(status)}</div>' if status else ""
        messages.append({"role": "user", "content": inert(question)})
        messages.append({"role": "assistant",
                         "content": f'<div class="rag-streaming">{body}&#9612;</div>{line}'})
    return messages


# --- sources panel ------------------------------------------------------------------


def context_of(citation: dict, window: int = CONTEXT_CHARS) -> dict:
    """The cited span with up to ``window`` characters of its article on each side."""
    start, end = citation["start"], citation["end"]
    text = read_source(Path(citation["file"]))
    if text is None or text[start:end] != citation["text"]:  # file gone or changed since indexing
        return {"before": "", "span": citation["text"], "after": "", "start": start, "end": end,
                "note": "The article file changed or is missing; showing the passage as it was indexed."}
    lo, hi = max(0, start - window), min(len(text), end + window)
    # widen to whole words so the window does not start or stop mid-word
    while lo > 0 and not text[lo - 1].isspace() and start - lo < window + 30:
        lo -= 1
    while hi < len(text) and not text[hi].isspace() and hi - end < window + 30:
        hi += 1
    return {"before": ("…" if lo > 0 else "") + text[lo:start], "span": text[start:end],
            "after": text[end:hi] + ("…" if hi < len(text) else ""), "start": start, "end": end, "note": ""}


def source_block(c: dict, turn: int | None) -> str:
    ctx = c["context"]
    note = f'<div class="src-note">{inert(ctx["note"])}</div>' if ctx["note"] else ""
    return (
        f'<section class="src-block" id="{src_id(c["marker"], turn)}" data-marker="{c["marker"]}" '
        f'data-doc="{inert(c["doc_id"])}" data-start="{c["start"]}" data-end="{c["end"]}">'
        f'<div class="src-meta"><span class="src-marker">{c["marker"]}</span> '
        f'<span class="src-title">{inert(c["title"])}</span> &#183; <code>{inert(c["doc_id"])}</code>'
        f' &#183; score {c["score"]:.3f} &#183; chars {c["start"]}&#8211;{c["end"]}</div>{note}'
        f'<div class="src-context">{inert_block(ctx["before"])}<mark class="cite-mark">'
        f'{inert_block(ctx["span"])}</mark>{inert_block(ctx["after"])}</div></section>'
    )


def turn_sources(turn: dict, index: int | None) -> str:
    if turn.get("error"):
        return '<div class="src-empty">Nothing was cited: the question could not be answered.</div>'
    if turn.get("declined") or not turn["citations"]:
        return ('<div class="src-empty src-declined">Nothing was cited: the articles do not '
                "answer this question.</div>")
    return "".join(source_block(c, index) for c in turn["citations"])


def render_sources(turns: list[dict]) -> str:
    """Sources of the latest answer (ids src-N), then earlier answers' sources folded away."""
    if not turns:
        return '<div class="src-empty">Sources of the answer appear here, with each cited passage highlighted.</div>'
    last = turns[-1]
    parts = [f'<div class="src-head">Sources for: {inert(last["question"])}</div>', turn_sources(last, None)]
    for i in range(len(turns) - 2, -1, -1):
        parts.append(f'<details class="src-turn"><summary>Earlier: {inert(turns[i]["question"])}</summary>'
                     f"{turn_sources(turns[i], i)}</details>")
    return "".join(parts)


# --- uploads ---------------------------------------------------------------------------


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


class _WarningCatcher(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def check_upload(path: Path, original_name: str, corpus_dir: Path, known_sha: dict[str, str]) -> tuple[str, str]:
    """(safe name, "") when the file can be added, else (display name, reason)."""
    name = safe_filename(original_name)
    shown = name or Path(original_name or "?").name or "?"
    if name is None:
        return shown, "the file name is not usable"
    if not name.lower().endswith(UPLOAD_SUFFIXES):
        return shown, "only .txt and .md files can be added"
    try:
        size = path.stat().st_size
    except OSError:
        return shown, "the upload could not be read"
    if size > MAX_UPLOAD_BYTES:
        return shown, f"it is larger than 2 MB ({size:,} bytes)"
    if size == 0:
        return shown, "it is empty"
    data = path.read_bytes()
    if b"\x00" in data:
        return shown, "it looks like a binary file, not text"
    try:
        data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return shown, f"it is not valid UTF-8 text (byte {exc.start}); re-save it as UTF-8"
    sha = hashlib.sha256(data).hexdigest()
    if sha in known_sha:
        return shown, f"the same file is already in the corpus as {known_sha[sha]}"
    stem = name.rsplit(".", 1)[0].lower()
    if corpus_dir.is_dir() and any(p.stem.lower() == stem for p in corpus_dir.iterdir()):
        return shown, "a file with this name is already in the corpus; rename it to add it"
    # Final word: the same loader the index uses, on a copy under the final name.
    catcher = _WarningCatcher()
    ingest_log = logging.getLogger("rag.ingest")
    with tempfile.TemporaryDirectory(prefix="rag-upload-") as tmp:
        probe = Path(tmp) / name
        shutil.copyfile(path, probe)
        ingest_log.addHandler(catcher)
        try:
            doc = load_document(probe)
        finally:
            ingest_log.removeHandler(catcher)
    if doc is None:
        why = catcher.messages[-1] if catcher.messages else "it could not be read as an article"
        why = why.replace(str(probe), name).removeprefix(f"Skipping {name}: ")
        return shown, why.rstrip(".")
    return name, ""


# --- the app --------------------------------------------------------------------------


def _engine(settings: Settings):
    from .engine import get_engine

    return get_engine(settings, progress=False)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'s' * (n != 1)}"


def status_text(settings: Settings, engine: Any) -> str:
    from .models import llm_name

    index = engine.index
    return (f"**Corpus** {inert(str(settings.corpus_dir))} &#183; **{_count(len(index.docs), 'document')}**, "
            f"**{_count(len(index.chunks), 'chunk')}** &#183; **Embedder** {inert(engine.embedder.name)} &#183; "
            f"**LLM** {inert(llm_name(settings))}")


def doc_choices(engine: Any) -> list[tuple[str, str]]:
    return [(f"{info.title} ({doc_id})", doc_id) for doc_id, info in sorted(engine.index.docs.items())]


def create_app(settings: Settings) -> gr.Blocks:
    """The UI for ``settings``, not yet launched. Models load when a page opens."""
    upload_lock = threading.Lock()

    def load_page(progress: gr.Progress = gr.Progress()) -> Iterator[tuple]:  # noqa: B008 (Gradio idiom)
        loading = "&#9203; **Loading models and index…** (the first start can take a minute)"
        yield loading, gr.update(), gr.update()
        try:
            progress(0.1, desc="Loading the embedder and syncing the index")
            engine = _engine(settings)
            engine.refresh()
            yield loading.replace("index…", "index… language model…"), gr.update(), gr.update()
            progress(0.6, desc="Loading the language model")
            engine.llm.count_tokens("ready")  # waits until the model worker has loaded the LLM
        except RagError as exc:
            hint = " Add articles under *Add articles* below." if isinstance(exc, CorpusError) else ""
            yield f"&#9888; **Could not start:** {inert(str(exc))}{hint}", gr.update(), []
            return
        choices = doc_choices(engine)
        ids = [v for _, v in choices]
        yield status_text(settings, engine), gr.update(choices=choices, value=ids), ids

    def respond(question: str, turns: list[dict], k: float, temperature: float,
                selected: list[str] | None, offered: list[str] | None) -> Iterator[tuple]:
        question = (question or "").strip()
        if not question:
            gr.Warning("Type a question about the articles first.")
            yield gr.update(), gr.update(), gr.update(), turns
            return
        turns = list(turns or [])
        history = [(t["question"], t["text"]) for t in turns if not t.get("error")]
        yield "", chat_messages(turns, (question, "", "")), gr.update(), turns
        turn: dict
        stream = None
        try:
            engine = _engine(settings)
            selected, offered = list(selected or []), list(offered or [])
            if offered and not selected:
                raise RagError("No documents are selected: tick at least one under Settings › Documents to search.")
            # everything this page offered is ticked (or the list is not loaded yet): search all,
            # including articles another visitor added since
            doc_ids = None if not offered or set(offered) <= set(selected) else selected
            stream = engine.events(question, history=history, k=int(k), doc_ids=doc_ids,
                                   temperature=float(temperature))
            raw, status, answer = "", "", None
            for event in stream:
                if isinstance(event, Final):
                    answer = event.answer
                    continue
                if isinstance(event, Delta):
                    raw += event.text
                elif isinstance(event, Status):  # a later look: its raw text is never shown
                    status = event.text
                else:
                    continue
                yield gr.update(), chat_messages(turns, (question, raw, status)), gr.update(), turns
            assert answer is not None
            turn = {"question": question, **answer_dict(answer)}
            for c in turn["citations"]:
                c["context"] = context_of(c)
        except RagError as exc:
            turn = {"question": question, "text": "", "declined": False, "citations": [], "error": str(exc)}
        except Exception as exc:  # keep the page usable; the log has the details
            log.exception("Answering %r failed", question)
            turn = {"question": question, "text": "", "declined": False, "citations": [],
                    "error": f"Something went wrong while answering ({type(exc).__name__}). See the server log."}
        finally:
            if stream is not None:
                stream.close()  # releases the model if the visitor went away mid-answer
        turns = turns + [turn]
        yield gr.update(), chat_messages(turns), render_sources(turns), turns

    def ask_api(question: str) -> dict:
        """Answer one question from the articles (no history, not streamed)."""
        try:
            return answer_dict(_engine(settings).ask(question))
        except RagError as exc:
            raise gr.Error(str(exc)) from exc

    def add_files(files: list[str] | None, selected: list[str] | None, offered: list[str] | None) -> tuple:
        if not files:
            return gr.update(), gr.update(), gr.update(), None, gr.update()
        lines: list[str] = []
        added: list[str] = []
        corpus = settings.corpus_dir
        with upload_lock:
            try:
                engine = _engine(settings)
            except RagError:  # e.g. an empty corpus folder: the first articles come from here
                engine = None
            docs_before = dict(engine.index.docs) if engine else {}
            known = {info.sha256: info.file for info in docs_before.values()}
            for f in files:
                path = Path(f if isinstance(f, str) else getattr(f, "name", str(f)))
                name, why = check_upload(path, path.name, corpus, known)
                if why:
                    lines.append(f'<li class="upload-err">&#10007; {inert(name)} was not added: {inert(why)}.</li>')
                    continue
                lines.append(name)  # replaced by the outcome once the index has been updated
                corpus.mkdir(parents=True, exist_ok=True)
                tmp = corpus / f".upload-{os.getpid()}-{threading.get_ident()}.part"  # not an article suffix
                shutil.copyfile(path, tmp)
                os.replace(tmp, corpus / name)
                known[hashlib.sha256((corpus / name).read_bytes()).hexdigest()] = name
                added.append(name)
            if added:
                try:
                    if engine is None:
                        engine = _engine(settings)
                    else:
                        engine.refresh()
                except RagError as exc:  # put the folder back as it was
                    for name in added:
                        (corpus / name).unlink(missing_ok=True)
                    if engine is not None:
                        engine.refresh()
                    lines = [line for line in lines if line not in added]
                    lines.append(f'<li class="upload-err">&#10007; Nothing was added: {inert(str(exc))}</li>')
                    added = []
            skipped = [n for n in added if engine is not None and n.rsplit(".", 1)[0] not in engine.index.docs]
            for name in added:
                at = lines.index(name)
                if name in skipped:  # the loader passed over it after all (same text as another article)
                    (corpus / name).unlink(missing_ok=True)
                    lines[at] = (f'<li class="upload-err">&#10007; {inert(name)} was not added: it has the same '
                                 "text as an article already in the corpus.</li>")
                    continue
                info = engine.index.docs[name.rsplit(".", 1)[0]]
                lines[at] = (f'<li class="upload-ok">&#10003; Added {inert(name)}: &#8220;{inert(info.title)}'
                             f'&#8221;, {_count(info.chunks, "passage")}. It can be asked about now.</li>')
            if skipped:
                engine.refresh()
            if engine is None:
                return f'<ul class="upload-result">{"".join(lines)}</ul>', gr.update(), gr.update(), None, gr.update()
            choices = doc_choices(engine)
            ids = [v for _, v in choices]
            had_all = not offered or set(offered) <= set(selected or [])
            value = ids if had_all else [v for v in (selected or []) if v in engine.index.docs]
            value += [v for v in ids if v not in docs_before and v not in value]
            status = status_text(settings, engine)
        return f'<ul class="upload-result">{"".join(lines)}</ul>', status, gr.update(choices=choices, value=value), \
            None, ids

    # delete_cache: uploads Gradio keeps in its own cache are removed after an hour
    with gr.Blocks(title="News RAG chat", analytics_enabled=False, delete_cache=(3600, 3600)) as demo:
        gr.HTML(f"<style>{CSS}</style>", elem_id="rag-style", js_on_load=CLICK_JS)
        gr.Markdown("## Ask the news articles\nAnswers come only from the articles in the corpus folder, "
                    "with numbered citations. Click a number to see the passage in its article.")
        status = gr.Markdown("&#9203; **Loading models…**", elem_id="status")
        turns_state = gr.State([])  # this visitor's finished turns (question, text, citations…)
        offered = gr.State([])  # doc ids this page's document list offers
        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                chatbot = gr.Chatbot(label="Chat", elem_id="chat", height=480, buttons=[],
                                     feedback_options=None, latex_delimiters=[], sanitize_html=True,
                                     placeholder="Ask a question about the news articles.")
                with gr.Row():
                    question = gr.Textbox(show_label=False, placeholder="Ask a question and press Enter",
                                          elem_id="question", scale=5, lines=1, max_lines=4, autofocus=True)
                    send = gr.Button("Ask", variant="primary", scale=1, elem_id="ask-button")
                with gr.Row(elem_id="examples"):
                    example_buttons = [gr.Button(q, size="sm", elem_classes=["example-q"]) for q in EXAMPLES]
            with gr.Column(scale=2):
                gr.Markdown("### Sources")
                sources = gr.HTML(render_sources([]), elem_id="sources-panel", js_on_load=SOURCES_JS)
        with gr.Accordion("Settings", open=False, elem_id="settings"):
            k = gr.Slider(1, 10, value=min(settings.top_k, 10), step=1, label="Passages given to the model (k)")
            temperature = gr.Slider(0.0, 1.0, value=min(settings.temperature, 1.0), step=0.05,
                                    label="Temperature (0 = the same answer every time)")
            docs = gr.CheckboxGroup(choices=[], value=[], label="Documents to search", elem_id="doc-select")
        with gr.Accordion("Add articles", open=False, elem_id="add-articles"):
            gr.Markdown(".txt or .md files in UTF-8, at most 2 MB each. They are copied into the corpus "
                        "folder and indexed at once.")
            # No file_types: Gradio would reject a whole batch with a generic message; check_upload
            # names each bad file and why, and still adds the good ones.
            uploader = gr.File(file_count="multiple", type="filepath", label="Article files", elem_id="uploader")
            upload_result = gr.HTML("", elem_id="upload-result", js_on_load=None)

        demo.load(load_page, None, [status, docs, offered], api_visibility="private")

        chat_io = dict(inputs=[question, turns_state, k, temperature, docs, offered],
                       outputs=[question, chatbot, sources, turns_state],
                       concurrency_limit=1, concurrency_id="llm", api_visibility="private")
        question.submit(respond, **chat_io)
        send.click(respond, **chat_io)
        for button, text in zip(example_buttons, EXAMPLES):
            button.click(lambda t=text: t, None, question, queue=False, api_visibility="private").then(
                respond, **chat_io)
        chatbot.clear(lambda: ([], render_sources([])), None, [turns_state, sources],
                      queue=False, api_visibility="private")
        uploader.upload(add_files, [uploader, docs, offered], [upload_result, status, docs, uploader, offered],
                        api_visibility="private")
        gr.api(ask_api, api_name="ask", api_description=ASK_API_DESCRIPTION, concurrency_limit=1,
               concurrency_id="llm")

    demo.queue(default_concurrency_limit=4)
    return demo


# --- launching ---------------------------------------------------------------------------


def launch_options() -> dict:
    """Keyword arguments for ``Blocks.launch`` that every launch of this UI should use."""
    return {
        "max_file_size": MAX_UPLOAD,
        "allowed_paths": [],  # serve only what the app itself made (uploads, its own assets)
        "theme": gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"],
                                   font_mono=["ui-monospace", "monospace"]),  # no web fonts: offline
        "footer_links": ["api"],
        "ssr_mode": False,
    }


def address(host: str | None = None, port: str | int | None = None) -> tuple[str, int]:
    """Host and port as given, else from RAG_UI_HOST / RAG_UI_PORT, else 127.0.0.1:7860."""
    host = host or os.environ.get("RAG_UI_HOST") or "127.0.0.1"
    text = str(port or os.environ.get("RAG_UI_PORT") or 7860)
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise InputError(f"Port {text!r} is not a port number: give one from 1 to 65535 (or unset RAG_UI_PORT).")
    return host, int(text)


def launch(settings: Settings, host: str | None = None, port: str | int | None = None, share: bool = False,
           allow_public: bool | None = None) -> None:
    """Serve the UI (blocks until stopped). Binding beyond this machine or sharing needs
    RAG_UI_PASSWORD (login as user "rag"), or an explicit allow_public / RAG_UI_ALLOW_PUBLIC=1."""
    host, port = address(host, port)
    password = os.environ.get(PASSWORD_ENV) or None
    if allow_public is None:
        allow_public = os.environ.get(ALLOW_PUBLIC_ENV, "").lower() in ("1", "true", "yes")
    if (share or not _is_loopback(host)) and not password and not allow_public:
        where = "a public share link" if share else f"address {host}"
        raise RagError(f"Refusing to serve on {where} without a password: anyone who can reach it could read "
                       f"and add articles. Set {PASSWORD_ENV} (log in as user '{USER}'), or set "
                       f"{ALLOW_PUBLIC_ENV}=1 if that is really what you want.")
    demo = create_app(settings)
    demo.launch(server_name=host, server_port=port, share=share,
                auth=(USER, password) if password else None, **launch_options())
