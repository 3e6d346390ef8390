"""What one delivery attempt came to, whatever the channel."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class OutcomeKind(StrEnum):
    SENT = "sent"
    RETRY = "retry"  # transient: try again later
    FAILED = "failed"  # permanent: never try again
    SUPPRESSED = "suppressed"  # not attempted on purpose (endpoint disabled)


@dataclass(frozen=True)
class Outcome:
    kind: OutcomeKind
    detail: str = ""

    @classmethod
    def sent(cls, detail: str = "") -> Outcome:
        return cls(OutcomeKind.SENT, detail)

    @classmethod
    def retry(cls, detail: str) -> Outcome:
        return cls(OutcomeKind.RETRY, detail)

    @classmethod
    def failed(cls, detail: str) -> Outcome:
        return cls(OutcomeKind.FAILED, detail)

    @classmethod
    def suppressed(cls, detail: str) -> Outcome:
        return cls(OutcomeKind.SUPPRESSED, detail)
