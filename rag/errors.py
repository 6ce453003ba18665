"""The package's exceptions. Each message says what was wrong and what to do;
the CLI and the UI print them as they are."""


class RagError(Exception):
    """Base class: anything the user can act on."""


class InputError(RagError):
    """A question or setting the user gave is not usable."""


class CorpusError(RagError):
    """The corpus folder is missing, empty or has nothing readable."""


class IndexStoreError(RagError):
    """The on-disk index is missing, stale or damaged and could not be repaired."""


class ModelError(RagError):
    """A model could not be found, verified or loaded."""


class SourceError(InputError):
    """Something given to `rag add` that cannot be used: a feed that is no feed, an
    address that cannot be fetched. ``reason`` completes "<source> was not added: …"."""

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"{source} was not added: {reason}.")
        self.source = source
        self.reason = reason
