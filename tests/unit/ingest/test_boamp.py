"""BOAMP parsers, on the real notices of tests/fixtures/boamp (see PROVENANCE.md there)."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from schemas.notice import ContractNature, Money, Notice, NoticeKind, Place
from services.ingest.sources._errors import DocumentError
from services.ingest.sources._xml import parse_xml
from services.ingest.sources.boamp import (
    is_boamp_record,
    is_boamp_xml,
    normalise_department,
    parse_boamp_record,
    parse_boamp_xml,
)

FIXTURES = Path(__file__).parents[2] / "fixtures" / "boamp"
PARIS = ZoneInfo("Europe/Paris")

# file -> (IDWEB, kind, BOAMP type, publication department as normalised)
XML_NOTICES = {
    "test-pub.xml": ("16-186394", NoticeKind.COMPETITION, "JOUE/APPEL_OFFRE/STANDARD", "75"),
    "test-pub-2.xml": ("16-181902", NoticeKind.COMPETITION, "JOUE/APPEL_OFFRE/STANDARD", "13"),
    "test-pub-3.xml": ("16-186063", NoticeKind.COMPETITION, "JOUE/APPEL_OFFRE/CONCOURS", "77"),
    "test-pub-4.xml": ("16-186173", NoticeKind.COMPETITION, "JOUE/APPEL_OFFRE/CONCESSION", "27"),
    "test-pub-5.xml": ("16-186359", NoticeKind.COMPETITION, "JOUE/APPEL_OFFRE/STANDARD", "75"),
    "test-pub-7.xml": ("17-22464", NoticeKind.COMPETITION, "DSP/APPEL_OFFRE/CONCESSION", "11"),
    "test-pub-8.xml": ("17-40964", NoticeKind.COMPETITION, "DSP/APPEL_OFFRE/CONCESSION", "33"),
    "test-pub-9.xml": ("16-652", NoticeKind.COMPETITION, "FNS/APPEL_OFFRE", "42"),
    "test-attribution-2.xml": ("16-138580", NoticeKind.RESULT, "MAPA/ATTRIBUTION", "17"),
    "test-attribution-3.xml": ("16-178891", NoticeKind.RESULT, "MAPA/ATTRIBUTION", "91"),
    "test-attribution-4.xml": ("16-183123", NoticeKind.RESULT, "MAPA/ATTRIBUTION", "10"),
    "test-attribution-5.xml": ("17-1028", NoticeKind.RESULT, "MAPA/ATTRIBUTION", "33"),
    "test-attribution-6.xml": ("17-1515", NoticeKind.RESULT, "FNS/ATTRIBUTION", "05"),
    "test-attribution-7.xml": ("17-29167", NoticeKind.RESULT, "FNS/ATTRIBUTION", "92"),
    "test-attribution-8.xml": ("17-4742", NoticeKind.RESULT, "FNS/ATTRIBUTION", "42"),
    "test-attribution-9.xml": ("17-5219", NoticeKind.RESULT, "FNS/ATTRIBUTION", "05"),
    "test-attribution-10.xml": ("16-185754", NoticeKind.RESULT, "FNS/ATTRIBUTION", "76"),
    "test-attribution-11.xml": ("17-8864", NoticeKind.RESULT, "FNS/ATTRIBUTION", "84"),
    "test-attribution-12.xml": ("17-2599", NoticeKind.RESULT, "JOUE/ATTRIBUTION/STANDARD", "83"),
}


def xml_notice(name: str, replace: tuple[str, str] | None = None) -> Notice:
    data = (FIXTURES / "xml-v230" / name).read_bytes()
    if replace is not None:
        data = data.replace(replace[0].encode(), replace[1].encode())
    root = parse_xml(data)
    assert is_boamp_xml(root)
    [notice] = parse_boamp_xml(root)
    return notice


def record(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def test_every_xml_fixture_is_covered() -> None:
    assert sorted(path.name for path in (FIXTURES / "xml-v230").glob("*.xml")) == sorted(XML_NOTICES)


@pytest.mark.parametrize("name", sorted(XML_NOTICES))
def test_every_real_xml_notice_parses(name: str) -> None:
    idweb, kind, notice_type, department = XML_NOTICES[name]
    notice = xml_notice(name)
    assert notice.notice_id == f"boamp:{idweb}"
    assert notice.source == "boamp"
    assert notice.source_id == idweb
    assert notice.version == ""
    assert notice.kind == kind
    assert notice.notice_type == notice_type
    assert notice.language == "fr"
    assert notice.is_change is False
    assert notice.links[0] == f"https://www.boamp.fr/avis/detail/{idweb}"
    assert notice.published_at is not None and notice.published_at.tzinfo is not None
    assert notice.title and notice.buyer.name
    assert notice.descriptors and all(":" in descriptor for descriptor in notice.descriptors)
    departments = [place.department for place in notice.places if place.department]
    assert department in departments or (name in {"test-pub-9.xml", "test-attribution-10.xml"} and departments)


def test_joue_call_for_tender_with_lots() -> None:
    notice = xml_notice("test-pub.xml")
    assert notice.title == "2016 DFA 167 - Prestations de remorquage pour les véhicules de la ville de Paris"
    assert notice.description == (
        "Accords-cadres à bons de commande relatifs à des prestations de remorquage pour les véhicules de la ville "
        "de Paris, en deux lots séparés."
    )
    assert notice.buyer.name == "Ville de Paris"
    assert notice.buyer.buyer_type == "ra"
    assert notice.buyer.main_activity == "gen-pub"
    assert notice.buyer.address is not None
    assert notice.buyer.address.postal_code == "75639"
    assert notice.buyer.address.city == "Paris cedex 13"
    assert notice.buyer.address.nuts == "FR101"
    assert notice.buyer.email == "dfa-bm3@paris.fr"
    assert notice.contract_nature == ContractNature.SERVICES
    assert notice.procedure == "open"
    assert notice.cpv_main == "50118110"
    assert notice.published_at == datetime(2017, 1, 1, tzinfo=PARIS)
    assert notice.deadline == datetime.fromisoformat("2017-02-07T12:00:00+01:00")
    assert notice.descriptors == ["274:Prestations de services"]
    assert notice.places == [Place(department="75", country="FR")]
    assert notice.flags.environmental_criteria is True
    assert [(lot.lot_id, lot.cpv_main) for lot in notice.lots] == [("1", "50118110"), ("2", "50118110")]
    assert notice.lots[1].title == "Prestations de remorquage pour les poids lourds de la ville de Paris"
    assert notice.lots[0].places == [Place(nuts="FR10", description="Paris ou proche banlieue")]
    assert notice.links == ["https://www.boamp.fr/avis/detail/16-186394", "https://marches.maximilien.fr"]


def test_fns_call_with_place_of_performance_and_department_of_performance() -> None:
    notice = xml_notice("test-pub-9.xml")
    assert notice.procedure == "oth-single"
    assert notice.cpv_main == "79625000"
    assert notice.deadline == datetime.fromisoformat("2016-01-25T16:00:00+01:00")
    assert notice.places == [
        Place(nuts="FR715", postal_code="42055", city="Saint etienne cédex 2", description="Chu de St-Etienne"),
        Place(department="42", country="FR"),
    ]
    assert notice.buyer.main_activity == "health"


def test_dsp_concession_value() -> None:
    notice = xml_notice("test-pub-7.xml")
    assert notice.estimated_value == Money(amount=Decimal("3113000"), currency="EUR")
    assert notice.cpv_main == "09000000"
    assert [lot.estimated_value for lot in notice.lots] == [Money(amount=Decimal("3113000"), currency="EUR")]


def test_mapa_award_refers_to_its_call() -> None:
    notice = xml_notice("test-attribution-2.xml")
    assert notice.kind == NoticeKind.RESULT
    assert notice.procedure_id == "16-119846"
    assert notice.is_change is False
    assert notice.estimated_value == Money(amount=Decimal("38820"), currency="EUR")
    assert notice.buyer.name == "Communauté d'Agglomération de Saintes"
    assert notice.buyer.buyer_type == "body-pl"
    assert notice.deadline is None


def test_joue_award_national_id() -> None:
    notice = xml_notice("test-attribution-12.xml")
    assert notice.buyer.national_id == "26830066200015"
    assert notice.contract_nature == ContractNature.SUPPLIES
    assert notice.cpv_main == "15890000"


def test_single_digit_department_is_padded() -> None:
    notice = xml_notice("test-attribution-6.xml")
    assert Place(department="05", country="FR") in notice.places


def test_correction_becomes_a_version_of_the_corrected_notice() -> None:
    # The real award, with its nature turned into a correction: ANNONCE_ANTERIEUR names call 16-119846.
    notice = xml_notice(
        "test-attribution-2.xml",
        ("<NATURE>\n          <ATTRIBUTION/>\n        </NATURE>", "<NATURE><RECTIFICATIF/></NATURE>"),
    )
    assert notice.notice_id == "boamp:16-119846"
    assert notice.source_id == "16-138580"
    assert notice.is_change is True
    assert notice.change_of == "16-119846"
    assert notice.kind == NoticeKind.COMPETITION  # the kind of the corrected call
    assert notice.notice_type == "MAPA/RECTIFICATIF"


def test_cancellation_status() -> None:
    notice = xml_notice("test-pub-9.xml", ("<INITIAL/>", "<ANNULATION/>"))
    assert notice.is_change is True
    assert notice.cancelled is True
    assert notice.notice_id == "boamp:16-652"  # the original is not named: its own identity


def test_unknown_nature_is_unsupported() -> None:
    with pytest.raises(DocumentError) as error:
        xml_notice("test-pub-9.xml", ("<APPEL_OFFRE/>", "<AUTRE/>"))
    assert error.value.reason == "unsupported-notice"
    assert "16-652" in error.value.message


def test_missing_idweb() -> None:
    with pytest.raises(DocumentError) as error:
        xml_notice("test-pub-9.xml", ("<IDWEB>16-652</IDWEB>", ""))
    assert error.value.reason == "missing-field"
    assert "IDWEB" in error.value.message


def test_eforms_and_other_xml_are_not_boamp() -> None:
    root = parse_xml((FIXTURES.parent / "eforms" / "ted" / "2024-OJS074-00219998.xml").read_bytes())
    assert is_boamp_xml(root) is False


# --- JSON records ---


def test_dila_api_record() -> None:
    value = record("json-dila-api-v1/20-152081.json")
    assert is_boamp_record(value)
    [notice] = parse_boamp_record(value)
    assert notice.notice_id == "boamp:20-152081"
    assert notice.kind == NoticeKind.COMPETITION
    assert notice.title.startswith("Services de spectacles musicaux, de théâtre, de cirque et assimilés")
    assert notice.buyer.name == "Commune de Berre l'Etang"
    assert notice.buyer.buyer_type == "la"
    assert notice.buyer.address is not None and notice.buyer.address.postal_code == "13130"
    assert notice.contract_nature == ContractNature.SERVICES
    assert notice.procedure == "oth-single"
    assert notice.published_at == datetime(2020, 12, 14, tzinfo=PARIS)
    assert notice.deadline == datetime.fromisoformat("2021-03-01T12:00:00+01:00")
    assert notice.descriptors == ["274:Prestations de services", "472:Spectacle"]
    assert Place(department="13", country="FR") in notice.places
    assert Place(description="berre l'étang") in notice.places
    assert notice.cpv_main is None


def test_opendatasoft_mapa_record() -> None:
    value = record("opendatasoft/record-mapa-16-138580.json")
    assert isinstance(value["donnees"], str)
    assert is_boamp_record(value)
    [notice] = parse_boamp_record(value)
    assert notice.notice_id == "boamp:16-138580"
    assert notice.kind == NoticeKind.RESULT
    assert notice.notice_type == "MAPA/ATTRIBUTION"
    assert notice.title == (
        "etude prospective à la fois technique, financière et sociale d'optimisation du service politique des déchets"
    )
    assert notice.buyer.name == "Communauté d'Agglomération de Saintes"
    assert notice.buyer.address is not None and notice.buyer.address.postal_code == "17100"
    assert notice.procedure == "oth-single"
    assert notice.estimated_value == Money(amount=Decimal("38820"), currency="EUR")
    assert notice.descriptors == ["118:Etude"]
    assert notice.procedure_id == "16-138580"  # annonce_lie names no nature: not taken as the call
    assert notice.is_change is False  # an award linked to its call is not a correction


def test_opendatasoft_fnsimple_record_matches_the_xml_notice() -> None:
    [from_record] = parse_boamp_record(record("opendatasoft/record-fnsimple-16-652.json"))
    from_xml = xml_notice("test-pub-9.xml")
    assert from_record.title == "prestation d'interim médical en anesthesie-réanimation, CHU, à Saint-Etienne"
    for field in ("notice_id", "kind", "buyer", "cpv_main", "deadline", "published_at", "places", "descriptors"):
        assert getattr(from_record, field) == getattr(from_xml, field), field


def test_opendatasoft_correction_record() -> None:
    value = record("opendatasoft/record-rectificatif-16-4711.json")
    assert isinstance(value["donnees"], dict)
    [notice] = parse_boamp_record(value)
    assert notice.notice_id == "boamp:16-652"
    assert notice.source_id == "16-4711"
    assert notice.is_change is True
    assert notice.change_of == "16-652"
    assert notice.kind == NoticeKind.COMPETITION
    assert notice.deadline == datetime.fromisoformat("2016-02-01T16:00:00+01:00")
    assert notice.descriptors == ["274:Prestations de services"]
    assert notice.source_url == "https://www.boamp.fr/avis/detail/16-4711"


def test_opendatasoft_export_with_an_eforms_record() -> None:
    value = record("opendatasoft/export-eforms-24-31337-and-fnsimple.json")
    assert is_boamp_record(value)
    eforms, fnsimple = parse_boamp_record(value)
    assert fnsimple.notice_id == "boamp:16-652"
    assert eforms.notice_id == "boamp:24-31337"
    assert eforms.source == "boamp"
    assert eforms.version == ""
    assert eforms.title == "Gestion et Exploitation de la déchetterie intercommunale de Trioncelle Baie-Mahault"
    assert eforms.buyer.name == "Communauté d'agglomération CAP Excellence"
    assert eforms.buyer.national_id == "20001865300051"
    assert eforms.cpv_main == "90500000"
    assert eforms.published_at == datetime(2024, 4, 15, tzinfo=PARIS)
    assert eforms.deadline == datetime.fromisoformat("2024-05-13T12:00:00+02:00")
    assert eforms.descriptors == ["274:Prestations de services"]
    assert Place(department="75", country="FR") in eforms.places
    assert eforms.links[0] == "https://www.boamp.fr/avis/detail/24-31337"


def test_donnees_that_is_not_json() -> None:
    value = record("opendatasoft/record-mapa-16-138580.json")
    value["donnees"] = value["donnees"][:-1]
    with pytest.raises(DocumentError) as error:
        parse_boamp_record(value)
    assert error.value.reason == "malformed-json"
    assert "16-138580" in error.value.message


def test_not_a_record() -> None:
    assert is_boamp_record({"schema_version": 1, "notice_id": "x"}) is False
    with pytest.raises(DocumentError) as error:
        parse_boamp_record({"idweb": "16-652"})
    assert error.value.reason == "unknown-format"


def test_empty_export() -> None:
    assert parse_boamp_record({"total_count": 0, "results": []}) == []


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("5", "05"), (5, "05"), ("05", "05"), ("75", "75"), ("2a", "2A"), ("2B", "2B"), ("971", "971"), ("976", "976")],
)
def test_normalise_department(raw: str | int, expected: str) -> None:
    assert normalise_department(raw) == expected


@pytest.mark.parametrize("raw", [None, "", "0", "96", "977", "20", "2C", "FR"])
def test_normalise_department_rejects(raw: str | None) -> None:
    assert normalise_department(raw) is None


def test_a_record_whose_donnees_has_no_form_root_is_read_from_its_sections() -> None:
    # The poller fixtures: Opendatasoft-shaped records whose `donnees` holds the DONNEES sections directly.
    records = json.loads((FIXTURES.parent / "pollers" / "boamp" / "records.json").read_text(encoding="utf-8"))
    notices = [notice for record in records for notice in parse_boamp_record(record)]
    assert [n.notice_id for n in notices] == [
        "boamp:16-652",
        "boamp:16-181902",
        "boamp:16-186394",
        "boamp:17-1028",
        "boamp:16-138580",
    ]
    assert notices[0].title.startswith("DAMR 2016/01 PRESTATION D'INTERIM MEDICAL")
