"""Serving the web UI, safely by default: this machine only (127.0.0.1) unless a password
or an explicit ``ui_allow_public`` says otherwise, a cap on upload size, no files served
beyond what the app made, no web fonts (offline), no server-side rendering.

    >>> launch(Settings(ui_port=8000))   # doctest: +SKIP
"""

from __future__ import annotations

import gradio as gr

from ..config import Settings
from ..errors import RagError
from ..present import is_loopback
from .handlers import MAX_UPLOAD_BYTES
from .layout import create_app

USER = "rag"  # the login name when ui_password is set


def password(settings: Settings) -> str | None:
    return settings.ui_password.get_secret_value() if settings.ui_password else None  # never blank: see Settings


def check_exposure(settings: Settings, share: bool = False) -> None:
    """Refuse to serve beyond this machine (or by a share link) without a password,
    unless ``ui_allow_public`` says so."""
    if (share or not is_loopback(settings.ui_host)) and not password(settings) and not settings.ui_allow_public:
        where = "a public share link" if share else f"address {settings.ui_host}"
        raise RagError(f"Refusing to serve on {where} without a password: anyone who can reach it could read "
                       f"and add articles. Set RAG_UI_PASSWORD (log in as user '{USER}'), or set "
                       "RAG_UI_ALLOW_PUBLIC=1 if that is really what you want.")


def launch_options() -> dict:
    """Keyword arguments for ``Blocks.launch`` that every launch of this UI should use."""
    return {
        "max_file_size": MAX_UPLOAD_BYTES,
        "allowed_paths": [],  # serve only what the app itself made (uploads, its own assets)
        "theme": gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"],
                                   font_mono=["ui-monospace", "monospace"]),  # no web fonts: offline
        "footer_links": ["api"],
        "ssr_mode": False,
    }


def launch(settings: Settings, share: bool = False) -> None:
    """Serve the UI on ``settings.ui_host``:``settings.ui_port`` (blocks until stopped)."""
    check_exposure(settings, share)
    secret = password(settings)
    create_app(settings).launch(server_name=settings.ui_host, server_port=settings.ui_port, share=share,
                                auth=(USER, secret) if secret else None, **launch_options())
