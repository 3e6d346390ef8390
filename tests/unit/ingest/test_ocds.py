import copy
import json
import re
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from schemas.notice import Address, ContractNature, Lot, Money, Notice, NoticeKind, NoticeText
from services.ingest.sources._errors import DocumentError
from services.ingest.sources.ocds import is_ocds, parse_ocds

FIXTURES = Path(__file__).parents[2] / "fixtures" / "ocds"
ALL_DOCUMENTS = sorted(FIXTURES.glob("*/**/*.json"))
MONTREAL = timezone(timedelta(hours=-4))
YEREVAN = timezone(timedelta(hours=4))


def load(name: str) -> Any:
    path = next(path for path in ALL_DOCUMENTS if path.name.startswith(name))
    return json.loads(path.read_bytes())


def parse_one(name: str) -> Notice:
    [notice] = parse_ocds(load(name))
    return notice


def test_the_fixture_set_is_complete() -> None:
    assert len(list((FIXTURES / "fictional-example-1.1").glob("*.json"))) == 4
    assert len(list((FIXTURES / "real-examples").glob("*/*.json"))) == 11


@pytest.mark.parametrize("path", ALL_DOCUMENTS, ids=lambda path: path.name[:60])
def test_every_document_parses_into_consistent_canonical_notices(path: Path) -> None:
    value = json.loads(path.read_bytes())

    assert is_ocds(value)
    notices = parse_ocds(value)
    assert notices
    for notice in notices:
        assert notice.source == "ocds"
        assert notice.notice_id == f"ocds:{notice.source_id}"
        assert notice.procedure_id == notice.source_id
        assert notice.version
        assert re.fullmatch(r"[a-z]{2}", notice.language)
        assert notice.title == notice.title.strip() != ""
        assert notice.buyer.name
        assert all(re.fullmatch(r"\d{8}", code) for code in notice.all_cpv())
        assert notice.published_at is not None and notice.published_at.utcoffset() is not None
        assert notice.deadline is None or notice.deadline.utcoffset() is not None
        assert Notice.model_validate_json(notice.model_dump_json()) == notice


def test_fictional_planning_release() -> None:
    notice = parse_one("ocds-213czf-000-00001-01-planning")

    assert notice.notice_id == "ocds:ocds-213czf-000-00001"
    assert notice.version == "ocds-213czf-000-00001-01-planning"
    assert notice.kind is NoticeKind.PLANNING
    assert notice.notice_type == "planning"
    assert notice.is_change is False
    assert notice.cancelled is False
    assert notice.title == "Planned cycle lane improvements"
    assert notice.description is not None
    assert notice.description.startswith(
        "The authority plans to tender for improvements to the cycle lane in early 2010."
    )
    assert notice.language == "en"
    assert notice.buyer.name == "London Borough of Barnet"
    assert notice.buyer.national_id == "GB-LAC-E09000003"
    assert notice.buyer.address == Address(
        street="4, North London Business Park, Oakleigh Rd S",
        city="London",
        postal_code="N11 1NP",
        country="United Kingdom",
    )
    assert notice.buyer.email == "procurement-team@example.com"
    assert notice.contract_nature is ContractNature.WORKS
    assert notice.procedure == "open"
    # "45233130.0" (a float gone through a spreadsheet) and "45233162-2" (with check digit).
    assert notice.cpv_main == "45233130"
    assert notice.cpv_additional == ["45233162"]
    assert notice.estimated_value == Money(amount=Decimal(1000000), currency="GBP")
    assert notice.published_at == datetime(2009, 3, 15, 14, 45, tzinfo=UTC)
    assert notice.deadline is None
    assert notice.planned_date == date(2010, 2, 1)
    assert notice.places == []
    assert "http://example.com/opencontracting/documents/planning/highways/procurementPlan.pdf" in notice.links


def test_fictional_tender_and_award_releases() -> None:
    tender = parse_one("ocds-213czf-000-00001-02-tender")
    award = parse_one("ocds-213czf-000-00001-04-award")

    assert tender.kind is NoticeKind.COMPETITION
    assert tender.version == "ocds-213czf-000-00001-02-tender"
    assert tender.deadline == datetime(2010, 4, 1, 18, 0, tzinfo=UTC)
    assert tender.estimated_value == Money(amount=Decimal(1100000), currency="GBP")
    assert tender.planned_date is None
    assert award.kind is NoticeKind.RESULT
    assert award.notice_id == tender.notice_id  # releases of one ocid are versions of one notice
    assert award.version == "ocds-213czf-000-00001-04-award"
    # The award release states no tender value: the awarded amount stands for it.
    assert award.estimated_value == Money(amount=Decimal(11000000), currency="GBP")
    assert award.cpv_main == "45233130"


def test_a_package_with_every_release_of_a_process_is_one_notice_at_its_latest_state() -> None:
    [notice] = parse_ocds(load("ocds-213czf-000-00001.json"))

    assert notice.version == "ocds-213czf-000-00001-06-implementation"
    assert notice.kind is NoticeKind.RESULT
    assert notice.notice_type == "implementation"
    assert notice.published_at == datetime(2011, 1, 10, 9, 30, tzinfo=UTC)
    # The implementation release carries no tender: what earlier releases announced is merged in.
    assert notice.title == "Planned cycle lane improvements"
    assert notice.deadline == datetime(2010, 4, 8, 18, 0, tzinfo=UTC)  # as extended by the tenderAmendment
    assert notice.cpv_main == "45233130"
    assert notice.contract_nature is ContractNature.WORKS
    assert "http://example.com/contracts/ocds-213czf-000-00001" in notice.links


def test_the_latest_release_wins_whatever_its_position_in_the_package() -> None:
    package = load("ocds-213czf-000-00001.json")
    package["releases"] = package["releases"][:3][::-1]  # tenderAmendment, tender, planning

    [notice] = parse_ocds(package)

    assert notice.version == "ocds-213czf-000-00001-03-tenderAmendment"
    assert notice.kind is NoticeKind.COMPETITION
    assert notice.is_change is True
    assert notice.change_of == "ocds-213czf-000-00001"
    assert notice.change_description == "The closing date for tender submissions has been extended to 2017-04-08"
    assert notice.deadline == datetime(2010, 4, 8, 18, 0, tzinfo=UTC)


def test_montreal_french_award_release() -> None:
    notice = parse_one("ocds-a1234567-mt-479ed5")

    assert notice.notice_id == "ocds:ocds-a1234567-mt-479ed54d04ef57f019dab7e6439d1f12871709a8"
    assert notice.version == "479ed54d04ef57f019dab7e6439d1f12871709a8"
    assert notice.kind is NoticeKind.RESULT
    assert notice.notice_type == "award"  # Montréal writes the tag as a string
    assert notice.language == "fr"
    # No tender title: the awarded item's description names the purchase.
    assert notice.title == (
        "Achat de télévision, écran électrique, installation de projecteur et quincaillerie pour 3 salles de "
        "réunion. Hyg. du milieu - Soutien tech. et fonct. - À répartir. APPROUVÉ PAR : LEMIRE, LUCIE."
    )
    assert notice.buyer.name == "Service de l'eau"
    assert notice.buyer.national_id == "service-de-leau"
    assert notice.buyer.address == Address(
        street="275 Rue Notre-Dame Est, Montréal", city="Montréal", postal_code="H2Y 1C6", country="Canada"
    )
    assert notice.estimated_value == Money(amount=Decimal("10786.27"), currency="CAD")
    assert notice.published_at == datetime(2017, 8, 31, tzinfo=MONTREAL)
    assert notice.cpv_main is None


def test_montreal_buyer_is_the_department_not_the_procuring_entity() -> None:
    notice = parse_one("ocds-a1234567-mt-063635")

    assert notice.buyer.name == "Infrastructures, voirie et transports"  # not "Fonctionnaires"
    assert notice.title.startswith("Évaluation d'un panneau lumineux pour fin de conformité technique")


def test_montreal_record_is_read_from_its_compiled_release() -> None:
    record = parse_one("record-ocds-a1234567-mt-063635")
    release = parse_one("ocds-a1234567-mt-063635")

    assert record.notice_id == release.notice_id
    assert record.version == "063635891f001755a1637786dd047485f3dcfaf6"
    assert record.kind is NoticeKind.RESULT  # from the release's tag: the compiled release is tagged "compiled"
    assert record.notice_type == "award"
    assert record.title == release.title
    assert record.buyer == release.buyer
    assert record.estimated_value == Money(amount=Decimal("8923.94"), currency="CAD")


def test_uk_contracts_finder_tender_release() -> None:
    notice = parse_one("ocds-b5fd17-2c330cf9")

    assert notice.notice_id == "ocds:ocds-b5fd17-2c330cf9-adc8-11e6-9901-0019b9f3037b"
    assert notice.version == "ocds-b5fd17-2c330cf9-adc8-11e6-9901-0019b9f3037b-59429-metofc-9mgh-ghl8ty"
    assert notice.kind is NoticeKind.COMPETITION
    assert notice.language == "en"  # en-GB
    assert notice.title == "Climate Science for Service Partnership (CSSP): Calls for Expressions of Interest"
    assert notice.buyer.name == "MET OFFICE"
    assert notice.buyer.national_id is None  # identifier with empty scheme and id
    assert notice.buyer.address == Address(
        street="Fitzroy Road  Exeter", city="Exeter", postal_code="EX1 3PB", country="United Kingdom"
    )
    assert notice.buyer.email == "trina.briers@metoffice.gov.uk"
    assert notice.cpv_main == "73000000"
    assert notice.cpv_additional == []
    assert notice.estimated_value == Money(amount=Decimal(464500), currency="GBP")
    assert notice.deadline == datetime(2015, 2, 27, tzinfo=UTC)
    assert notice.published_at == datetime(2014, 12, 17, 16, 44, 56, tzinfo=UTC)
    assert notice.procedure is None  # only the free text "Open procedure"


def test_moldova_record_is_an_open_call_for_tenders_despite_its_tags() -> None:
    notice = parse_one("ocds-ngfbwp-19651579")

    assert notice.notice_id == "ocds:ocds-ngfbwp-19651579"
    assert notice.version == "19651579"
    # Tagged tender+award+contract, but it carries no award: it is still receiving offers.
    assert notice.notice_type == "tender,award,contract"
    assert notice.kind is NoticeKind.COMPETITION
    assert notice.language == "ro"  # published as "md"
    assert notice.title == "Tender Ref 17/01668 Bulletin 47"
    assert notice.description is None  # an empty string
    assert notice.buyer.name == "CONSILIUL RAIONAL CIMIŞLIA"
    assert notice.cpv_main == "45000000"  # 45000000-7
    assert notice.estimated_value is None  # amount and currency are empty strings
    assert notice.deadline == datetime(2017, 7, 4, 10, 0, tzinfo=UTC)
    assert notice.published_at == datetime(2017, 6, 13, tzinfo=UTC)
    assert notice.procedure is None  # "Licitaţie publică" is not a method code


def test_moldova_record_with_repeated_item_codes() -> None:
    notice = parse_one("ocds-ngfbwp-19750186")

    assert notice.cpv_main == "30200000"
    assert notice.cpv_additional == []
    assert notice.buyer.name == "SECRETARIATUL PARLAMENTULUI REPUBLICII MOLDOVA"


def test_nigeria_contract_release() -> None:
    notice = parse_one("ocds-gyl66f-borbda-27yetd")

    assert notice.kind is NoticeKind.RESULT
    assert notice.language == "en"  # "EN"
    assert notice.title == "construction of itapaji small hydro power project"
    assert notice.buyer.name == "benin-owena river basin development authority"
    assert notice.buyer.national_id == "NGA-BRBDA-866594103"
    assert notice.estimated_value == Money(amount=Decimal("54389500.0"), currency="NGN")
    assert notice.cpv_main == "09399855"
    assert notice.places == []  # a GeoNames point and an empty address say nothing usable


def test_armenian_package_gives_one_notice_per_process() -> None:
    notices = parse_ocds(load("6.json"))

    assert len(notices) == 100
    assert len({notice.notice_id for notice in notices}) == 100
    assert sum(notice.kind is NoticeKind.PLANNING for notice in notices) == 73
    assert sum(notice.kind is NoticeKind.COMPETITION for notice in notices) == 27
    assert all(notice.language == "hy" for notice in notices)
    assert all(notice.cpv_main is not None for notice in notices)
    assert sum(notice.cancelled for notice in notices) == 4


def test_armenian_cancelled_tender_with_a_lot() -> None:
    notice = parse_ocds(load("6.json"))[0]

    assert notice.notice_id == "ocds:AM-PPS-cd59b69d149e811de21d582805b28efa"
    assert notice.kind is NoticeKind.COMPETITION
    assert notice.cancelled is True
    assert notice.is_change is False
    assert notice.title == "հաշիվ ապրանքագիր"
    assert notice.buyer.name == "Constitutional Court RA"
    assert notice.buyer.national_id == "AM-TIN-00018357"
    assert notice.contract_nature is ContractNature.SUPPLIES
    assert notice.procedure == "direct"
    assert notice.cpv_main == "34330000"  # the CPV-AM additional code 34331300/1 is another vocabulary
    assert notice.cpv_additional == []
    assert notice.deadline == datetime(2016, 6, 23, 11, 0, tzinfo=YEREVAN)
    assert notice.lots == [
        Lot(
            lot_id="048b3562-4c80-4d60-8b16-211bf9eede84",
            title="ավտոմեքենաների պահեստամասեր",
            description="դիմապակու չոտկ, բենզանասոս պռագլադկով",
            cpv_main="34330000",
            estimated_value=Money(amount=Decimal(16000), currency="AMD"),
        )
    ]


def test_armenian_planning_release_reads_its_planned_tender() -> None:
    notice = parse_ocds(load("6.json"))[1]

    assert notice.notice_id == "ocds:AM-PPS-7dbf4fa867c8925ba60bb408e1a3fd3e"
    assert notice.kind is NoticeKind.PLANNING
    assert notice.title == "- Կոմունալ ծառայություններ"  # the budget's description
    assert notice.buyer.name == "Republic of Armenia Ministry of health"
    assert notice.cpv_main == "65111000"  # from planning.tender.items
    assert notice.estimated_value == Money(amount=Decimal(18900), currency="AMD")
    assert notice.procedure == "direct"
    assert notice.translations == {}  # description_ru repeats the Armenian text


def test_a_negative_budget_is_no_estimate() -> None:
    notices = {notice.source_id: notice for notice in parse_ocds(load("6.json"))}

    assert notices["AM-PPS-ffa778e9c339d27dd833cdf24bc03f07"].estimated_value is None


def test_multilingual_fields_become_translations() -> None:
    release = load("ocds-b5fd17-2c391a7a")
    release["tender"]["title_fr"] = "Collège du bien-être"
    release["tender"]["description_fr"] = "Services de santé"

    [notice] = parse_ocds(release)

    assert notice.title == "Wellbeing College"
    assert notice.translations == {"fr": NoticeText(title="Collège du bien-être", description="Services de santé")}


def test_record_package() -> None:
    package = {"records": [load("ocds-ngfbwp-19651579"), load("ocds-ngfbwp-19750186")]}

    notices = parse_ocds(package)

    assert is_ocds(package)
    assert [notice.notice_id for notice in notices] == ["ocds:ocds-ngfbwp-19651579", "ocds:ocds-ngfbwp-19750186"]


def test_delivery_addresses_become_places() -> None:
    release = load("ocds-b5fd17-2c391a7a")
    release["tender"]["items"][0]["deliveryAddress"] = {
        "locality": "Bath",
        "postalCode": "BA2 5RP",
        "region": "Somerset",
    }
    release["tender"]["items"][0]["deliveryLocation"] = {"description": "St Martins Hospital"}

    [notice] = parse_ocds(release)

    assert [place.model_dump(exclude_none=True) for place in notice.places] == [
        {"city": "Bath", "postal_code": "BA2 5RP", "description": "Somerset"},
        {"description": "St Martins Hospital"},
    ]


@pytest.mark.parametrize(
    "value",
    [
        {"schema_version": 1, "notice_id": "x", "buyer": {}},
        {"results": []},
        [],
        {"releases": [{"id": "1"}]},
        {"ocid": "ocds-1"},
    ],
)
def test_other_documents_are_not_ocds(value: Any) -> None:
    assert not is_ocds(value)


def test_a_release_without_buyer_rejects_the_package_naming_it() -> None:
    package = load("6.json")
    release = package["releases"][7]
    ocid = release["ocid"]
    del release["buyer"]
    release["parties"] = [party for party in release["parties"] if "buyer" not in party["roles"]]

    with pytest.raises(DocumentError) as caught:
        parse_ocds(package)

    assert caught.value.reason == "missing-field"
    assert caught.value.message.startswith(f"releases[7] (ocid {ocid}): the buyer is missing")


def test_a_release_without_any_title_is_rejected() -> None:
    release = load("ocds-a1234567-mt-479ed5")
    release["awards"][0]["items"][0]["description"] = "  "

    with pytest.raises(DocumentError) as caught:
        parse_ocds(release)

    assert caught.value.reason == "missing-field"
    assert "the release (ocid ocds-a1234567-mt-479ed54d04ef57f019dab7e6439d1f12871709a8): the title is missing" in str(
        caught.value
    )


def test_a_release_without_ocid_is_rejected() -> None:
    package = load("ocds-213czf-000-00001-02-tender")
    del package["releases"][0]["ocid"]
    package["releases"].insert(0, copy.deepcopy(load("ocds-213czf-000-00001-01-planning")["releases"][0]))

    with pytest.raises(DocumentError) as caught:
        parse_ocds(package)

    assert caught.value.reason == "missing-field"
    assert caught.value.message.startswith("releases[1]: the ocid is missing")


def test_an_unreadable_deadline_is_rejected() -> None:
    release = load("ocds-b5fd17-2c330cf9")
    release["tender"]["tenderPeriod"]["endDate"] = "27/02/2015"

    with pytest.raises(DocumentError) as caught:
        parse_ocds(release)

    assert caught.value.reason == "invalid-value"
    assert "tender.tenderPeriod.endDate '27/02/2015' is not an ISO 8601 date-time" in caught.value.message


def test_an_unreadable_amount_is_rejected() -> None:
    release = load("ocds-b5fd17-2c330cf9")
    release["tender"]["value"]["amount"] = "about 400k"

    with pytest.raises(DocumentError) as caught:
        parse_ocds(release)

    assert caught.value.reason == "invalid-value"
    assert "tender.value 'about 400k' 'GBP' is not an amount" in caught.value.message


def test_numbers_as_strings_and_dates_without_zone_are_read() -> None:
    release = load("ocds-b5fd17-2c330cf9")
    release["tender"]["value"]["amount"] = " 464500.50 "
    release["tender"]["tenderPeriod"]["endDate"] = "2015-02-27"
    release["date"] = "2014-12-17T16:44:56"
    release["tender"]["items"][0]["classification"]["id"] = 3000000  # a number that lost its leading zero

    [notice] = parse_ocds(release)

    assert notice.estimated_value == Money(amount=Decimal("464500.50"), currency="GBP")
    assert notice.deadline == datetime(2015, 2, 27, 23, 59, 59, tzinfo=UTC)
    assert notice.published_at == datetime(2014, 12, 17, 16, 44, 56, tzinfo=UTC)
    assert notice.cpv_main == "03000000"
