"""Offline question answering over a folder of news articles, with verified citations.

    >>> from rag import ask
    >>> answer = ask("How many North Korean troops are in Russia?")   # doctest: +SKIP
    >>> print(answer.text); print(answer.citations[0].path)           # doctest: +SKIP
"""

from .answer import (Answer, AnswerStream, Citation, Delta, Figure, Final, Retrieved, Status, TimelineEntry, Timings,
                     Window)
from .engine import Engine, ask, get_engine
from .config import Settings
from .errors import CorpusError, IndexStoreError, InputError, ModelError, RagError
from .index import Index
from .ingest import ArticleMeta
from .retrieve import Passage


def build_index(settings: Settings | None = None, progress: bool = False) -> Index:
    """Create or update the index for ``settings.corpus_dir`` (only changed articles are re-embedded):
    the FAISS files in ``settings.index_dir``, or the Milvus collection with ``vector_store=milvus``."""
    from .ingest import load_corpus
    from .store import sync
    from .models import get_embedder

    settings = settings or Settings()
    docs = load_corpus(settings.corpus_dir)  # a bad folder fails before seconds of model loading
    return sync(settings, get_embedder(settings), progress=progress, docs=docs)


__all__ = [
    "Answer", "AnswerStream", "ArticleMeta", "Citation", "Timings", "Passage", "Index", "Settings", "Engine",
    "Figure", "TimelineEntry", "Window", "Retrieved", "Delta", "Status", "Final", "ask", "build_index", "get_engine",
    "RagError", "InputError", "CorpusError", "IndexStoreError", "ModelError",
]
