"""The webhook payload contract: docs/webhook-payload.schema.json is what the model generates, and bodies fit it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from schemas.alert import Match
from services.notifier.webhooks.payload import (
    EventType,
    WebhookPayload,
    event_type,
    payload_json_schema,
    webhook_body,
)

SCHEMA_FILE = Path(__file__).resolve().parents[3] / "docs" / "webhook-payload.schema.json"

MatchFactory = Callable[..., Match]


def test_the_committed_schema_is_what_the_model_generates() -> None:
    assert SCHEMA_FILE.read_text(encoding="utf-8") == payload_json_schema(), (
        "regenerate it: python -m services.notifier.webhooks.payload > docs/webhook-payload.schema.json"
    )


def test_the_schema_documents_the_envelope_and_both_event_types() -> None:
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["required"] == ["type", "timestamp", "data"]
    assert schema["$defs"]["EventType"]["enum"] == ["notice.matched", "notice.updated"]
    assert "webhook-signature" in schema["description"]
    assert set(schema["$defs"]["WebhookData"]["required"]) == {"match_id", "subscriber_id", "notice", "subscriptions"}


def test_a_body_reads_back_as_the_model(make_match: MatchFactory) -> None:
    body = webhook_body(make_match(), endpoint_id="ep_main")
    payload = WebhookPayload.model_validate_json(body)
    assert payload.type is EventType.NOTICE_MATCHED
    assert [s.subscription_id for s in payload.data.subscriptions] == ["s_glass"]
    assert json.loads(body) == json.loads(payload.model_dump_json())


def test_a_change_or_a_cancellation_is_a_notice_updated_event(make_match: MatchFactory) -> None:
    assert event_type(make_match(is_change=True)) is EventType.NOTICE_UPDATED
    assert event_type(make_match(cancelled=True)) is EventType.NOTICE_UPDATED
    body = json.loads(webhook_body(make_match(is_change=True), endpoint_id="ep_main"))
    assert body["type"] == "notice.updated"
