"""Builders for the matcher tests: classified notices, subscriptions, and real BOAMP texts as notices."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from schemas.notice import Buyer, BuyerCategory, ClassifiedNotice, Lot, Money, NoticeFlags, NoticeKind
from schemas.subscription import DeliverySettings, Subscription, SubscriptionFilters

FIXTURES = Path(__file__).parents[2] / "fixtures" / "matcher"
CLASSIFIED_AT = datetime(2024, 1, 15, 9, 0, tzinfo=UTC)


def make_notice(
    *,
    notice_id: str = "test:1",
    version: str = "v1",
    kind: NoticeKind = NoticeKind.COMPETITION,
    title: str = "Avis de test",
    description: str | None = None,
    cpv_main: str | None = None,
    cpv_additional: Iterable[str] = (),
    lot_cpv: Iterable[str] = (),
    sectors: Iterable[str] = (),
    departments: Iterable[str] = (),
    regions: Iterable[str] = (),
    countries: Iterable[str] = (),
    value: Decimal | int | None = None,
    currency: str = "EUR",
    deadline: datetime | None = None,
    buyer_name: str = "Ville de Toulouse",
    buyer_id: str | None = None,
    buyer_category: BuyerCategory | str | None = None,
    procedure: str | None = None,
    sme_suitable: bool | None = None,
    reserved: bool = False,
) -> ClassifiedNotice:
    return ClassifiedNotice(
        notice_id=notice_id,
        version=version,
        source=notice_id.split(":")[0],
        source_id=notice_id.split(":")[-1],
        kind=kind,
        title=title,
        description=description,
        language="fr",
        buyer=Buyer(name=buyer_name, national_id=buyer_id),
        buyer_category=buyer_category,
        procedure=procedure,
        flags=NoticeFlags(sme_suitable=sme_suitable, reserved=reserved),
        cpv_main=cpv_main,
        cpv_additional=list(cpv_additional),
        lots=[Lot(lot_id=f"LOT-{i + 1}", cpv_main=code) for i, code in enumerate(lot_cpv)],
        estimated_value=None if value is None else Money(amount=Decimal(value), currency=currency),
        # The classifier converts other currencies; these tests only need euros.
        value_eur=None if value is None or currency != "EUR" else Decimal(value),
        deadline=deadline,
        sectors=list(sectors),
        departments=list(departments),
        regions=list(regions),
        countries=list(countries),
        classified_at=CLASSIFIED_AT,
    )


def make_subscription(
    subscription_id: str = "sub-1",
    *,
    subscriber_id: str = "acme",
    name: str | None = None,
    active: bool = True,
    email: str | None = "veille@acme.example",
    webhook_endpoint_id: str | None = None,
    language: str = "fr",
    email_frequency: str = "instant",
    **filters: Any,
) -> Subscription:
    return Subscription(
        subscription_id=subscription_id,
        subscriber_id=subscriber_id,
        name=name or f"Veille {subscription_id}",
        filters=SubscriptionFilters.model_validate(filters),
        delivery=DeliverySettings.model_validate(
            {
                "email": email,
                "webhook_endpoint_id": webhook_endpoint_id,
                "language": language,
                "email_frequency": email_frequency,
            }
        ),
        active=active,
        created_at=CLASSIFIED_AT,
        updated_at=CLASSIFIED_AT,
    )


def boamp_notices() -> dict[str, ClassifiedNotice]:
    """The 34 real BOAMP summaries as notices: the reference as title when there is one, the object as description."""
    summaries: dict[str, list[str]] = json.loads((FIXTURES / "boamp_ad_summary.json").read_text(encoding="utf-8"))
    return {
        idweb: make_notice(
            notice_id=f"boamp:{idweb}",
            title=objet if reference == "None" else reference,
            description=objet,
            departments=[],
            deadline=datetime.fromisoformat(deadline).replace(tzinfo=ZoneInfo("Europe/Paris")),
        )
        for idweb, (reference, objet, deadline) in summaries.items()
    }
