"""What a subscriber wants to hear about, and how it reaches the matcher."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, Final, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from schemas.notice import BuyerCategory, NoticeKind

SUBSCRIPTION_SCHEMA_VERSION: Final = 1

_CPV = re.compile(r"^\d{8}$")
_DEPARTMENT = re.compile(r"^(\d{2}|2[AB]|97\d)$")
_REGION = re.compile(r"^\d{2}$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_MAX_QUERY_CHARS = 1000


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class KeywordQuery(_Model):
    """A keyword query over the notice's title and description (or its title alone).

    The language: words are all required (`voirie enrobés`); `"quoted phrases"` must appear as written, word after
    word; `OR` (upper case) between two parts needs either; `-word` or `-"a phrase"` excludes; parentheses group
    (`(voirie OR chaussée) -entretien`). Matching ignores case, accents, ligatures (œ/oe, æ/ae), elisions (d', l')
    and plurals. A string given where a query is expected is its `query`.
    """

    query: str = Field(min_length=1, max_length=_MAX_QUERY_CHARS, description="the keyword query, see above")
    title_only: bool = Field(default=False, description="search the title only, not the description")

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, value: Any) -> Any:
        return {"query": value} if isinstance(value, str) else value

    @field_validator("query")
    @classmethod
    def _not_blank(cls, query: str) -> str:
        if not query.strip():
            raise ValueError("the keyword query must not be blank")
        return query.strip()


class WithoutValue(StrEnum):
    """What a value criterion does with a notice that publishes no estimated value (most French notices)."""

    INCLUDE = "include"
    EXCLUDE = "exclude"


class SubscriptionFilters(_Model):
    """Every non-empty criterion must hold; inside a criterion, any listed value will do."""

    kinds: list[NoticeKind] = Field(default_factory=list)
    cpv: list[str] = Field(
        default_factory=list,
        description="8-digit CPV codes with prefix semantics by level: 45000000 covers every 45xxxxxx",
    )
    sectors: list[str] = Field(default_factory=list)
    departments: list[str] = Field(default_factory=list, description="INSEE codes: '31', '2A', '974'")
    regions: list[str] = Field(default_factory=list, description="INSEE region codes: '76'")
    countries: list[str] = Field(default_factory=list, description="ISO 3166-1 alpha-2 codes")
    keywords: KeywordQuery | None = None
    value_min: Decimal | None = Field(default=None, ge=0, description="in euros, inclusive")
    value_max: Decimal | None = Field(default=None, ge=0, description="in euros, inclusive")
    without_value: WithoutValue = Field(
        default=WithoutValue.INCLUDE,
        description="whether a notice without an estimated value passes value_min / value_max",
    )
    buyers: list[str] = Field(
        default_factory=list,
        description="buyers by SIRET or SIREN (a SIREN covers every establishment) or by name (compared normalised)",
    )
    buyer_categories: list[BuyerCategory] = Field(default_factory=list)
    procedure_types: list[str] = Field(
        default_factory=list, description="eForms procedure type codes ('open', 'restricted', 'oth-single'…)"
    )
    sme_suitable: bool | None = Field(
        default=None, description="true: only notices the buyer marks suitable for SMEs; false: only the others"
    )
    reserved: bool | None = Field(
        default=None,
        description="true: only contracts reserved to sheltered workshops or social-economy firms; false: none of them",
    )
    min_days_left: int | None = Field(
        default=None,
        ge=0,
        le=366,
        description="at least this many days left before the submission deadline; notices without one pass",
    )

    @field_validator("cpv", mode="before")
    @classmethod
    def _cpv_codes(cls, codes: Any) -> Any:
        if not isinstance(codes, list):
            return codes
        out = []
        for code in codes:
            digits = str(code).strip().split("-")[0]  # accept the check digit form 45000000-7
            if not _CPV.match(digits):
                raise ValueError(f"CPV code {code!r} must have 8 digits, such as 45000000")
            out.append(digits)
        return out

    @field_validator("departments", mode="before")
    @classmethod
    def _departments(cls, codes: Any) -> Any:
        if not isinstance(codes, list):
            return codes
        out = []
        for code in codes:
            value = str(code).strip().upper()
            if len(value) == 1 and value.isdigit():
                value = "0" + value
            if not _DEPARTMENT.match(value):
                raise ValueError(f"department {code!r} is not an INSEE department code such as '31' or '2A'")
            out.append(value)
        return out

    @field_validator("regions", mode="before")
    @classmethod
    def _regions(cls, codes: Any) -> Any:
        if not isinstance(codes, list):
            return codes
        out = []
        for code in codes:
            value = str(code).strip()
            if not _REGION.match(value):
                raise ValueError(f"region {code!r} is not an INSEE region code such as '76'")
            out.append(value)
        return out

    @field_validator("countries", mode="before")
    @classmethod
    def _countries(cls, codes: Any) -> Any:
        if not isinstance(codes, list):
            return codes
        out = []
        for code in codes:
            value = str(code).strip().upper()
            if not _COUNTRY.match(value):
                raise ValueError(f"country {code!r} must be an ISO 3166-1 alpha-2 code such as 'FR'")
            out.append(value)
        return out

    @field_validator("buyers", "procedure_types")
    @classmethod
    def _non_blank_values(cls, values: list[str]) -> list[str]:
        cleaned = [value.strip() for value in values]
        if any(not value for value in cleaned):
            raise ValueError("values must not be blank")
        return cleaned

    @model_validator(mode="after")
    def _range(self) -> SubscriptionFilters:
        if self.value_min is not None and self.value_max is not None and self.value_min > self.value_max:
            raise ValueError("value_min must not exceed value_max")
        return self


class EmailFrequency(StrEnum):
    INSTANT = "instant"
    DAILY = "daily"
    WEEKLY = "weekly"


class DeliverySettings(_Model):
    email: str | None = None
    email_frequency: EmailFrequency = EmailFrequency.INSTANT
    digest_hour: int = Field(default=7, ge=0, le=23, description="local hour a daily or weekly digest is sent at")
    digest_weekday: int = Field(default=1, ge=1, le=7, description="ISO weekday of a weekly digest: 1 is Monday")
    timezone: str = Field(default="Europe/Paris", description="IANA time zone of digest_hour, e.g. 'Europe/Paris'")
    language: Literal["fr", "en"] = "fr"
    webhook_endpoint_id: str | None = None

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA time zone such as 'Europe/Paris'") from None
        return value

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is not None and not _EMAIL.match(value):
            raise ValueError(f"{value!r} is not an email address")
        return value

    @model_validator(mode="after")
    def _some_channel(self) -> DeliverySettings:
        if not self.email and not self.webhook_endpoint_id:
            raise ValueError("delivery needs an email, a webhook_endpoint_id, or both")
        return self


class Subscription(_Model):
    schema_version: Literal[1] = SUBSCRIPTION_SCHEMA_VERSION
    subscription_id: str
    subscriber_id: str = Field(description="the owning account")
    name: str
    filters: SubscriptionFilters
    delivery: DeliverySettings
    active: bool = True
    created_at: datetime
    updated_at: datetime


class SubscriptionChange(_Model):
    """An event on `subscriptions.changes`, keyed by subscription id.

    A deletion is published as a tombstone (null value) so compaction forgets it; this model is the
    value of an upsert.
    """

    schema_version: Literal[1] = SUBSCRIPTION_SCHEMA_VERSION
    subscription: Subscription


class WebhookEndpoint(_Model):
    """An event on `webhook-endpoints.changes`, keyed by endpoint id: what the notifier needs to sign and send."""

    schema_version: Literal[1] = SUBSCRIPTION_SCHEMA_VERSION
    endpoint_id: str
    subscriber_id: str
    url: str
    secret: str = Field(description="'whsec_' + base64 key, Standard Webhooks")
    previous_secret: str | None = Field(
        default=None, description="the secret a rotation replaced: it signs too until previous_secret_expires_at"
    )
    previous_secret_expires_at: datetime | None = None
    owner_email: str | None = Field(default=None, description="the owning account's email, told when it is disabled")
    active: bool = True
    updated_at: datetime
