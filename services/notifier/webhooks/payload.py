"""The JSON body a webhook endpoint receives for a match, in the Standard Webhooks envelope.

`WebhookPayload` is the contract: `docs/webhook-payload.schema.json` is its JSON Schema, regenerated with
`python -m services.notifier.webhooks.payload > docs/webhook-payload.schema.json` (a test fails when it is stale).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from schemas.alert import Criterion, Match, MatchedSubscription, NoticeSummary
from services.notifier.changes import Change, ChangedField
from services.notifier.reasons import reason_line

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


class EventType(StrEnum):
    NOTICE_MATCHED = "notice.matched"  # a notice (a new one, or a version not seen before) fits a subscription
    NOTICE_UPDATED = "notice.updated"  # the notice is a change: a corrigendum, a new deadline, a cancellation


EVENT_TYPE = EventType.NOTICE_MATCHED.value  # the usual type, kept for callers that name it


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WebhookReason(_Model):
    """One criterion that held: the matcher's `MatchReason`, plus the same reason as one readable line."""

    criterion: Criterion
    values: list[str] = Field(description="the subscription's values that matched, e.g. ['45000000'] or ['voirie']")
    notice_values: list[str] = Field(description="what the notice had, e.g. ['45233140'], ['250000 EUR']")
    text: str = Field(description="the reason as one line in the subscription's language, as the alert email shows it")


class WebhookSubscription(_Model):
    """A subscription of the subscriber that delivers to this endpoint and matched the notice."""

    subscription_id: str
    name: str
    reasons: list[WebhookReason] = Field(description="one per criterion the subscription's filters set")


class WebhookChange(_Model):
    """A field of the notice that changed since the version this endpoint was sent."""

    field: ChangedField
    before: str | None = Field(description="machine value: ISO 8601 date or datetime, '250000 EUR', text; null: unset")
    after: str | None


class WebhookData(_Model):
    match_id: str = Field(description="stable for a notice version and a subscriber; the webhook-id derives from it")
    subscriber_id: str = Field(description="the account that owns the endpoint")
    notice: NoticeSummary
    subscriptions: list[WebhookSubscription] = Field(
        min_length=1, description="only the subscriptions that deliver to the endpoint receiving this call"
    )
    changes: list[WebhookChange] = Field(
        default_factory=list,
        description="for notice.updated: what changed since the version of this notice the endpoint was sent",
    )
    announced_by: str | None = Field(
        default=None,
        description="the planned purchase (notice_id) already sent to this endpoint that this call for tender follows",
    )


class WebhookPayload(_Model):
    """The body of a tenderwatch webhook call (`content-type: application/json`, UTF-8).

    Each call carries the Standard Webhooks headers: `webhook-id` (`msg_…`, the same on every retry and on a replay of
    one delivery: drop repeats), `webhook-timestamp` (Unix seconds of this attempt) and `webhook-signature`
    (`v1,<base64 HMAC-SHA256 of "{webhook-id}.{webhook-timestamp}.{body}">` keyed with the base64-decoded part of
    the `whsec_` secret; during a secret rotation, two space-separated signatures: check that one of them matches).
    The body is compact JSON with sorted keys, byte-identical on every attempt.
    """

    model_config = ConfigDict(title="tenderwatch webhook payload")

    type: EventType
    timestamp: datetime = Field(description="when the match happened (not this attempt), UTC")
    data: WebhookData


def event_type(match: Match, changes: Sequence[Change] = ()) -> EventType:
    """`notice.updated` for a notice that changes or cancels a published one, or a new version of one the endpoint
    was sent; `notice.matched` otherwise."""
    if changes or match.notice.is_change or match.notice.cancelled:
        return EventType.NOTICE_UPDATED
    return EventType.NOTICE_MATCHED


def webhook_payload(
    match: Match, *, endpoint_id: str, changes: Sequence[Change] = (), announced_by: str | None = None
) -> WebhookPayload:
    """The payload for one endpoint: only the subscriptions of `match` that deliver to `endpoint_id`."""
    subscriptions = [s for s in match.subscriptions if s.webhook_endpoint_id == endpoint_id]
    if not subscriptions:
        raise ValueError(
            f"match {match.match_id} has no subscription delivering to webhook endpoint {endpoint_id!r}: "
            "build one body per endpoint listed in match.subscriptions[].webhook_endpoint_id"
        )
    matched_at = match.matched_at if match.matched_at.tzinfo else match.matched_at.replace(tzinfo=UTC)
    return WebhookPayload(
        type=event_type(match, changes),
        # when the event happened (the match), not when this attempt is made: retries stay byte-identical
        timestamp=matched_at.astimezone(UTC),
        data=WebhookData(
            match_id=match.match_id,
            subscriber_id=match.subscriber_id,
            notice=match.notice,
            subscriptions=[_subscription(s, match) for s in subscriptions],
            changes=[WebhookChange(field=c.field, before=c.before, after=c.after) for c in changes],
            announced_by=announced_by,
        ),
    )


def webhook_body(
    match: Match, *, endpoint_id: str, changes: Sequence[Change] = (), announced_by: str | None = None
) -> bytes:
    """`webhook_payload` as compact JSON with sorted keys, so the same match and endpoint always give the same bytes
    (and the same signature) on every retry."""
    payload = webhook_payload(match, endpoint_id=endpoint_id, changes=changes, announced_by=announced_by).model_dump(
        mode="json"
    )
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode("utf-8")


def _subscription(subscription: MatchedSubscription, match: Match) -> WebhookSubscription:
    return WebhookSubscription(
        subscription_id=subscription.subscription_id,
        name=subscription.name,
        reasons=[
            WebhookReason(
                criterion=reason.criterion,
                values=reason.values,
                notice_values=reason.notice_values,
                # counted from the match, not from this attempt: retries stay byte-identical
                text=reason_line(reason, subscription.language, matched_at=match.matched_at),
            )
            for reason in subscription.reasons
        ],
    )


def webhook_message_id(match_id: str, endpoint_id: str) -> str:
    """`msg_…`, the `webhook-id`: stable for a match and an endpoint, so a receiver can drop retried duplicates."""
    digest = hashlib.sha256(f"{match_id}\x1f{endpoint_id}".encode()).hexdigest()
    return f"msg_{digest[:32]}"


def payload_json_schema() -> str:
    """The JSON Schema of `WebhookPayload` as it is sent (serialisation mode), as committed under docs/."""
    schema: dict[str, Any] = {"$schema": SCHEMA_DIALECT, **WebhookPayload.model_json_schema(mode="serialization")}
    return json.dumps(schema, ensure_ascii=False, indent=2) + "\n"


if __name__ == "__main__":
    print(payload_json_schema(), end="")
