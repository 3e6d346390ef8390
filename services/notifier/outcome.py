"""What one delivery attempt came to, whatever the channel."""

from __future__ import annotations

from collections.abc import Sequence
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

    def next_status(self, attempts: int, retry_delays: Sequence[timedelta]) -> tuple[str, timedelta]:
        """The delivery's status after its attempt number `attempts` came to this, and the wait before the next one.

        `retry_delays[k]` is the wait after attempt k+1 (at least `retry_after`); past the last, it fails.
        """
        if self.kind is OutcomeKind.SENT:
            return "sent", timedelta(0)
        if self.kind is OutcomeKind.SUPPRESSED:
            return "suppressed", timedelta(0)
        if self.kind is OutcomeKind.RETRY and attempts <= len(retry_delays):
            return "retrying", max(retry_delays[attempts - 1], self.retry_after or timedelta(0))
        return "failed", timedelta(0)
