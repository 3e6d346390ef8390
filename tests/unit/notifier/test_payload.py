import hashlib
import json
from collections.abc import Callable
from decimal import Decimal

import pytest

from schemas.alert import Criterion, Match, MatchedSubscription, MatchReason
from schemas.notice import Money
from services.notifier.changes import Change, ChangedField
from services.notifier.webhooks.payload import webhook_body, webhook_message_id

MatchFactory = Callable[..., Match]


def test_body_is_the_standard_webhooks_envelope(make_match: MatchFactory) -> None:
    match = make_match(estimated_value=Money(amount=Decimal("1250000"), currency="EUR"))
    payload = json.loads(webhook_body(match, endpoint_id="ep_main"))
    assert set(payload) == {"type", "timestamp", "data"}
    assert payload["type"] == "notice.matched"
    assert payload["timestamp"] == "2024-01-24T08:15:00Z"
    data = payload["data"]
    assert data["match_id"] == match.match_id
    assert data["subscriber_id"] == "sub_acct_42"
    assert data["subscriptions"] == [
        {
            "subscription_id": "s_glass",
            "name": "Collecte des déchets — Gard",
            "reasons": [
                {
                    "criterion": "cpv",
                    "values": ["90500000"],
                    "notice_values": ["90511100"],
                    "text": "CPV 90500000 (avis\u00a0: 90511100)",
                },
                {
                    "criterion": "department",
                    "values": ["30"],
                    "notice_values": ["30"],
                    "text": "Département\u00a0: 30 Gard",
                },
            ],
        }
    ]
    notice = data["notice"]
    assert notice["notice_id"] == "eforms:a638ab6b-7005-48a9-a9c7-b91bfc6142f1"
    assert notice["kind"] == "competition"
    assert notice["title"].startswith("Prestations de collecte des colonnes de verre et de papier")
    assert notice["buyer_name"] == "Communauté de Communes du Piémont Cévenol"
    assert notice["cpv_main"] == "90511100"
    assert notice["departments"] == ["30"]
    assert notice["deadline"] == "2024-02-28T12:00:00+02:00"
    assert notice["estimated_value"] == {"amount": "1250000", "currency": "EUR"}
    assert notice["source_url"] == "https://ted.europa.eu/en/notice/-/detail/47522-2024"


def test_body_is_compact_sorted_utf8_and_identical_on_retry(make_match: MatchFactory) -> None:
    body = webhook_body(make_match(), endpoint_id="ep_main")
    assert body == webhook_body(make_match(), endpoint_id="ep_main")
    canonical = json.dumps(json.loads(body), ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    assert body == canonical.encode("utf-8")
    assert body.startswith(b'{"data":{"announced_by":null,"changes":[],"match_id":"m_')
    assert "Cévenol".encode() in body  # UTF-8, not \u escapes


def test_each_endpoint_gets_only_its_subscriptions(make_match: MatchFactory) -> None:
    data = json.loads(webhook_body(make_match(), endpoint_id="ep_other"))["data"]
    assert [s["subscription_id"] for s in data["subscriptions"]] == ["s_other_team"]


def test_reason_text_is_in_the_subscription_language(make_match: MatchFactory) -> None:
    data = json.loads(webhook_body(make_match(), endpoint_id="ep_other"))["data"]
    assert data["subscriptions"][0]["reasons"] == [
        {"criterion": "region", "values": ["76"], "notice_values": ["76"], "text": "Region: 76 Occitanie"}
    ]


def test_deadline_reason_counts_days_from_the_match_so_retries_are_identical(make_match: MatchFactory) -> None:
    deadline = MatchReason(criterion=Criterion.DEADLINE, values=["10"], notice_values=["2024-02-28T12:00:00+01:00"])
    subscription = MatchedSubscription(
        subscription_id="s_soon", name="Échéances", reasons=[deadline], webhook_endpoint_id="ep_main", language="en"
    )
    match = make_match(subscriptions=[subscription])
    body = webhook_body(match, endpoint_id="ep_main")
    reason = json.loads(body)["data"]["subscriptions"][0]["reasons"][0]
    # matched on 24 January 2024: 35 days before 28 February
    assert reason == {
        "criterion": "deadline",
        "values": ["10"],
        "notice_values": ["2024-02-28T12:00:00+01:00"],
        "text": "Deadline in 35 days (at least 10)",
    }
    assert webhook_body(match, endpoint_id="ep_main") == body


def test_endpoint_without_subscription_is_refused(make_match: MatchFactory) -> None:
    with pytest.raises(ValueError, match="no subscription delivering to webhook endpoint 'ep_unknown'"):
        webhook_body(make_match(), endpoint_id="ep_unknown")


def test_message_id_is_stable_per_match_and_endpoint() -> None:
    expected = "msg_" + hashlib.sha256(b"m_abc\x1fep_main").hexdigest()[:32]
    assert webhook_message_id("m_abc", "ep_main") == expected
    assert webhook_message_id("m_abc", "ep_other") != expected
    assert webhook_message_id("m_abd", "ep_main") != expected


def test_a_new_version_is_a_notice_updated_event_that_says_what_changed(make_match: MatchFactory) -> None:
    match = make_match()
    changes = [Change(ChangedField.DEADLINE, "2025-04-04T10:00:00+00:00", "2025-04-18T10:00:00+00:00")]
    body = json.loads(webhook_body(match, endpoint_id="ep_main", changes=changes))
    assert body["type"] == "notice.updated"
    assert body["data"]["changes"] == [
        {"field": "deadline", "before": "2025-04-04T10:00:00+00:00", "after": "2025-04-18T10:00:00+00:00"}
    ]
    planned = json.loads(webhook_body(match, endpoint_id="ep_main", announced_by="plan:21300000000000:2025-01"))
    assert (planned["type"], planned["data"]["announced_by"]) == ("notice.matched", "plan:21300000000000:2025-01")
