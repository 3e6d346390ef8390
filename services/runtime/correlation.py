"""The trace of a notice across services: a correlation id carried in Kafka headers, and the notice in hand.

A correlation id is given to a document when it enters the platform (ingest: the client's `X-Correlation-Id`,
else a new one). While a message is handled, the id and the notice id of its headers are bound to the context:
every message published meanwhile carries them on, and every log line written meanwhile names them
(services/runtime/logs.py). A message that arrives without an id gets a new one, so that what it causes can be
followed all the same.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from faststream import BaseMiddleware
from faststream.message import StreamMessage
from faststream.response import PublishCommand

HEADER_CORRELATION_ID = "tw-correlation-id"
HEADER_NOTICE_ID = "tw-notice-id"
HTTP_HEADER = "X-Correlation-Id"

# What a client may choose as an id: it goes into headers and log lines, so short and plain.
_ACCEPTED_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")

_correlation_id: ContextVar[str | None] = ContextVar("correlation_id", default=None)
_notice_id: ContextVar[str | None] = ContextVar("notice_id", default=None)


def new_correlation_id() -> str:
    return uuid.uuid4().hex


def accepted_id(given: str | None) -> str:
    """The id a client sent, if it is a plain one; else a new id."""
    if given is not None and _ACCEPTED_ID.fullmatch(given.strip()):
        return given.strip()
    return new_correlation_id()


def current_correlation_id() -> str | None:
    return _correlation_id.get()


def log_fields() -> dict[str, str]:
    """The trace fields of the message or document in hand, for a log line."""
    fields: dict[str, str] = {}
    if (correlation_id := _correlation_id.get()) is not None:
        fields["correlation_id"] = correlation_id
    if (notice_id := _notice_id.get()) is not None:
        fields["notice_id"] = notice_id
    return fields


@contextmanager
def bound(correlation_id: str | None, *, notice_id: str | None = None) -> Iterator[str]:
    """Bind the trace of what is being handled to the current context, for the duration of the block. Without an
    id (a message sent without one, a row stored before ids were kept), a new one: what it causes is followed all
    the same."""
    correlation_id = correlation_id or new_correlation_id()
    correlation_token = _correlation_id.set(correlation_id)
    notice_token = _notice_id.set(notice_id)
    try:
        yield correlation_id
    finally:
        _notice_id.reset(notice_token)
        _correlation_id.reset(correlation_token)


@contextmanager
def ensured() -> Iterator[str]:
    """Keep the correlation id already bound; without one (a poller's document), bind a new one."""
    existing = _correlation_id.get()
    if existing is not None:
        yield existing
        return
    with bound(None) as correlation_id:
        yield correlation_id


def notice_id_of(body: Any) -> str | None:
    """The notice a published contract is about: a Notice or ClassifiedNotice, a Delivery, a Match's notice."""
    found = getattr(body, "notice_id", None)
    if found is None:
        found = getattr(getattr(body, "notice", None), "notice_id", None)
    return found if isinstance(found, str) else None


def headers_to_add(headers: Mapping[str, Any], body: Any) -> dict[str, str]:
    """The trace headers a message about to be published lacks, from the body and the context."""
    added: dict[str, str] = {}
    correlation_id = _correlation_id.get()
    if correlation_id is not None and HEADER_CORRELATION_ID not in headers:
        added[HEADER_CORRELATION_ID] = correlation_id
    notice_id = notice_id_of(body) or _notice_id.get()
    if notice_id is not None and HEADER_NOTICE_ID not in headers:
        added[HEADER_NOTICE_ID] = notice_id
    return added


class Correlation(BaseMiddleware):
    """Broker middleware: binds the trace of each consumed message, and adds it to each published one."""

    async def consume_scope(
        self, call_next: Callable[[StreamMessage[Any]], Awaitable[Any]], msg: StreamMessage[Any]
    ) -> Any:
        headers = msg.headers
        given = headers.get(HEADER_CORRELATION_ID)
        notice_id = headers.get(HEADER_NOTICE_ID)
        with bound(
            given if isinstance(given, str) else None,
            notice_id=notice_id if isinstance(notice_id, str) and notice_id else None,
        ):
            return await call_next(msg)

    async def publish_scope(self, call_next: Callable[[PublishCommand], Awaitable[Any]], cmd: PublishCommand) -> Any:
        added = headers_to_add(cmd.headers, cmd.body)
        if added:
            cmd.add_headers(added, override=False)
        return await call_next(cmd)
