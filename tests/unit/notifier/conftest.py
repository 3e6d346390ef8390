"""Matches built from a real French call for tenders (tests/fixtures/eforms/PROVENANCE.md)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from schemas.alert import Criterion, Match, MatchedSubscription, MatchReason, NoticeSummary, match_id_for
from schemas.notice import NoticeKind

NOTICE_FILE = Path(__file__).resolve().parents[2] / "fixtures" / "eforms" / "ted" / "2024-OJS017-00047522.xml"

SUBSCRIBER_ID = "sub_acct_42"
RECIPIENT = "achats@example.fr"
MATCHED_AT = datetime(2024, 1, 24, 8, 15, tzinfo=UTC)

_NS = {
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
    "efac": "http://data.europa.eu/p27/eforms-ubl-extension-aggregate-components/1",
    "efbc": "http://data.europa.eu/p27/eforms-ubl-extension-basic-components/1",
}


def _text(root: ET.Element, path: str) -> str:
    found = root.findtext(path, namespaces=_NS)
    assert found, f"{path} missing from {NOTICE_FILE.name}"
    return found.strip()


def _deadline(root: ET.Element) -> datetime:
    # eForms splits the deadline into a date and a time, each with its own offset: "2024-02-28+02:00", "12:00:00+02:00"
    period = ".//cac:TenderSubmissionDeadlinePeriod/"
    day = _text(root, period + "cbc:EndDate")[:10]
    return datetime.fromisoformat(f"{day}T{_text(root, period + 'cbc:EndTime')}")


def _form_type(root: ET.Element) -> str:
    # the notice type's list is its form type: planning, competition or result
    element = root.find("cbc:NoticeTypeCode", _NS)
    assert element is not None, f"cbc:NoticeTypeCode missing from {NOTICE_FILE.name}"
    return element.get("listName", "")


def read_notice_summary() -> NoticeSummary:
    """The summary the matcher would put in a Match for the fixture notice.

    Read from the document: title, description, buyer, CPV, publication date, deadline. Derived the way the
    classifier does: NUTS FRJ12 is the Gard (department 30) in Occitanie (region 76).
    """
    root = ET.parse(NOTICE_FILE).getroot()
    publication_id = _text(root, ".//efbc:NoticePublicationID")  # "00047522-2024"
    number, year = publication_id.split("-")
    return NoticeSummary(
        notice_id=f"eforms:{_text(root, 'cbc:ID')}",
        version=_text(root, "cbc:VersionID"),
        kind=NoticeKind(_form_type(root)),
        title=_text(root, "cac:ProcurementProject/cbc:Name"),
        description=_text(root, "cac:ProcurementProject/cbc:Description"),
        language="fr",
        buyer_name=_text(root, ".//efac:Organization/efac:Company/cac:PartyName/cbc:Name"),
        cpv_main=_text(root, "cac:ProcurementProject/cac:MainCommodityClassification/cbc:ItemClassificationCode"),
        sectors=["environment"],
        departments=["30"],
        regions=["76"],
        countries=["FR"],
        published_at=datetime.combine(
            date.fromisoformat(_text(root, ".//efbc:PublicationDate")[:10]), datetime.min.time(), UTC
        ),
        deadline=_deadline(root),
        source_url=f"https://ted.europa.eu/en/notice/-/detail/{int(number)}-{year}",
    )


def default_subscriptions() -> list[MatchedSubscription]:
    return [
        MatchedSubscription(
            subscription_id="s_glass",
            name="Collecte des déchets — Gard",
            reasons=[
                MatchReason(criterion=Criterion.CPV, values=["90500000"], notice_values=["90511100"]),
                MatchReason(criterion=Criterion.DEPARTMENT, values=["30"], notice_values=["30"]),
            ],
            email=RECIPIENT,
            webhook_endpoint_id="ep_main",
        ),
        MatchedSubscription(
            subscription_id="s_occitanie",
            name="Services environnementaux en Occitanie",
            reasons=[
                MatchReason(criterion=Criterion.REGION, values=["76"], notice_values=["76"]),
                MatchReason(criterion=Criterion.KEYWORDS, values=["verre"], notice_values=["title"]),
            ],
            email="Achats@Example.FR",
        ),
        MatchedSubscription(
            subscription_id="s_other_team",
            name="Veille de l'équipe travaux",
            reasons=[MatchReason(criterion=Criterion.REGION, values=["76"], notice_values=["76"])],
            email="travaux@example.fr",
            language="en",
            webhook_endpoint_id="ep_other",
        ),
    ]


MatchFactory = Callable[..., Match]


@pytest.fixture
def notice_summary() -> NoticeSummary:
    return read_notice_summary()


@pytest.fixture
def make_match(notice_summary: NoticeSummary) -> MatchFactory:
    """`make_match(title=..., deadline=..., subscriptions=[...])`: the fixture notice with some fields replaced."""

    def build(subscriptions: list[MatchedSubscription] | None = None, **notice_changes: Any) -> Match:
        notice = notice_summary.model_copy(update=notice_changes)
        return Match(
            match_id=match_id_for(SUBSCRIBER_ID, notice.notice_id, notice.version),
            subscriber_id=SUBSCRIBER_ID,
            notice=notice,
            subscriptions=subscriptions if subscriptions is not None else default_subscriptions(),
            matched_at=MATCHED_AT,
        )

    return build
