"""The web UI's event handlers: a page opens, a question is asked, files are uploaded,
``/ask`` is called. Each consumes the pipeline (``Engine.events``, ``rag.corpus.add_files``)
and renders with ``render``; none re-implements a step of it.

Per-visitor state (the conversation, a list of ``Turn``) lives in ``gr.State``; the only
process-wide object is the Engine (``rag.engine.get_engine``, or the one given).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gradio as gr

from ..answer import Answer, Citation, Delta, Final, Status
from ..config import Settings
from ..corpus import add_files
from ..errors import CorpusError, InputError, RagError
from ..ingest import read_source
from ..present import answer_dict
from .render import Context, Pending, Turn, chat_messages, corpus_status, count, inert, render_sources

if TYPE_CHECKING:
    from ..engine import Engine

log = logging.getLogger(__name__)

MAX_UPLOAD_BYTES = 2 * 1024 * 1024  # per uploaded file (Gradio refuses larger ones before they arrive)
CONTEXT_CHARS = 600  # article text shown on each side of a cited passage
EXAMPLES_FILE = "examples.json"  # example questions, in the corpus folder (not an article suffix)


def example_questions(settings: Settings) -> list[str]:
    """The questions of the example buttons: ``settings.ui_examples``, else examples.json in
    the corpus folder; none without either. A file that is not a JSON list of questions
    is an InputError naming it."""
    path = settings.ui_examples or settings.corpus_dir / EXAMPLES_FILE
    if settings.ui_examples is None and not path.is_file():
        return []
    how = 'write it as a JSON list of questions, e.g. ["Who won?", "How many died?"]'
    try:
        questions = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"Example questions {path} could not be read ({exc}).") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"Example questions {path} is not valid JSON (line {exc.lineno}): {how}.") from None
    if not isinstance(questions, list) or not all(isinstance(q, str) and q.strip() for q in questions):
        raise InputError(f"Example questions {path} is not a list of questions: {how}.")
    return [q.strip() for q in questions]


def context_of(c: Citation, window: int = CONTEXT_CHARS) -> Context:
    """The cited span with up to ``window`` characters of its article on each side."""
    text = read_source(Path(c.path))
    if text is None or text[c.start:c.end] != c.text:  # file gone or changed since indexing
        return Context("", c.text, "", "The article file changed or is missing; showing the passage as it was indexed.")
    lo, hi = max(0, c.start - window), min(len(text), c.end + window)
    # widen to whole words so the window does not start or stop mid-word
    while lo > 0 and not text[lo - 1].isspace() and c.start - lo < window + 30:
        lo -= 1
    while hi < len(text) and not text[hi].isspace() and hi - c.end < window + 30:
        hi += 1
    return Context(("…" if lo > 0 else "") + text[lo:c.start], text[c.start:c.end],
                   text[c.end:hi] + ("…" if hi < len(text) else ""))


def contexts_of(answer: Answer) -> dict[int, Context]:
    return {c.marker: context_of(c) for c in answer.citations}


# --- /ask's JSON ------------------------------------------------------------------------

ASK_API_DESCRIPTION = (
    "Answer one question from the articles (no history, not streamed). Returns "
    '{"text", "declined", "citations": [{"marker", "doc_id", "title", "source", "date", "author", "url", "page", '
    '"file", "start", "end", "text", "score"}], "disagreements": [{"quantity", "value", "source", "date", '
    '"marker"}], "timeline": [{"date", "text", "source", "marker"}], "window": {"since", "until", "phrase"} or null}; '
    "every marker [n] in text has a citation whose text is the file's text[start:end] (character offsets). "
    "Dates are ISO (YYYY-MM-DD) or null, like source, author, url and page when unknown. The key is 'file', "
    "not 'path', because gradio_client treats any dict with a 'path' as a file to download."
)


# --- what the index offers --------------------------------------------------------------


def doc_choices(engine: Engine) -> list[tuple[str, str]]:
    return [(f"{info.title} ({doc_id})", doc_id) for doc_id, info in sorted(engine.index.docs.items())]


def outlet_choices(engine: Engine) -> list[str]:
    """The outlets of the indexed articles, for the source filter."""
    return sorted({info.source for info in engine.index.docs.values() if info.source}, key=str.casefold)


def status_of(settings: Settings, engine: Engine) -> str:
    from ..models import llm_name

    index = engine.index
    return corpus_status(str(settings.corpus_dir), len(index.docs), len(engine.retriever.store), engine.embedder.name,
                         llm_name(settings))


def _searched_docs(selected: Sequence[str] | None, offered: Sequence[str] | None) -> list[str] | None:
    """The doc ids to search: None (all, including articles another visitor added since)
    when everything this page offered is ticked or the list is not loaded yet."""
    selected, offered = list(selected or []), list(offered or [])
    if offered and not selected:
        raise InputError("No documents are selected: tick at least one under Settings › Documents to search.")
    return None if not offered or set(offered) <= set(selected) else selected


class Handlers:
    """The event handlers of one app. ``engine`` replaces the shared Engine for
    ``settings`` (a test passes one with fake models)."""

    def __init__(self, settings: Settings, engine: Engine | None = None) -> None:
        self.settings = settings
        self._engine = engine
        self._upload_lock = threading.Lock()

    def engine(self) -> Engine:
        if self._engine is not None:
            return self._engine
        from ..engine import get_engine

        return get_engine(self.settings, progress=False)

    def load_page(self, progress: gr.Progress = gr.Progress()) -> Iterator[tuple]:  # noqa: B008 (Gradio idiom)
        """Status, document list, offered ids and outlets, once the models are loaded."""
        loading = "&#9203; **Loading models and index…** (the first start can take a minute)"
        yield loading, gr.update(), gr.update(), gr.update()
        try:
            progress(0.1, desc="Loading the embedder and syncing the index")
            engine = self.engine()
            engine.refresh()
            yield loading.replace("index…", "index… language model…"), gr.update(), gr.update(), gr.update()
            progress(0.6, desc="Loading the language model")
            engine.llm.count_tokens("ready")  # waits until the model worker has loaded the LLM
        except RagError as exc:
            hint = " Add articles under *Add articles* below." if isinstance(exc, CorpusError) else ""
            yield f"&#9888; **Could not start:** {inert(str(exc))}{hint}", gr.update(), [], gr.update()
            return
        choices = doc_choices(engine)
        ids = [v for _, v in choices]
        yield (status_of(self.settings, engine), gr.update(choices=choices, value=ids), ids,
               gr.update(choices=outlet_choices(engine)))

    def respond(self, question: str, turns: list[Turn], k: float, temperature: float,
                selected: list[str] | None, offered: list[str] | None, since: str | None, until: str | None,
                outlets: list[str] | None) -> Iterator[tuple]:
        """Answer in the chat: the first look's text streams, a status line shows while a
        later look runs, then the verified answer and its sources replace them."""
        question = (question or "").strip()
        if not question:
            gr.Warning("Type a question about the articles first.")
            yield gr.update(), gr.update(), gr.update(), turns
            return
        turns = list(turns or [])
        options = {"k": int(k), "temperature": float(temperature), "since": (since or "").strip() or None,
                   "until": (until or "").strip() or None, "sources": list(outlets) if outlets else None}
        box: Any = ""  # the question box is emptied once
        for step in self.states(question, turns, selected, offered, options):
            if isinstance(step, Pending):
                yield box, chat_messages(turns, step), gr.update(), turns
                box = gr.update()
            else:
                turns = turns + [step]
                yield box, chat_messages(turns), render_sources(turns), turns

    def states(self, question: str, turns: Sequence[Turn], selected: Sequence[str] | None,
               offered: Sequence[str] | None, options: dict) -> Iterator[Pending | Turn]:
        """The states of one question: Pending while it is answered, then the finished Turn."""
        yield Pending(question)
        history = [(t.question, t.answer.text) for t in turns if t.answer is not None]
        stream = None
        try:
            stream = self.engine().events(question, history, doc_ids=_searched_docs(selected, offered), **options)
            partial, status, answer = "", "", None
            for event in stream:
                if isinstance(event, Final):
                    answer = event.answer
                elif isinstance(event, Delta) and not status:  # only the first look's text is shown
                    partial += event.text
                    yield Pending(question, partial, status)
                elif isinstance(event, Status):
                    status = event.text
                    yield Pending(question, partial, status)
            assert answer is not None, "the pipeline ended without a Final event"
            turn = Turn(question, answer, contexts=contexts_of(answer))
        except RagError as exc:
            turn = Turn(question, error=str(exc))
        except Exception as exc:  # keep the page usable; the log has the details
            log.exception("Answering %r failed", question)
            turn = Turn(question, error=f"Something went wrong while answering ({type(exc).__name__}). "
                                        "See the server log.")
        finally:
            if stream is not None:
                stream.close()  # releases the model if the visitor went away mid-answer
        yield turn

    def ask_api(self, question: str) -> dict:
        """Answer one question from the articles (no history, not streamed)."""
        try:
            return answer_dict(self.engine().ask(question))
        except RagError as exc:
            raise gr.Error(str(exc)) from exc

    def add_files(self, files: list[str] | None, selected: list[str] | None, offered: list[str] | None) -> tuple:
        """Uploads into the corpus folder, each checked by ``rag.corpus.add_files``; the index
        is updated at once. Returns the result list, status, document list, the emptied
        uploader, offered ids and outlets."""
        if not files:
            return gr.update(), gr.update(), gr.update(), None, gr.update(), gr.update()
        paths = [Path(f if isinstance(f, str) else getattr(f, "name", str(f))) for f in files]
        with self._upload_lock:
            engine = self._engine_if_any()
            before = set(engine.index.docs) if engine else set()
            result = add_files(paths, self.settings.corpus_dir, names=[p.name for p in paths],
                               max_bytes=MAX_UPLOAD_BYTES)
            lines = [f'<li class="upload-err">&#10007; {inert(r.name)} was not added: {inert(r.reason)}.</li>'
                     for r in result.rejected]
            engine, added = self._index(engine, result.added, lines)
            if engine is None:
                return _upload_list(lines), gr.update(), gr.update(), None, gr.update(), gr.update()
            lines += [_added_line(engine, path) for path in added]
            choices = doc_choices(engine)
            ids = [v for _, v in choices]
            had_all = not offered or set(offered) <= set(selected or [])
            value = ids if had_all else [v for v in (selected or []) if v in engine.index.docs]
            value += [v for v in ids if v not in before and v not in value]
            return (_upload_list(lines), status_of(self.settings, engine), gr.update(choices=choices, value=value),
                    None, ids, gr.update(choices=outlet_choices(engine)))

    def _engine_if_any(self) -> Engine | None:
        try:
            return self.engine()
        except RagError:  # e.g. an empty corpus folder: the first articles come from an upload
            return None

    def _index(self, engine: Engine | None, added: list[Path], lines: list[str]) -> tuple[Engine | None, list[Path]]:
        """Index the added files; if that fails, take them out of the folder again."""
        if not added:
            return engine, added
        try:
            if engine is None:
                return self.engine(), added
            engine.refresh()
            return engine, added
        except RagError as exc:  # put the folder back as it was
            for path in added:
                path.unlink(missing_ok=True)
            if engine is not None:
                engine.refresh()
            lines.append(f'<li class="upload-err">&#10007; Nothing was added: {inert(str(exc))}</li>')
            return engine, []


def _added_line(engine: Engine, path: Path) -> str:
    info = engine.index.docs.get(path.stem)
    if info is None:  # the checks passed but the index did not take it
        return (f'<li class="upload-err">&#10007; {inert(path.name)} was copied into the corpus folder but not '
                "indexed; see the server log.</li>")
    return (f'<li class="upload-ok">&#10003; Added {inert(path.name)}: &#8220;{inert(info.title)}&#8221;, '
            f'{count(info.chunks, "passage")}. It can be asked about now.</li>')


def _upload_list(lines: list[str]) -> str:
    return f'<ul class="upload-result">{"".join(lines)}</ul>'
