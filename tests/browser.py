"""Helpers for the browser tests: a free loopback port, headless Chromium (Debian's
/usr/bin/chromium; the browser Playwright would download is never used), and a recorder
of what the chat showed while an answer was on its way."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is needed at /usr/bin/chromium: apt-get update && apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    profile = tmp_path_factory.mktemp("chromium-profile")  # fresh user data dir
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(profile), executable_path=str(CHROMIUM), headless=True,
            viewport={"width": 1400, "height": 1000},
            args=["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"],
        )
        context.set_default_timeout(60_000)
        try:
            yield context
        finally:
            context.close()


# Records every state of the chat as the page changes it (a MutationObserver sees each DOM
# update, however quickly the next follows), until as many finished answers as `done` are shown:
# the text of the message being streamed, its status line, and the whole chat's text.
_WATCH = """done => {
  const chat = document.querySelector('#chat');
  const seen = window.__ragSeen = {streaming: [], status: [], before: [], finished: false};
  const push = (list, value) => { if (value && list[list.length - 1] !== value) list.push(value); };
  const record = () => {
    if (seen.finished) return;
    if (chat.querySelectorAll('.rag-answer, .rag-declined, .rag-error').length >= done) {
      seen.finished = true;
      return;
    }
    const streaming = chat.querySelectorAll('.rag-streaming');
    if (streaming.length) push(seen.streaming, streaming[streaming.length - 1].innerText);
    chat.querySelectorAll('.rag-status').forEach(e => push(seen.status, e.innerText));
    push(seen.before, chat.innerText);
  };
  new MutationObserver(record).observe(chat, {subtree: true, childList: true, characterData: true});
}"""


def watch_chat(page, done: int) -> None:
    """Start recording the chat's states until ``done`` finished answers are shown."""
    page.evaluate(_WATCH, done)


def chat_states(page) -> dict:
    """{"streaming": [...], "status": [...], "before": [...], "finished": bool}, in order."""
    return page.evaluate("() => window.__ragSeen")
