from __future__ import annotations

import re
from collections import defaultdict
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from schemas.notice import Buyer, Notice
from services.classifier.duplicates import duplicate_group
from services.ingest.sources import parse_document

_FIXTURES = Path(__file__).parents[2] / "fixtures"

_TED_NOTICE = "eforms/ted/2024-OJS074-00219998.xml"
_BOAMP_EXPORT = "boamp/opendatasoft/export-eforms-24-31337-and-fnsimple.json"
_PARIS_WINTER = timezone(timedelta(hours=1))


def _notices(relative_path: str) -> list[Notice]:
    path = _FIXTURES / relative_path
    return parse_document(path.read_bytes(), filename=path.name)


def _notice(relative_path: str, source_id: str | None = None) -> Notice:
    notices = _notices(relative_path)
    if source_id is None:
        (notice,) = notices
        return notice
    (notice,) = [notice for notice in notices if notice.source_id == source_id]
    return notice


def _buyer_publication(notice: Notice, **changes: Any) -> Notice:
    """The notice as the buyer publishes it on its own site: another source, no procedure reference."""
    fields: dict[str, Any] = {
        "source": "buyer-site",
        "source_id": "AO-2016-167",
        "notice_id": "buyer-site:AO-2016-167",
        "procedure_id": None,
        "links": [],
    }
    return notice.model_copy(update={**fields, **changes})


def _with_buyer_id(notice: Notice, national_id: str | None, name: str | None = None) -> Buyer:
    return notice.buyer.model_copy(update={"national_id": national_id, "name": name or notice.buyer.name})


# --- explicit references ---


def test_a_ted_notice_and_its_boamp_eforms_record_share_the_procedure_group() -> None:
    ted = _notice(_TED_NOTICE)
    boamp = _notice(_BOAMP_EXPORT, source_id="24-31337")
    assert (ted.notice_id, boamp.notice_id) == ("eforms:c5c75568-b9cd-4347-bc17-0d0208f4f638", "boamp:24-31337")
    assert duplicate_group(ted) == "proc:d15f5eab-a993-47dc-9d68-ba72b196f123"
    assert duplicate_group(boamp) == "proc:d15f5eab-a993-47dc-9d68-ba72b196f123"
    # the other record of the same export is another procedure
    assert duplicate_group(_notice(_BOAMP_EXPORT, source_id="16-652")) == "ref:boamp:16-652"


def test_an_eforms_change_notice_keeps_the_group_although_it_moves_the_deadline() -> None:
    original = _notice("eforms/sdk-examples/cn_24_open.xml")
    change = _notice("eforms/sdk-examples/change-cn_24_open_dates.xml")
    assert change.is_change
    assert original.deadline is not None and change.deadline is not None
    assert original.deadline.date() != change.deadline.date()
    assert duplicate_group(original) == duplicate_group(change) == "proc:31f258b6-5eb2-4875-8997-affa3cdce27c"


def test_the_procedure_uuid_is_read_whatever_its_case_and_wherever_it_comes_from() -> None:
    ted = _notice(_TED_NOTICE)
    own = _buyer_publication(ted, procedure_id=" D15F5EAB-A993-47DC-9D68-BA72B196F123 ")
    assert duplicate_group(own) == "proc:d15f5eab-a993-47dc-9d68-ba72b196f123"


def test_every_shape_correction_and_award_of_a_boamp_call_share_its_group() -> None:
    call_xml = _notice("boamp/xml-v230/test-pub-9.xml")
    call_record = _notice("boamp/opendatasoft/record-fnsimple-16-652.json")
    call_in_export = _notice(_BOAMP_EXPORT, source_id="16-652")
    correction = _notice("boamp/opendatasoft/record-rectificatif-16-4711.json")
    award = _notice("boamp/xml-v230/test-attribution-8.xml")
    # the correction is published under its own IDWEB and moves the deadline
    assert (correction.source_id, correction.change_of) == ("16-4711", "16-652")
    assert correction.deadline != call_xml.deadline
    assert (award.source_id, award.procedure_id, award.deadline) == ("17-4742", "16-652", None)
    groups = {duplicate_group(notice) for notice in (call_xml, call_record, call_in_export, correction, award)}
    assert groups == {"ref:boamp:16-652"}


def test_every_release_of_an_ocds_process_shares_its_ocid_group() -> None:
    folder = "ocds/fictional-example-1.1"
    releases = [
        _notice(f"{folder}/ocds-213czf-000-00001-01-planning.json"),
        _notice(f"{folder}/ocds-213czf-000-00001-02-tender.json"),
        _notice(f"{folder}/ocds-213czf-000-00001-04-award.json"),
        _notice(f"{folder}/ocds-213czf-000-00001.json"),
    ]
    assert {duplicate_group(release) for release in releases} == {"ref:ocds:ocds-213czf-000-00001"}


# --- buyer, title and deadline ---


def test_the_buyer_site_and_another_spelling_of_a_real_boamp_call_share_a_fuzzy_group() -> None:
    boamp = _notice("boamp/xml-v230/test-pub.xml")
    assert boamp.title == "2016 DFA 167 - Prestations de remorquage pour les véhicules de la ville de Paris"
    # SIREN 217500016 is the Ville de Paris; the two publications name two of its establishments.
    first = _buyer_publication(boamp, buyer=_with_buyer_id(boamp, "21750001600019"))
    second = _buyer_publication(
        boamp,
        source="aggregator",
        source_id="x-991",
        notice_id="aggregator:x-991",
        title="AVIS D'APPEL PUBLIC A LA CONCURRENCE - 2016 DFA 167 : PRESTATIONS DE REMORQUAGE POUR LES "
        "VEHICULES DE LA VILLE DE PARIS.",
        buyer=_with_buyer_id(boamp, "217 500 016 00027", name="MAIRIE DE PARIS - DFA"),
        deadline=datetime(2017, 2, 7, 11, 0, tzinfo=UTC),  # the same day, written in UTC
    )
    group = duplicate_group(first)
    assert group is not None
    assert re.fullmatch(r"fuzzy:[0-9a-f]{20}", group)
    assert duplicate_group(second) == group
    # the BOAMP notice itself is grouped by its IDWEB: explicit references come first
    assert duplicate_group(boamp) == "ref:boamp:16-186394"


def test_without_a_valid_siren_the_buyer_is_its_normalised_name() -> None:
    boamp = _notice("boamp/xml-v230/test-pub-2.xml")
    assert boamp.buyer.name == "Grand Port Maritime de Marseille"
    assert boamp.buyer.national_id is None
    first = _buyer_publication(boamp)
    second = _buyer_publication(
        boamp,
        title=boamp.title.replace("d'oeuvre", "d’œuvre").upper(),
        buyer=_with_buyer_id(boamp, "n/a", name="GRAND PORT MARITIME DE MARSEILLE"),
    )
    assert duplicate_group(first) is not None
    assert duplicate_group(second) == duplicate_group(first)
    # a placeholder that is no SIREN (its Luhn key is wrong) is ignored too
    placeholder = _buyer_publication(boamp, buyer=_with_buyer_id(boamp, "123 456 789"))
    assert duplicate_group(placeholder) == duplicate_group(first)
    another_buyer = _buyer_publication(boamp, buyer=_with_buyer_id(boamp, None, name="Port de Sète"))
    assert duplicate_group(another_buyer) != duplicate_group(first)


def test_another_deadline_day_or_another_siren_is_another_procedure() -> None:
    boamp = _notice("boamp/xml-v230/test-pub.xml")
    assert boamp.deadline == datetime(2017, 2, 7, 12, 0, tzinfo=_PARIS_WINTER)
    base = _buyer_publication(boamp, buyer=_with_buyer_id(boamp, "21750001600019"))
    next_day = base.model_copy(update={"deadline": boamp.deadline + timedelta(days=1)})
    same_day_later = base.model_copy(update={"deadline": boamp.deadline + timedelta(hours=5)})
    other_siren = base.model_copy(update={"buyer": _with_buyer_id(boamp, "20001865300051")})
    assert duplicate_group(same_day_later) == duplicate_group(base)
    assert duplicate_group(next_day) != duplicate_group(base)
    assert duplicate_group(other_siren) != duplicate_group(base)


def test_a_deadline_published_as_a_bare_date_keeps_its_day_in_any_zone() -> None:
    boamp = _notice("boamp/xml-v230/test-pub.xml")
    paris_end_of_day = _buyer_publication(boamp, deadline=datetime(2017, 2, 7, 23, 59, 59, tzinfo=_PARIS_WINTER))
    utc_end_of_day = _buyer_publication(boamp, deadline=datetime(2017, 2, 7, 23, 59, 59, tzinfo=UTC))
    naive_noon = _buyer_publication(boamp, deadline=datetime(2017, 2, 7, 12, 0))
    assert duplicate_group(paris_end_of_day) == duplicate_group(utc_end_of_day) == duplicate_group(naive_noon)


def test_without_a_deadline_only_an_explicit_reference_gives_a_group() -> None:
    boamp = _notice("boamp/xml-v230/test-pub.xml")
    assert duplicate_group(_buyer_publication(boamp, deadline=None)) is None
    award = _notice("boamp/xml-v230/test-attribution-12.xml")
    assert award.deadline is None
    assert duplicate_group(award) == "ref:boamp:16-107438"
    plan_line = _notices("purchase-plans/plan-de-charge-exemple.csv")[0]
    assert (plan_line.procedure_id, plan_line.deadline) == (None, None)
    assert duplicate_group(plan_line) is None


def test_a_title_of_fewer_than_three_significant_words_is_too_weak() -> None:
    boamp = _notice("boamp/xml-v230/test-pub-4.xml")
    assert boamp.title == "Ville des andelys"
    assert duplicate_group(_buyer_publication(boamp)) is None
    three_words = _buyer_publication(boamp, title="Avis de marché : Ville des Andelys, voirie")
    assert duplicate_group(three_words) is not None


def test_a_notice_type_phrase_alone_is_kept_as_the_title() -> None:
    boamp = _notice("boamp/xml-v230/test-pub.xml")
    bare = _buyer_publication(boamp, title="Avis d'appel public à la concurrence")
    assert duplicate_group(bare) is not None
    assert duplicate_group(bare) != duplicate_group(_buyer_publication(boamp))


# --- every real notice ---

# Notices of the fixtures that publish one procedure, as "path" or "path#source_id"; every other notice is
# a procedure of its own or has no group.
_SAME_PROCEDURE = {
    "proc:d15f5eab-a993-47dc-9d68-ba72b196f123": {_TED_NOTICE, f"{_BOAMP_EXPORT}#24-31337"},
    # an SDK example call and the award of the same procedure
    "proc:e3cdabf1-e057-47a5-9210-b1f6fc757228": {
        "eforms/sdk-examples/cn_24_FRA_comments.xml",
        "eforms/sdk-examples/can_24_FRA_comments.xml",
    },
    "proc:31f258b6-5eb2-4875-8997-affa3cdce27c": {
        "eforms/sdk-examples/cn_24_open.xml",
        "eforms/sdk-examples/change-cn_24_open_dates.xml",
    },
    "ref:boamp:16-652": {
        "boamp/xml-v230/test-pub-9.xml",
        "boamp/xml-v230/test-attribution-8.xml",
        "boamp/opendatasoft/record-fnsimple-16-652.json",
        "boamp/opendatasoft/record-rectificatif-16-4711.json",
        f"{_BOAMP_EXPORT}#16-652",
    },
    "ref:ocds:ocds-213czf-000-00001": {
        "ocds/fictional-example-1.1/ocds-213czf-000-00001-01-planning.json",
        "ocds/fictional-example-1.1/ocds-213czf-000-00001-02-tender.json",
        "ocds/fictional-example-1.1/ocds-213czf-000-00001-04-award.json",
        "ocds/fictional-example-1.1/ocds-213czf-000-00001.json",
    },
    "ref:ocds:ocds-a1234567-mt-063635891f001755a1637786dd047485f3dcfaf6": {
        "ocds/real-examples/canada-montreal-fr/ocds-a1234567-mt-063635891f001755a1637786dd047485f3dcfaf6-"
        "063635891f001755a1637786dd047485f3dcfaf6.json",
        "ocds/real-examples/canada-montreal-fr/record-ocds-a1234567-mt-063635891f001755a1637786dd047485f3dcfaf6.json",
    },
}


def _every_fixture_notice() -> list[tuple[str, Notice]]:
    labelled = []
    for folder in ("eforms", "boamp", "ocds"):
        for path in sorted((_FIXTURES / folder).rglob("*")):
            if path.suffix not in (".xml", ".json"):
                continue
            relative = path.relative_to(_FIXTURES).as_posix()
            notices = _notices(relative)
            for notice in notices:
                labelled.append((relative if len(notices) == 1 else f"{relative}#{notice.source_id}", notice))
    return labelled


def test_real_notices_get_stable_groups_and_only_the_same_procedure_shares_one() -> None:
    labelled = _every_fixture_notice()
    assert len(labelled) == len({label for label, _ in labelled}) == 176
    members: dict[str, set[str]] = defaultdict(set)
    ungrouped = set()
    for label, notice in labelled:
        group = duplicate_group(notice)
        assert duplicate_group(notice.model_copy(deep=True)) == group
        if group is None:
            ungrouped.add(label)
        else:
            members[group].add(label)
    assert {group: labels for group, labels in members.items() if len(labels) > 1} == _SAME_PROCEDURE
    # prior information notices without a procedure identifier nor a deadline
    assert ungrouped == {
        f"eforms/sdk-examples/{name}.xml"
        for name in ("pin-buyer_24", "pin-only_24", "pin-only_25", "pin-only_81_FRA", "pin-rtl_24", "t01_PRT")
    }


def test_groups_are_the_same_when_the_documents_are_read_again() -> None:
    first = [(label, duplicate_group(notice)) for label, notice in _every_fixture_notice()]
    again = [(label, duplicate_group(notice)) for label, notice in _every_fixture_notice()]
    assert first == again
