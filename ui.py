"""Start the web UI: `python ui.py [HOST] [PORT]`, or set RAG_UI_HOST / RAG_UI_PORT (default 127.0.0.1:7860)."""
import sys

from rag.config import Settings
from rag.errors import RagError
from rag.ui_app import launch

if __name__ == "__main__":
    args = sys.argv[1:]
    try:
        launch(Settings(), host=args[0] if args else None, port=args[1] if len(args) > 1 else None)
    except RagError as exc:
        sys.exit(f"error: {exc}")
