"""What the matcher found (`alerts.matched`) and what the notifier did about it (`alerts.delivered`)."""

from __future__ import annotations

import hashlib
from datetime import date, datetime
from enum import StrEnum
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.notice import ClassifiedNotice, Money, NoticeKind
from schemas.subscription import EmailFrequency

ALERT_SCHEMA_VERSION: Final = 1


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NoticeSummary(_Model):
    """Enough of a notice to write an alert without looking it up."""

    notice_id: str
    version: str
    kind: NoticeKind
    is_change: bool = False
    cancelled: bool = False
    change_description: str | None = None
    title: str
    description: str | None = None
    language: str
    buyer_name: str
    cpv_main: str | None = None
    sectors: list[str] = Field(default_factory=list)
    departments: list[str] = Field(default_factory=list)
    regions: list[str] = Field(default_factory=list)
    countries: list[str] = Field(default_factory=list)
    estimated_value: Money | None = None
    published_at: datetime | None = None
    deadline: datetime | None = None
    planned_date: date | None = None
    source_url: str | None = None
    duplicate_group: str | None = None

    @classmethod
    def of(cls, notice: ClassifiedNotice, description_chars: int = 600) -> NoticeSummary:
        description = notice.description
        if description and len(description) > description_chars:
            description = description[: description_chars - 1].rstrip() + "…"
        return cls(
            notice_id=notice.notice_id,
            version=notice.version,
            kind=notice.kind,
            is_change=notice.is_change,
            cancelled=notice.cancelled,
            change_description=notice.change_description,
            title=notice.title,
            description=description,
            language=notice.language,
            buyer_name=notice.buyer.name,
            cpv_main=notice.cpv_main,
            sectors=notice.sectors,
            departments=notice.departments,
            regions=notice.regions,
            countries=notice.countries,
            estimated_value=notice.estimated_value,
            published_at=notice.published_at,
            deadline=notice.deadline,
            planned_date=notice.planned_date,
            source_url=notice.source_url,
            duplicate_group=notice.duplicate_group,
        )


class Criterion(StrEnum):
    """A criterion of the subscription filters (schemas/subscription.py), as named in a match reason."""

    KIND = "kind"
    CPV = "cpv"
    SECTOR = "sector"
    DEPARTMENT = "department"
    REGION = "region"
    COUNTRY = "country"
    KEYWORDS = "keywords"
    VALUE = "value"
    BUYER = "buyer"
    BUYER_CATEGORY = "buyer_category"
    PROCEDURE_TYPE = "procedure_type"
    SME_SUITABLE = "sme_suitable"
    RESERVED = "reserved"
    DEADLINE = "deadline"
    EVERYTHING = "everything"  # a subscription without any criterion


class MatchReason(_Model):
    """One criterion that held, with the subscription's values that made it hold and what the notice had.

    By criterion, `values` / `notice_values`:
    - kind, sector, department, region, country, buyer_category, procedure_type: the values asked for that the notice
      has, in the subscription's order / the same;
    - cpv: the subscription's codes that cover a notice code / the notice codes they cover;
    - keywords: the terms found, as written / the fields searched, `["title"]` or `["title", "description"]`;
    - value: `[min, max]` in euros, `""` for an open bound / `["<amount> EUR"]`, or `[]` for a notice without a
      value that the subscription lets through;
    - buyer: the buyers asked for that match / the notice's buyer name;
    - sme_suitable, reserved: `["true"]` or `["false"]` / the same;
    - deadline: `[min_days_left]` / the deadline as an ISO 8601 datetime, or `[]` for a notice without one;
    - everything: `[]` / `[]`.
    """

    criterion: Criterion
    values: list[str] = Field(
        default_factory=list, description="the subscription's values that matched, e.g. ['45000000'] or ['voirie']"
    )
    notice_values: list[str] = Field(
        default_factory=list, description="what the notice had, e.g. ['45233140'], ['250000 EUR']"
    )


class MatchedSubscription(_Model):
    subscription_id: str
    name: str
    reasons: list[MatchReason] = Field(description="why it matched: one reason per criterion that the filters set")
    email: str | None = None
    email_frequency: EmailFrequency = EmailFrequency.INSTANT
    digest_hour: int = Field(default=7, ge=0, le=23)
    digest_weekday: int = Field(default=1, ge=1, le=7)
    timezone: str = "Europe/Paris"
    language: Literal["fr", "en"] = "fr"
    webhook_endpoint_id: str | None = None


def match_id_for(subscriber_id: str, notice_id: str, version: str) -> str:
    """Deterministic: the same notice version matched for the same subscriber always has the same id."""
    digest = hashlib.sha256(f"{subscriber_id}\x1f{notice_id}\x1f{version}".encode()).hexdigest()
    return f"m_{digest[:32]}"


class Match(_Model):
    """An event on `alerts.matched`, keyed by subscriber id."""

    schema_version: Literal[1] = ALERT_SCHEMA_VERSION
    match_id: str
    subscriber_id: str
    notice: NoticeSummary
    subscriptions: list[MatchedSubscription] = Field(min_length=1)
    matched_at: datetime


class Channel(StrEnum):
    EMAIL = "email"
    WEBHOOK = "webhook"


class DeliveryStatus(StrEnum):
    SENT = "sent"
    FAILED = "failed"  # gave up: permanent error or retries exhausted
    RETRYING = "retrying"
    SUPPRESSED = "suppressed"  # not attempted: address suppressed, endpoint disabled


class Delivery(_Model):
    """An event on `alerts.delivered`, keyed by subscriber id."""

    schema_version: Literal[1] = ALERT_SCHEMA_VERSION
    delivery_id: str
    match_id: str
    subscriber_id: str
    notice_id: str
    channel: Channel
    target: str = Field(description="email address, or webhook endpoint id")
    status: DeliveryStatus
    attempts: int = Field(ge=0)
    detail: str | None = None
    at: datetime
