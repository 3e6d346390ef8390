"""Dead letters: a message a stage cannot handle goes to `<topic>.dlq` with its original bytes and why.

Bad input (malformed document, invalid JSON, a contract violation) is dead-lettered at once. Any other
error is taken as transient (database or broker unavailable): the message is retried in place with
backoff, and dead-lettered only after `processing_attempts` attempts, so nothing is lost and one poison
message never stops a partition for good.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from faststream import BaseMiddleware
from faststream.kafka import KafkaBroker
from faststream.message import StreamMessage
from pydantic import ValidationError

from services.runtime.metrics import MESSAGES_DEAD_LETTERED

_log = logging.getLogger(__name__)

HEADER_ERROR = "tw-error"
HEADER_ERROR_TYPE = "tw-error-type"
HEADER_REASON = "tw-error-reason"
HEADER_SOURCE_TOPIC = "tw-source-topic"
HEADER_SOURCE_PARTITION = "tw-source-partition"
HEADER_SOURCE_OFFSET = "tw-source-offset"
HEADER_SERVICE = "tw-service"
HEADER_FAILED_AT = "tw-failed-at"
HEADER_ATTEMPTS = "tw-attempts"
# What dead-lettering adds to a message's own headers, and a replay takes off again.
DEAD_LETTER_HEADERS = frozenset(
    {
        HEADER_ERROR,
        HEADER_ERROR_TYPE,
        HEADER_REASON,
        HEADER_SOURCE_TOPIC,
        HEADER_SOURCE_PARTITION,
        HEADER_SOURCE_OFFSET,
        HEADER_SERVICE,
        HEADER_FAILED_AT,
        HEADER_ATTEMPTS,
    }
)

_MAX_ERROR_CHARS = 2000


class BadInput(ValueError):  # noqa: N818 - it names what the message is, not a failure of ours
    """The message itself is wrong: retrying cannot help. `reason` is a short machine code."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def _is_bad_input(exc: BaseException) -> bool:
    return isinstance(exc, BadInput | ValidationError | json.JSONDecodeError | UnicodeDecodeError) or (
        isinstance(exc, ValueError) and hasattr(exc, "reason")
    )


def dead_letter_headers(
    *,
    error: BaseException,
    service: str,
    topic: str,
    partition: int | None,
    offset: int | None,
    attempts: int,
    original: dict[str, str] | None = None,
) -> dict[str, str]:
    headers = dict(original or {})
    headers.update(
        {
            HEADER_ERROR: str(error)[:_MAX_ERROR_CHARS] or type(error).__name__,
            HEADER_ERROR_TYPE: type(error).__name__,
            HEADER_REASON: getattr(error, "reason", "bad-input" if _is_bad_input(error) else "processing-failed"),
            HEADER_SOURCE_TOPIC: topic,
            HEADER_SOURCE_PARTITION: "" if partition is None else str(partition),
            HEADER_SOURCE_OFFSET: "" if offset is None else str(offset),
            HEADER_SERVICE: service,
            HEADER_FAILED_AT: datetime.now(UTC).isoformat(),
            HEADER_ATTEMPTS: str(attempts),
        }
    )
    return headers


class DeadLetters:
    """Middleware factory: `KafkaBroker(middlewares=[dead_letters])`, then `dead_letters.bind(broker)`."""

    def __init__(self, *, service: str, attempts: int, backoff_seconds: float = 0.5) -> None:
        self.service = service
        self.attempts = attempts
        self.backoff_seconds = backoff_seconds
        self._broker: KafkaBroker | None = None
        self._failures: dict[tuple[str, int, int], int] = {}

    def bind(self, broker: KafkaBroker) -> None:
        self._broker = broker

    def __call__(self, msg: Any, /, *, context: Any) -> _DeadLetterMiddleware:
        return _DeadLetterMiddleware(msg, context=context, owner=self)

    async def send(
        self,
        body: bytes,
        *,
        error: BaseException,
        topic: str,
        partition: int | None,
        offset: int | None,
        attempts: int,
        key: bytes | None = None,
        original: dict[str, str] | None = None,
    ) -> None:
        """Publish `body` to `<topic>.dlq` with why and where it failed."""
        if self._broker is None:
            raise RuntimeError("DeadLetters.bind(broker) was not called")
        headers = dead_letter_headers(
            error=error,
            service=self.service,
            topic=topic,
            partition=partition,
            offset=offset,
            attempts=attempts,
            original=original,
        )
        await self._broker.publish(body, f"{topic}.dlq", headers=headers, key=key)
        MESSAGES_DEAD_LETTERED.labels(service=self.service, topic=topic, reason=headers[HEADER_REASON]).inc()
        _log.warning(
            "dead-lettered a message",
            extra={
                "topic": topic,
                "partition": partition,
                "offset": offset,
                "reason": headers[HEADER_REASON],
                "error": headers[HEADER_ERROR],
            },
        )


class _DeadLetterMiddleware(BaseMiddleware):
    def __init__(self, msg: Any, /, *, context: Any, owner: DeadLetters) -> None:
        super().__init__(msg, context=context)
        self._owner = owner

    async def consume_scope(
        self, call_next: Callable[[StreamMessage[Any]], Awaitable[Any]], msg: StreamMessage[Any]
    ) -> Any:
        record = msg.raw_message
        topic, partition, offset = record.topic, record.partition, record.offset
        position = (topic, partition, offset)
        try:
            result = await call_next(msg)
        except Exception as exc:
            attempts = self._owner._failures.get(position, 0) + 1
            if not _is_bad_input(exc) and attempts < self._owner.attempts:
                self._owner._failures[position] = attempts
                _log.warning(
                    "transient failure, will retry",
                    extra={"topic": topic, "partition": partition, "offset": offset, "attempt": attempts},
                    exc_info=exc,
                )
                await asyncio.sleep(min(self._owner.backoff_seconds * 2 ** (attempts - 1), 30.0))
                raise  # the subscriber nacks: the consumer seeks back and the message comes again
            self._owner._failures.pop(position, None)
            await self._owner.send(
                msg.body,
                error=exc,
                topic=topic,
                partition=partition,
                offset=offset,
                attempts=attempts,
                key=record.key,
                original={k: v for k, v in msg.headers.items() if isinstance(v, str)},
            )
            return None
        self._owner._failures.pop(position, None)
        return result
