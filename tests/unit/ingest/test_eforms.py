import re
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from schemas.notice import Address, ContractNature, Money, Notice, NoticeKind, Place
from services.ingest.sources import DocumentError, parse_document

FIXTURES = Path(__file__).parents[2] / "fixtures" / "eforms"
ALL_NOTICES = sorted(FIXTURES.glob("*/*.xml"))
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
PLUS_ONE = timezone(timedelta(hours=1))
PLUS_TWO = timezone(timedelta(hours=2))


def read(name: str) -> bytes:
    return next(path for path in ALL_NOTICES if path.name == name).read_bytes()


def parse(name: str) -> Notice:
    [notice] = parse_document(read(name), filename=name)
    return notice


def test_the_fixture_set_is_complete() -> None:
    assert len(list((FIXTURES / "ted").glob("*.xml"))) == 9
    assert len(list((FIXTURES / "sdk-examples").glob("*.xml"))) == 28


@pytest.mark.parametrize("path", ALL_NOTICES, ids=lambda path: path.name)
def test_every_notice_parses_into_a_consistent_canonical_notice(path: Path) -> None:
    [notice] = parse_document(path.read_bytes())

    assert notice.source == "eforms"
    assert UUID.match(notice.source_id)
    assert notice.notice_id == f"eforms:{notice.source_id}"
    assert re.fullmatch(r"\d{2}", notice.version)
    assert re.fullmatch(r"[a-z]{2}", notice.language)
    assert notice.title == notice.title.strip() != ""
    assert notice.buyer.name
    assert all(re.fullmatch(r"\d{8}", code) for code in notice.all_cpv())
    assert notice.cpv_main is not None
    for moment in (notice.published_at, notice.deadline):
        assert moment is None or moment.utcoffset() is not None
    assert notice.published_at is not None
    assert all(lot.lot_id.startswith("LOT-") for lot in notice.lots)
    # A round trip through the wire format keeps everything.
    assert Notice.model_validate_json(notice.model_dump_json()) == notice


def test_french_call_for_tenders_from_ted() -> None:
    notice = parse("2024-OJS017-00047522.xml")

    assert notice.notice_id == "eforms:a638ab6b-7005-48a9-a9c7-b91bfc6142f1"
    assert notice.version == "01"
    assert notice.procedure_id == "240d1ad9-b2d8-45ec-bea9-d11e7a75b28e"
    assert notice.source_url == "https://ted.europa.eu/en/notice/-/detail/47522-2024"
    assert notice.kind is NoticeKind.COMPETITION
    assert notice.notice_type == "cn-standard"
    assert notice.is_change is False
    assert notice.language == "fr"
    assert notice.title == (
        "Prestations de collecte des colonnes de verre et de papier pour la Communauté de Communes du Piémont "
        "Cévenol et transport vers les centres de traitement"
    )
    assert notice.description == (
        "Le présent marché porte sur la collecte des colonnes de verre et de papier pour la Communauté de Communes "
        "du Piémont Cévenol et leurs transports vers les centres de traitement."
    )
    assert notice.buyer.name == "Communauté de Communes du Piémont Cévenol"
    assert notice.buyer.national_id == "20003441100013"
    assert notice.buyer.buyer_type == "body-pl-la"
    assert notice.buyer.main_activity == "gen-pub"
    assert notice.buyer.email == "y.cobut@piemont-cevenol.fr"
    assert notice.buyer.address == Address(
        street="13 bis, rue du Docteur Rocheblave - BP 11",
        city="Quissac",
        postal_code="30260",
        nuts="FRJ12",
        country="FRA",
    )
    assert notice.contract_nature is ContractNature.SERVICES
    assert notice.procedure == "open"
    assert notice.cpv_main == "90511100"
    assert notice.cpv_additional == ["90511400"]
    assert [(place.nuts, place.country) for place in notice.places] == [("FRJ12", "FRA")]
    assert notice.places[0].description is not None
    assert notice.places[0].description.startswith("Les groupements d'entreprises conjoints ou solidaires sont admis.")
    assert notice.estimated_value is None
    assert notice.published_at == datetime(2024, 1, 24, tzinfo=UTC)
    assert notice.deadline == datetime(2024, 2, 28, 12, 0, tzinfo=PLUS_TWO)
    assert notice.planned_date is None
    assert [(lot.lot_id, lot.title, lot.cpv_main) for lot in notice.lots] == [
        ("LOT-0001", "Collecte et transport des colonnes à verre", "90511100"),
        ("LOT-0002", "Collecte et transport des colonnes à papier", "90511400"),
    ]
    assert notice.lots[1].description == (
        "Le présent lot porte sur la collecte et le transport des colonnes à papier pour la Communauté de Communes "
        "du Piémont Cévenol."
    )
    assert notice.links == ["https://www.achatpublic.com"]
    assert notice.flags.reserved is False
    assert notice.flags.sme_suitable is None


def test_french_design_contest_from_ted() -> None:
    notice = parse("2024-OJS015-00041387.xml")

    assert notice.kind is NoticeKind.COMPETITION
    assert notice.notice_type == "cn-desg"
    assert notice.language == "fr"
    assert notice.title == (
        "Lycée André Guillaumin à Saint-Yrieix-la-Perche (87)- Concours de maîtrise d'oeuvre-Phase 1: candidatures"
    )
    assert notice.buyer.name == "Région Nouvelle-Aquitaine"
    assert notice.buyer.national_id == "20005375900011"
    assert notice.buyer.address is not None
    assert (notice.buyer.address.city, notice.buyer.address.nuts) == ("Bordeaux", None)
    assert notice.procedure == "restricted"
    assert notice.cpv_main == "71000000"
    assert notice.places == [Place(nuts="FRI23", postal_code="87500", city="Saint-Yrieix-la-Perche", country="FRA")]
    assert notice.deadline == datetime(2024, 3, 4, 12, 0, tzinfo=PLUS_TWO)
    assert notice.source_url == "https://ted.europa.eu/en/notice/-/detail/41387-2024"


def test_french_call_for_competition_by_prior_information_from_ted() -> None:
    notice = parse("2024-OJS074-00219998.xml")

    # Subtype 10 (pin-cfc-standard) opens the competition: it is a call for tenders, not a plan.
    assert notice.kind is NoticeKind.COMPETITION
    assert notice.notice_type == "pin-cfc-standard"
    assert notice.title == "Gestion et Exploitation de la déchetterie intercommunale de Trioncelle Baie-Mahault"
    assert notice.buyer.name == "Communauté d'agglomération CAP Excellence"
    assert notice.buyer.national_id == "20001865300051"
    assert notice.cpv_main == "90500000"
    # The only deadline is the one for expressions of interest.
    assert notice.deadline == datetime(2024, 5, 13, 12, 0, tzinfo=PLUS_TWO)
    assert notice.source_url == "https://ted.europa.eu/en/notice/-/detail/219998-2024"


def test_french_sdk_contract_notice() -> None:
    notice = parse("cn_81_FRA.xml")

    assert notice.kind is NoticeKind.COMPETITION
    assert notice.language == "fr"
    assert notice.title.startswith("Assistance à maîtrise d’œuvre en suivi de réalisat")
    assert notice.buyer.name.startswith("Commissariat à l'énergie atomi")
    assert notice.cpv_main == "71336000"
    assert notice.places[0].nuts == "FRL04"
    # Restricted procedure: the deadline is the one for requests to participate.
    assert notice.deadline == datetime(2020, 9, 14, 16, 0, tzinfo=PLUS_ONE)
    assert notice.source_url is None


@pytest.mark.parametrize(
    ("name", "kind", "notice_type"),
    [
        ("pin-buyer_24.xml", NoticeKind.PLANNING, "pin-buyer"),
        ("pin-only_24.xml", NoticeKind.PLANNING, "pin-only"),
        ("pin-rtl_24.xml", NoticeKind.PLANNING, "pin-rtl"),
        ("t01_PRT.xml", NoticeKind.PLANNING, "pin-tran"),
        ("pin-cfc_25.xml", NoticeKind.COMPETITION, "pin-cfc-standard"),
        ("qu-sy_25.xml", NoticeKind.COMPETITION, "qu-sy"),
        ("cn_24_open.xml", NoticeKind.COMPETITION, "cn-standard"),
        ("cn-social_24.xml", NoticeKind.COMPETITION, "cn-social"),
        ("can_24_FRA_comments.xml", NoticeKind.RESULT, "can-standard"),
        ("E4_minimal.xml", NoticeKind.RESULT, "can-standard"),
        ("t02_ESP.xml", NoticeKind.RESULT, "can-tran"),
        ("veat_23.xml", NoticeKind.RESULT, "veat"),
        ("can-modif_24_value.xml", NoticeKind.RESULT, "can-modif"),
    ],
)
def test_kind_follows_the_form_type_of_the_subtype(name: str, kind: NoticeKind, notice_type: str) -> None:
    notice = parse(name)
    assert (notice.kind, notice.notice_type) == (kind, notice_type)


def test_contract_modification_is_a_result_not_a_change_notice() -> None:
    notice = parse("can-modif_24_value.xml")
    assert notice.is_change is False
    assert notice.change_of is None


def test_change_notice_points_to_the_notice_it_changes() -> None:
    original = parse("cn_24_open.xml")
    change = parse("change-cn_24_open_dates.xml")

    assert change.is_change is True
    assert change.cancelled is False
    # A change notice is a notice of its own (own UUID, version 01); it names the changed notice and shares
    # the procedure identifier.
    assert change.notice_id == "eforms:71397268-6c47-4f2f-8ab0-f41a26138f81"
    assert change.version == "01"
    assert change.change_of == original.source_id == "c4c415ee-ac08-4465-8fa6-57568cf69462"
    assert change.procedure_id == original.procedure_id == "31f258b6-5eb2-4875-8997-affa3cdce27c"
    assert change.change_description == (
        "Time limit for receipt of tenders or requests to participate; Conditions for opening of tenders"
    )
    assert original.deadline == datetime(2020, 4, 3, 12, 0, tzinfo=PLUS_ONE)
    assert change.deadline == datetime(2020, 6, 12, 12, 0, tzinfo=PLUS_ONE)
    assert change.kind is NoticeKind.COMPETITION


def test_cancelling_change_notice() -> None:
    notice = parse("change-cn_24_void.xml")

    assert notice.is_change is True
    assert notice.cancelled is True
    assert notice.change_of == "f42be27e-09cf-4f0e-a745-63ec689631e6"
    assert notice.change_description == "We cancel because..."


def test_notice_id_is_stable_across_versions() -> None:
    notice = parse("2024-OJS065-00191534.xml")
    assert (notice.notice_id, notice.version) == ("eforms:f80d83c5-f453-474d-b11b-c62bec947312", "02")

    [resubmitted] = parse_document(
        read("2024-OJS065-00191534.xml").replace(b"<cbc:VersionID>02<", b"<cbc:VersionID>03<")
    )
    assert (resubmitted.notice_id, resubmitted.version) == (notice.notice_id, "03")


def test_multilingual_texts_follow_the_notice_language() -> None:
    notice = parse("2024-OJS065-00191534.xml")

    # Dutch comes first in the document, but the notice language is French.
    assert notice.language == "fr"
    assert notice.title == (
        "PROCEDURE OUVERTE POUR LE NETTOYAGE DES MAISONS FITT SOUS GESTION DE L’OFFICE DES ETRANGERS POUR LE "
        "COMPTE DU SPF INTERIEUR"
    )
    assert notice.description is not None
    assert notice.description.startswith("Le présent marché porte à nettoyer, sur demande,")
    assert notice.buyer.name == "SPF Intérieur"
    assert notice.lots[0].title == "2023/DVZOE/CLEANING/FITT/PO - 1"
    assert notice.lots[0].description == "Maisons FITT à Olsene (Zulte)"
    assert [(lot.lot_id, [place.nuts for place in lot.places]) for lot in notice.lots] == [
        ("LOT-0001", ["BE234"]),
        ("LOT-0002", ["BE236"]),
        ("LOT-0003", ["BE257"]),
        ("LOT-0004", ["BE310"]),
        ("LOT-0005", ["BE310"]),
    ]
    assert notice.all_places()[0] == Place(nuts="BE234", country="BEL")


def test_notice_in_all_eu_languages() -> None:
    italian = parse("2023-OJS167-00524889.xml")
    assert italian.language == "it"
    assert italian.title.startswith("Contratti quadro per servizi di formazione in materia di salute e sicurezza")
    assert italian.buyer.name == "Commissione europea, Centro comune di ricerca (JRC)"

    english = parse("cn_24_multilingual.xml")
    assert english.language == "en"
    assert (
        english.title == "Provision of IT Services Related to OP IT Systems (EUR-Lex, N-Lex, Search Layer, and Others)"
    )
    assert english.buyer.name == "Publications Office of the European Union"
    assert english.estimated_value == Money(amount=Decimal("4500000"), currency="EUR")


def test_text_missing_in_the_notice_language_falls_back_to_the_first() -> None:
    document = read("2024-OJS065-00191534.xml").replace(
        b'<cbc:NoticeLanguageCode listName="language">FRA<', b'<cbc:NoticeLanguageCode listName="language">SWE<'
    )
    [notice] = parse_document(document)
    assert notice.language == "nl"
    assert notice.title.startswith("OPENBARE PROCEDURE VOOR HET SCHOONMAKEN VAN DE FITT-WONINGEN")
    # The rest of the notice follows the language of the title that was chosen.
    assert notice.description is not None
    assert notice.description.startswith("De onderhavige opdracht betreft")
    assert notice.buyer.name == "FOD Binnenlandse Zaken"


@pytest.mark.parametrize(
    ("name", "language"),
    [("t01_PRT.xml", "pt"), ("t02_ESP.xml", "es"), ("veat_23.xml", "de"), ("2024-OJS044-00128154.xml", "pl")],
)
def test_language_is_iso_639_1(name: str, language: str) -> None:
    assert parse(name).language == language


def test_prior_information_notice_planned_date_and_flags() -> None:
    french = parse("pin-only_81_FRA.xml")
    assert french.kind is NoticeKind.PLANNING
    assert french.planned_date == date(2021, 5, 7)
    assert french.deadline is None
    assert french.contract_nature is ContractNature.SUPPLIES
    assert french.places == [Place(country="FRA")]
    assert french.links == ["http://www.ixarm.com/fr/node/861985/"]

    english = parse("pin-only_24.xml")
    assert english.planned_date == date(2020, 12, 31)
    assert english.flags.sme_suitable is True
    assert english.estimated_value == Money(amount=Decimal("100000"), currency="EUR")


def test_strategic_procurement_flags() -> None:
    flags = parse("pin-rtl_24.xml").flags
    assert (flags.reserved, flags.social_criteria, flags.environmental_criteria) == (False, True, True)

    reserved = parse("pin-cfc-social_24.xml").flags
    assert reserved.reserved is True


def test_estimated_value_keeps_its_decimals() -> None:
    assert parse("cn_24_open_accel.xml").estimated_value == Money(amount=Decimal("291934.60"), currency="EUR")


def test_missing_title_is_reported_with_its_xpath() -> None:
    document = read("2024-OJS017-00047522.xml").replace(
        b'<cbc:Name languageID="FRA">Prestations de collecte', b'<cbc:Note languageID="FRA">Prestations de collecte', 1
    )
    document = document.replace(b"traitement</cbc:Name>", b"traitement</cbc:Note>", 1)
    with pytest.raises(DocumentError) as caught:
        parse_document(document)
    assert caught.value.reason == "missing-field"
    assert "title (BT-21)" in caught.value.message
    assert "/ContractNotice/cac:ProcurementProject/cbc:Name" in caught.value.message


def test_missing_notice_identifier_is_reported() -> None:
    document = read("cn_24_open.xml").replace(b'schemeName="notice-id"', b'schemeName="other"')
    with pytest.raises(DocumentError) as caught:
        parse_document(document)
    assert caught.value.reason == "missing-field"
    assert "notice identifier (BT-701)" in caught.value.message
    assert "cbc:ID[@schemeName='notice-id' or @schemeName='notice']" in caught.value.message


def test_missing_buyer_name_is_reported() -> None:
    document = read("2024-OJS017-00047522.xml").replace(
        b'<cbc:Name languageID="FRA">Communaut\xc3\xa9 de Communes du Pi\xc3\xa9mont C\xc3\xa9venol</cbc:Name>', b""
    )
    with pytest.raises(DocumentError) as caught:
        parse_document(document)
    assert caught.value.reason == "missing-field"
    assert "buyer name (BT-500)" in caught.value.message
    assert "[cac:PartyIdentification/cbc:ID = 'ORG-0001']/cac:PartyName/cbc:Name" in caught.value.message


def test_invalid_date_is_reported() -> None:
    document = read("cn_24_open.xml").replace(b"<cbc:EndDate>2020-04-03+01:00<", b"<cbc:EndDate>03/04/2020<")
    with pytest.raises(DocumentError) as caught:
        parse_document(document)
    assert caught.value.reason == "invalid-value"
    assert "EndDate '03/04/2020'" in caught.value.message


def test_business_registration_notice_is_not_a_procurement_notice() -> None:
    document = read("cn_24_open.xml").replace(
        b'<cbc:SubTypeCode listName="notice-subtype">16<', b'<cbc:SubTypeCode listName="notice-subtype">X01<'
    )
    with pytest.raises(DocumentError) as caught:
        parse_document(document)
    assert caught.value.reason == "unsupported-notice"
    assert "form type 'bri'" in caught.value.message
