"""Topic names and the keys they are partitioned by (DESIGN.md §1)."""

from __future__ import annotations

from enum import StrEnum


class Topic(StrEnum):
    # raw source documents (bytes as published; headers below), keyed by content hash
    DOCUMENTS_RECEIVED = "documents.received"
    # Notice, keyed by notice_id
    NOTICES_RECEIVED = "notices.received"
    # ClassifiedNotice, keyed by notice_id
    NOTICES_CLASSIFIED = "notices.classified"
    # SubscriptionChange, keyed by subscription_id, compacted; a deletion is a tombstone
    SUBSCRIPTIONS_CHANGES = "subscriptions.changes"
    # WebhookEndpoint, keyed by endpoint_id, compacted
    WEBHOOK_ENDPOINTS_CHANGES = "webhook-endpoints.changes"
    # Match, keyed by subscriber_id
    ALERTS_MATCHED = "alerts.matched"
    # Delivery, keyed by subscriber_id
    ALERTS_DELIVERED = "alerts.delivered"

    @property
    def dlq(self) -> str:
        """The dead-letter topic of messages this topic's consumers could not handle."""
        return f"{self.value}.dlq"

    @property
    def compacted(self) -> bool:
        return self in (Topic.SUBSCRIPTIONS_CHANGES, Topic.WEBHOOK_ENDPOINTS_CHANGES)


class DOCUMENT_HEADERS:  # noqa: N801 - a namespace of constants
    """Headers of a `documents.received` message."""

    CONTENT_TYPE = "content-type"
    FILENAME = "tw-filename"
    ORIGIN = "tw-origin"  # 'file', 'http', or a poller name
