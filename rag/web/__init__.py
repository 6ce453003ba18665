"""The web UI: a Gradio chat over the indexed articles, with clickable citations.

A thin adapter over the pipeline's events (``rag.engine.Engine.events``):

- ``render``: the HTML of answers, sources and the streaming message (pure; no Gradio);
- ``handlers``: what a page load, a question, an upload and ``/ask`` do;
- ``layout``: ``create_app(settings)``, the page and its wiring, not launched;
- ``serve``: ``launch(settings)``, with its security checks;
- ``app.css`` and ``cite.js``: the page's styles and its citation clicks.

Nothing here imports Gradio until ``handlers``, ``layout`` or ``serve`` is imported,
so ``rag.web.render`` stays cheap to import and test.
"""
