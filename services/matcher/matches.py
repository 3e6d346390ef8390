"""From the hits of one notice to the `alerts.matched` events: one per subscriber."""

from __future__ import annotations

from datetime import datetime

from schemas.alert import Match, MatchedSubscription, NoticeSummary, match_id_for
from schemas.notice import ClassifiedNotice
from services.matcher.index import Hit


def build_matches(notice: ClassifiedNotice, hits: list[Hit], *, now: datetime) -> list[Match]:
    """One `Match` per subscriber, ordered by subscriber id, its subscriptions ordered by subscription id.

    A subscriber hears about a notice version once however many of their subscriptions match it, and the
    `match_id` is the same every time that version is matched for them, so redeliveries can be recognised.
    """
    if now.tzinfo is None:
        raise ValueError("build_matches needs a timezone-aware `now`, such as datetime.now(UTC)")
    by_subscriber: dict[str, dict[str, Hit]] = {}
    for hit in hits:
        # The first hit of a subscription wins should the same one be passed twice.
        by_subscriber.setdefault(hit.subscriber_id, {}).setdefault(hit.subscription_id, hit)
    summary = NoticeSummary.of(notice)
    return [
        Match(
            match_id=match_id_for(subscriber_id, notice.notice_id, notice.version),
            subscriber_id=subscriber_id,
            notice=summary,
            subscriptions=[_matched_subscription(hits_by_id[sid]) for sid in sorted(hits_by_id)],
            matched_at=now,
        )
        for subscriber_id, hits_by_id in sorted(by_subscriber.items())
    ]


def _matched_subscription(hit: Hit) -> MatchedSubscription:
    delivery = hit.delivery
    return MatchedSubscription(
        subscription_id=hit.subscription_id,
        name=hit.name,
        reasons=list(hit.reasons),
        email=delivery.email,
        email_frequency=delivery.email_frequency,
        digest_hour=delivery.digest_hour,
        digest_weekday=delivery.digest_weekday,
        timezone=delivery.timezone,
        language=delivery.language,
        webhook_endpoint_id=delivery.webhook_endpoint_id,
    )
