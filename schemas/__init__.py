"""Event contracts: the only code every service shares besides `services.runtime`."""

from schemas.alert import (
    Channel,
    Delivery,
    DeliveryStatus,
    Match,
    MatchedSubscription,
    NoticeSummary,
    match_id_for,
)
from schemas.notice import (
    Address,
    Buyer,
    ClassifiedNotice,
    ContractNature,
    CpvProvenance,
    Lot,
    Money,
    Notice,
    NoticeFlags,
    NoticeKind,
    Place,
)
from schemas.subscription import (
    DeliverySettings,
    EmailFrequency,
    KeywordQuery,
    Subscription,
    SubscriptionChange,
    SubscriptionFilters,
    WebhookEndpoint,
)
from schemas.topics import DOCUMENT_HEADERS, Topic

__all__ = [
    "DOCUMENT_HEADERS",
    "Address",
    "Buyer",
    "Channel",
    "ClassifiedNotice",
    "ContractNature",
    "CpvProvenance",
    "Delivery",
    "DeliverySettings",
    "DeliveryStatus",
    "EmailFrequency",
    "KeywordQuery",
    "Lot",
    "Match",
    "MatchedSubscription",
    "Money",
    "Notice",
    "NoticeFlags",
    "NoticeKind",
    "NoticeSummary",
    "Place",
    "Subscription",
    "SubscriptionChange",
    "SubscriptionFilters",
    "Topic",
    "WebhookEndpoint",
    "match_id_for",
]
