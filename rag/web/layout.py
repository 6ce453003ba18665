"""The web UI's page: its components and which handler each event calls.

``create_app(settings)`` builds the page without loading anything heavy (the models
and the index load in the page's load event, so the first visit shows "Loading
models…") and without launching it; ``rag.web.serve.launch`` serves it.
"""

from __future__ import annotations

from importlib.resources import files
from types import SimpleNamespace

import gradio as gr

from ..config import Settings
from .handlers import ASK_API_DESCRIPTION, Handlers, example_questions
from .render import render_sources


def static(name: str) -> str:
    """A file shipped beside this module (app.css, cite.js)."""
    return (files(__package__) / name).read_text(encoding="utf-8")


def create_app(settings: Settings, engine=None) -> gr.Blocks:
    """The UI for ``settings``, not yet launched. ``engine`` replaces the shared Engine
    (tests pass one with fake models)."""
    examples = example_questions(settings)
    # delete_cache: uploads Gradio keeps in its own cache are removed after an hour
    with gr.Blocks(title="News RAG chat", analytics_enabled=False, delete_cache=(3600, 3600)) as demo:
        ui = _components(settings, examples)
        _wire(demo, Handlers(settings, engine), ui, examples)
    demo.queue(default_concurrency_limit=4)
    return demo


def _components(settings: Settings, examples: list[str]) -> SimpleNamespace:
    gr.HTML(f"<style>{static('app.css')}</style>", elem_id="rag-style", js_on_load=None)
    gr.Markdown("## Ask the news articles\nAnswers come only from the articles in the corpus folder, "
                "with numbered citations. Click a number to see the passage in its article.")
    ui = SimpleNamespace(status=gr.Markdown("&#9203; **Loading models…**", elem_id="status"),
                         turns=gr.State([]),  # this visitor's finished turns (rag.web.render.Turn)
                         offered=gr.State([]))  # doc ids this page's document list offers
    with gr.Row(equal_height=False):
        with gr.Column(scale=3):
            ui.chatbot = gr.Chatbot(label="Chat", elem_id="chat", height=480, buttons=[], feedback_options=None,
                                    latex_delimiters=[], sanitize_html=True,
                                    placeholder="Ask a question about the news articles.")
            with gr.Row():
                ui.question = gr.Textbox(show_label=False, placeholder="Ask a question and press Enter",
                                         elem_id="question", scale=5, lines=1, max_lines=4, autofocus=True)
                ui.send = gr.Button("Ask", variant="primary", scale=1, elem_id="ask-button")
            with gr.Row(elem_id="examples", visible=bool(examples)):
                ui.buttons = [gr.Button(q, size="sm", elem_classes=["example-q"]) for q in examples]
        with gr.Column(scale=2):
            gr.Markdown("### Sources")
            ui.sources = gr.HTML(render_sources([]), elem_id="sources-panel", js_on_load=static("cite.js"))
    with gr.Accordion("Settings", open=False, elem_id="settings"):
        ui.k = gr.Slider(1, 10, value=min(settings.top_k, 10), step=1, label="Passages given to the model (k)")
        ui.temperature = gr.Slider(0.0, 1.0, value=min(settings.temperature, 1.0), step=0.05,
                                   label="Temperature (0 = the same answer every time)")
        with gr.Row():
            ui.since = gr.Textbox(label="Since (YYYY-MM-DD)", placeholder="any date", elem_id="since", max_lines=1)
            ui.until = gr.Textbox(label="Until (YYYY-MM-DD)", placeholder="any date", elem_id="until", max_lines=1)
        ui.outlets = gr.Dropdown(choices=[], value=[], multiselect=True, label="Outlets (none chosen: all)",
                                 elem_id="outlets")
        ui.docs = gr.CheckboxGroup(choices=[], value=[], label="Documents to search", elem_id="doc-select")
    with gr.Accordion("Add articles", open=False, elem_id="add-articles"):
        gr.Markdown(".txt, .md, .html or .pdf files, at most 2 MB each. They are copied into the corpus "
                    "folder and indexed at once.")
        # No file_types: Gradio would reject a whole batch with a generic message; rag.corpus
        # names each bad file and why, and still adds the good ones.
        ui.uploader = gr.File(file_count="multiple", type="filepath", label="Article files", elem_id="uploader")
        ui.upload_result = gr.HTML("", elem_id="upload-result", js_on_load=None)
    return ui


def _wire(demo: gr.Blocks, h: Handlers, ui: SimpleNamespace, examples: list[str]) -> None:
    private = {"api_visibility": "private"}
    demo.load(h.load_page, None, [ui.status, ui.docs, ui.offered, ui.outlets], **private)
    chat = dict(inputs=[ui.question, ui.turns, ui.k, ui.temperature, ui.docs, ui.offered, ui.since, ui.until,
                        ui.outlets],
                outputs=[ui.question, ui.chatbot, ui.sources, ui.turns], concurrency_limit=1, concurrency_id="llm",
                **private)
    ui.question.submit(h.respond, **chat)
    ui.send.click(h.respond, **chat)
    for button, text in zip(ui.buttons, examples):
        button.click(lambda t=text: t, None, ui.question, queue=False, **private).then(h.respond, **chat)
    ui.chatbot.clear(lambda: ([], render_sources([])), None, [ui.turns, ui.sources], queue=False, **private)
    ui.uploader.upload(h.add_files, [ui.uploader, ui.docs, ui.offered],
                       [ui.upload_result, ui.status, ui.docs, ui.uploader, ui.offered, ui.outlets], **private)
    gr.api(h.ask_api, api_name="ask", api_description=ASK_API_DESCRIPTION, concurrency_limit=1,
           concurrency_id="llm")
