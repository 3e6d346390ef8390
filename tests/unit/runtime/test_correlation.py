"""The trace of a notice: ids bound while a message is handled, carried onto what is published, written in logs."""

from __future__ import annotations

import json
import logging
from typing import Any

from aiokafka.structs import ConsumerRecord
from faststream import ContextRepo
from faststream.kafka.response import KafkaPublishCommand
from faststream.message import StreamMessage
from faststream.response import PublishCommand
from faststream.response.publish_type import PublishType

from schemas import Buyer, ContractNature, Notice, NoticeKind
from services.runtime import correlation
from services.runtime.correlation import HEADER_CORRELATION_ID, HEADER_NOTICE_ID, Correlation
from services.runtime.logs import _JsonFormatter


def _notice(notice_id: str = "eforms:abc") -> Notice:
    return Notice(
        notice_id=notice_id, version="1", source="eforms", source_id=notice_id.split(":")[1],
        kind=NoticeKind.COMPETITION, title="Voirie", language="fr", buyer=Buyer(name="Ville"),
        contract_nature=ContractNature.WORKS,
    )  # fmt: skip


def _log_line(msg: str = "handled", **extra: Any) -> dict[str, Any]:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, msg, None, None)
    for key, value in extra.items():
        setattr(record, key, value)
    line: dict[str, Any] = json.loads(_JsonFormatter("classifier").format(record))
    return line


def _consumed(headers: dict[str, str]) -> StreamMessage[Any]:
    record = ConsumerRecord("notices.received", 0, 7, 0, 0, b"k", b"{}", None, 2, 2, list(headers.items()))
    return StreamMessage(record, b"{}", headers=headers)


def _command(body: Any, headers: dict[str, str] | None = None) -> KafkaPublishCommand:
    return KafkaPublishCommand(body, topic="t", _publish_type=PublishType.PUBLISH, headers=headers)


def test_a_client_id_is_kept_when_plain_and_replaced_otherwise() -> None:
    assert correlation.accepted_id("req-42.a:b_C") == "req-42.a:b_C"
    assert correlation.accepted_id("  padded  ") == "padded"
    for unusable in (None, "", "x" * 129, "two words", 'quote"s', "new\nline"):
        replaced = correlation.accepted_id(unusable)
        assert len(replaced) == 32 and int(replaced, 16) >= 0


def test_log_lines_name_the_trace_only_while_it_is_bound() -> None:
    assert "correlation_id" not in _log_line() and "notice_id" not in _log_line()
    with correlation.bound("c-1", notice_id="eforms:abc"):
        line = _log_line()
        assert line["correlation_id"] == "c-1"
        assert line["notice_id"] == "eforms:abc"
        assert _log_line(notice_id="ocds:other")["notice_id"] == "ocds:other"  # a line's own field wins
        with correlation.bound("c-2"):
            assert _log_line()["correlation_id"] == "c-2"
            assert "notice_id" not in _log_line()
        assert _log_line()["correlation_id"] == "c-1"
    assert "correlation_id" not in _log_line()


def test_ensured_keeps_a_bound_id_and_makes_one_otherwise() -> None:
    with correlation.bound("given"), correlation.ensured() as kept:
        assert kept == "given"
    with correlation.ensured() as made:
        assert len(made) == 32
        assert correlation.current_correlation_id() == made
    assert correlation.current_correlation_id() is None


def test_published_messages_get_the_trace_of_the_message_in_hand() -> None:
    assert correlation.headers_to_add({}, b"raw") == {}
    with correlation.bound("c-1", notice_id="eforms:in-hand"):
        assert correlation.headers_to_add({}, b"raw") == {
            HEADER_CORRELATION_ID: "c-1",
            HEADER_NOTICE_ID: "eforms:in-hand",
        }
        # The notice a contract is about wins over the one in hand; headers already set are left alone.
        assert correlation.headers_to_add({}, _notice("eforms:published"))[HEADER_NOTICE_ID] == "eforms:published"
        assert correlation.headers_to_add({HEADER_CORRELATION_ID: "kept", HEADER_NOTICE_ID: "n"}, b"x") == {}


def test_the_notice_of_each_contract_is_found() -> None:
    notice = _notice("eforms:n1")

    class Match:  # the shape of schemas.Match: the notice is a summary under `notice`
        def __init__(self) -> None:
            self.notice = notice

    assert correlation.notice_id_of(notice) == "eforms:n1"
    assert correlation.notice_id_of(Match()) == "eforms:n1"
    assert correlation.notice_id_of({"notice_id": "not a contract"}) is None
    assert correlation.notice_id_of(b"bytes") is None


async def test_the_middleware_binds_a_consumed_trace_and_adds_it_to_what_the_handler_publishes() -> None:
    published: list[dict[str, str]] = []

    async def publish(cmd: PublishCommand) -> None:
        published.append(dict(cmd.headers))

    async def handler(msg: StreamMessage[Any]) -> str:
        assert correlation.log_fields() == {"correlation_id": "c-9", "notice_id": "eforms:abc"}
        await Correlation(None, context=ContextRepo()).publish_scope(publish, _command(b"classified"))
        await Correlation(None, context=ContextRepo()).publish_scope(publish, _command(b"x", {"content-type": "a"}))
        return "done"

    msg = _consumed({HEADER_CORRELATION_ID: "c-9", HEADER_NOTICE_ID: "eforms:abc"})
    assert await Correlation(msg, context=ContextRepo()).consume_scope(handler, msg) == "done"
    assert published == [
        {HEADER_CORRELATION_ID: "c-9", HEADER_NOTICE_ID: "eforms:abc"},
        {HEADER_CORRELATION_ID: "c-9", HEADER_NOTICE_ID: "eforms:abc", "content-type": "a"},
    ]
    assert correlation.log_fields() == {}


async def test_a_message_without_a_trace_gets_a_new_one() -> None:
    seen: list[dict[str, str]] = []

    async def handler(msg: StreamMessage[Any]) -> None:
        seen.append(correlation.log_fields())

    for _ in range(2):
        msg = _consumed({})
        await Correlation(msg, context=ContextRepo()).consume_scope(handler, msg)
    assert [set(fields) for fields in seen] == [{"correlation_id"}, {"correlation_id"}]
    assert seen[0]["correlation_id"] != seen[1]["correlation_id"]


def test_a_missing_id_is_bound_as_a_new_one() -> None:
    with correlation.bound(None, notice_id="eforms:old-row") as first, correlation.bound("") as second:
        assert correlation.log_fields() == {"correlation_id": second}
    assert first and second and first != second
