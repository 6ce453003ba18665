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
