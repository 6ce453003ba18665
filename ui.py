"""Start the web UI: `python ui.py [HOST] [PORT]`, or set RAG_UI_HOST / RAG_UI_PORT (default 127.0.0.1:7860)."""
import sys

from rag.config import Settings
from rag.errors import RagError
from rag.web.serve import launch

if __name__ == "__main__":
    try:
        launch(Settings(**dict(zip(("ui_host", "ui_port"), sys.argv[1:]))))
    except RagError as exc:
        sys.exit(f"error: {exc}")
