"""Errors a user can cause and read.

Every exception here carries one line meant for a person; the CLI prints it
as ``bookpot: <message>`` and exits with code 2, never with a traceback.
"""


class BookpotError(Exception):
    """Base for every error that is the input's fault, not a bug."""

    exit_code = 2


class DocumentError(BookpotError):
    """The document cannot be read (missing, corrupt, wrong type, ...)."""


class UnsupportedFormat(DocumentError):
    """The file is not a format bookpot reads."""


class EncryptedDocument(DocumentError):
    """The PDF is encrypted and no (or a wrong) password was given."""


class NoTextError(DocumentError):
    """The document has no extractable text (e.g. a scanned PDF)."""


class ModelError(BookpotError):
    """The model is missing, corrupt, unknown or unsupported."""


class RamCapError(BookpotError):
    """The RAM cap is too small for the chosen model."""


class CacheError(BookpotError):
    """The cache directory cannot be written (e.g. the disk is full)."""
