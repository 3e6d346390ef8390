"""The JSON body a webhook endpoint receives for a match, in the Standard Webhooks envelope."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC
from typing import Any

from schemas.alert import Match, MatchedSubscription
from services.notifier.reasons import reason_line

EVENT_TYPE = "notice.matched"


def webhook_body(match: Match, *, endpoint_id: str) -> bytes:
    """`{"type", "timestamp", "data"}` as compact JSON with sorted keys, so the same match and endpoint always give
    the same bytes (and the same signature) on every retry.

    `data.notice` is the `NoticeSummary` in its JSON form; `data.subscriptions` lists only the subscriptions that
    deliver to `endpoint_id`, each as `{"subscription_id", "name", "reasons"}` where every reason is
    `{"criterion", "values", "notice_values", "text"}`: the `MatchReason` as the matcher wrote it, plus `text`, the
    same reason as one line in the subscription's language (the line the alert email shows).
    """
    subscriptions = [s for s in match.subscriptions if s.webhook_endpoint_id == endpoint_id]
    if not subscriptions:
        raise ValueError(
            f"match {match.match_id} has no subscription delivering to webhook endpoint {endpoint_id!r}: "
            "build one body per endpoint listed in match.subscriptions[].webhook_endpoint_id"
        )
    matched_at = match.matched_at if match.matched_at.tzinfo else match.matched_at.replace(tzinfo=UTC)
    envelope: dict[str, Any] = {
        "type": EVENT_TYPE,
        # when the event happened (the match), not when this attempt is made: retries stay byte-identical
        "timestamp": matched_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "data": {
            "match_id": match.match_id,
            "subscriber_id": match.subscriber_id,
            "notice": match.notice.model_dump(mode="json"),
            "subscriptions": [_subscription(s, match) for s in subscriptions],
        },
    }
    return json.dumps(envelope, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode("utf-8")


def _subscription(subscription: MatchedSubscription, match: Match) -> dict[str, Any]:
    return {
        "subscription_id": subscription.subscription_id,
        "name": subscription.name,
        "reasons": [
            {
                "criterion": reason.criterion.value,
                "values": reason.values,
                "notice_values": reason.notice_values,
                # counted from the match, not from this attempt: retries stay byte-identical
                "text": reason_line(reason, subscription.language, matched_at=match.matched_at),
            }
            for reason in subscription.reasons
        ],
    }


def webhook_message_id(match_id: str, endpoint_id: str) -> str:
    """`msg_…`, the `webhook-id`: stable for a match and an endpoint, so a receiver can drop retried duplicates."""
    digest = hashlib.sha256(f"{match_id}\x1f{endpoint_id}".encode()).hexdigest()
    return f"msg_{digest[:32]}"
