"""Rows of the api's tables as contracts."""

from __future__ import annotations

import json

import asyncpg

from schemas import DeliverySettings, Subscription, SubscriptionFilters


def subscription_from_row(row: asyncpg.Record) -> Subscription:
    """A row of `subscriptions` (filters and delivery as JSON) as the contract the api serves and publishes."""
    return Subscription(
        subscription_id=row["subscription_id"],
        subscriber_id=row["account_id"],
        name=row["name"],
        filters=SubscriptionFilters.model_validate(json.loads(row["filters"])),
        delivery=DeliverySettings.model_validate(json.loads(row["delivery"])),
        active=row["active"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )
