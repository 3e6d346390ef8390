"""What one delivery attempt came to, whatever the channel."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
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
    retry_after: timedelta | None = None  # the least wait before the next attempt (an HTTP Retry-After)

    @classmethod
    def sent(cls, detail: str = "") -> Outcome:
        return cls(OutcomeKind.SENT, detail)

    @classmethod
    def retry(cls, detail: str, *, after: timedelta | None = None) -> Outcome:
        return cls(OutcomeKind.RETRY, detail, after)

    @classmethod
    def failed(cls, detail: str) -> Outcome:
        return cls(OutcomeKind.FAILED, detail)

    @classmethod
    def suppressed(cls, detail: str) -> Outcome:
        return cls(OutcomeKind.SUPPRESSED, detail)
