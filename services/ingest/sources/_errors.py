"""The one error every source parser raises for a document it cannot turn into a notice."""

from __future__ import annotations

from typing import Literal

DocumentErrorReason = Literal[
    "malformed-xml",
    "malformed-json",
    "malformed-csv",
    "doctype-forbidden",
    "too-large",
    "unknown-format",
    "unsupported-notice",
    "missing-field",
    "invalid-value",
    "invalid-lines",  # a tabular document with bad lines: the message lists each with its number
    "empty-document",
]


class DocumentError(ValueError):
    """A source document was rejected.

    `reason` is a short machine code (it goes into DLQ headers and metrics); the message says what was wrong
    and what to do about it.
    """

    def __init__(self, reason: DocumentErrorReason, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason: DocumentErrorReason = reason
        self.message = message
