from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from functools import cache
from pathlib import Path

from schemas.alert import NoticeSummary
from schemas.notice import Money, NoticeKind
from services.classifier.classify import Classifier
from services.ingest.sources import parse_document
from services.notifier.changes import Change, ChangedField, announced_by, what_changed

SDK = Path(__file__).parents[2] / "fixtures" / "eforms" / "sdk-examples"
NOW = datetime(2026, 3, 2, tzinfo=UTC)


@cache
def _classifier() -> Classifier:
    return Classifier.load()


def _summary(name: str) -> NoticeSummary:
    (notice,) = parse_document((SDK / name).read_bytes(), filename=name)
    return NoticeSummary.of(_classifier().classify(notice, now=NOW))


def _plain(**fields: object) -> NoticeSummary:
    base: dict[str, object] = {
        "notice_id": "plan:21310555400017:2026-07",
        "version": "1",
        "kind": NoticeKind.PLANNING,
        "title": "Réfection de la voirie du chemin de Lalande",
        "language": "fr",
        "buyer_name": "Mairie de Toulouse",
    }
    return NoticeSummary.model_validate({**base, **fields})


def test_a_real_corrigendum_moves_the_deadline_and_says_why() -> None:
    original, corrected = _summary("cn_24_open.xml"), _summary("change-cn_24_open_dates.xml")
    changes = what_changed(original, corrected)
    assert changes[0] == Change(ChangedField.DEADLINE, "2020-04-03T12:00:00+01:00", "2020-06-12T12:00:00+01:00")
    assert changes[-1].field is ChangedField.CHANGE_NOTE
    assert "extend the UK lockdown period" in (changes[-1].after or "")


def test_a_real_cancellation_comes_first() -> None:
    cancelled = _summary("change-cn_24_void.xml")
    before = cancelled.model_copy(update={"cancelled": False, "change_description": None})
    changes = what_changed(before, cancelled)
    assert changes[0] == Change(ChangedField.CANCELLED, None, "true")
    assert changes[-1] == Change(ChangedField.CHANGE_NOTE, None, "reason cancel: We cancel because...")


def test_nothing_a_subscriber_sees_changed() -> None:
    notice = _summary("cn_24_open.xml")
    assert what_changed(notice, notice.model_copy(update={"version": "02"})) == []


def test_value_title_and_planned_date() -> None:
    before = _plain(planned_date=date(2026, 7, 1), estimated_value=Money(amount=Decimal("80000"), currency="EUR"))
    after = _plain(
        title="Réfection de la voirie du chemin de Lalande et de l'allée des Sports",
        planned_date=date(2026, 9, 1),
        estimated_value=Money(amount=Decimal("120000"), currency="EUR"),
    )
    assert [change.field for change in what_changed(before, after)] == [
        ChangedField.TITLE,
        ChangedField.ESTIMATED_VALUE,
        ChangedField.PLANNED_DATE,
    ]
    assert what_changed(before, after)[1] == Change(ChangedField.ESTIMATED_VALUE, "80000 EUR", "120000 EUR")


def test_a_call_for_tender_announced_by_a_planned_purchase() -> None:
    plan = _plain()
    call = _plain(
        notice_id="boamp:26-41234",
        kind=NoticeKind.COMPETITION,
        title="Travaux de réfection de la voirie - chemin de Lalande",
        buyer_name="MAIRIE DE TOULOUSE",
    )
    assert announced_by(plan, call)
    assert not announced_by(plan, call.model_copy(update={"buyer_name": "Mairie de Blagnac"}))
    assert not announced_by(plan, call.model_copy(update={"title": "Fourniture de mobilier scolaire"}))
    assert not announced_by(plan, call.model_copy(update={"kind": NoticeKind.RESULT}))


def test_the_same_procedure_whatever_the_titles() -> None:
    pin, cn = _summary("pin-only_24.xml"), _summary("cn_24_open.xml")
    assert not announced_by(pin, cn)  # two unrelated SDK examples
    same = cn.model_copy(update={"duplicate_group": "proc:31f258b6", "title": "Autre titre"})
    assert announced_by(pin.model_copy(update={"duplicate_group": "proc:31f258b6"}), same)
