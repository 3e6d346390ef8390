import re
from dataclasses import dataclass
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
PLUS_THREE = timezone(timedelta(hours=3))


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
    if notice.is_change:
        # A change notice is a version of the notice it changes (BT-758 without its "-NN" version suffix).
        assert notice.change_of is not None
        assert notice.notice_id == "eforms:" + notice.change_of.rsplit("-", 1)[0]
        assert notice.version == f"{notice.source_id}-01"
    else:
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
    assert all(re.fullmatch(r"(LOT|PAR)-\d{4}", lot.lot_id) for lot in notice.lots)
    assert notice.language not in notice.translations
    # A round trip through the wire format keeps everything.
    assert Notice.model_validate_json(notice.model_dump_json()) == notice


@dataclass(frozen=True)
class Expected:
    """What one fixture must yield, read off the XML by hand (not from the parser's output)."""

    kind: NoticeKind
    notice_type: str
    language: str
    title_start: str
    buyer_name: str
    buyer_national_id: str | None
    buyer_country: str | None
    buyer_nuts: str | None
    buyer_town: str | None
    buyer_postcode: str | None
    buyer_legal_type: str | None
    contract_nature: ContractNature
    procedure: str | None
    cpv_main: str
    lot_count: int
    first_place_nuts: str | None
    estimated_value: Money | None
    deadline: datetime | None
    planned_date: date | None
    is_change: bool
    cancelled: bool
    sme_suitable: bool | None
    reserved: bool


P, C, R = NoticeKind.PLANNING, NoticeKind.COMPETITION, NoticeKind.RESULT
WORKS, SUPPLIES, SERVICES = ContractNature.WORKS, ContractNature.SUPPLIES, ContractNature.SERVICES


def eur(amount: str) -> Money:
    return Money(amount=Decimal(amount), currency="EUR")


# fmt: off
EXPECTED = {
    # --- real TED notices ---
    "2023-OJS167-00524889.xml": Expected(
        R, "can-standard", "fr", "Marchés de services cadres relatifs à la dispense de formations",
        "Centre commun de recherche", "JRC", "ITA", "ITC41", "Ispra (VA)", "21027", "eu-ins-bod-ag",
        SERVICES, "open", "80500000", 1, None, eur("439000"), None, None, False, False, None, False),
    "2024-OJS015-00041387.xml": Expected(
        C, "cn-desg", "fr", "Lycée André Guillaumin à Saint-Yrieix-la-Perche (87)",
        "Région Nouvelle-Aquitaine", "20005375900011", "FRA", None, "Bordeaux", "33000", "ra",
        SERVICES, "restricted", "71000000", 1, "FRI23", None, datetime(2024, 3, 4, 12, tzinfo=PLUS_TWO), None,
        False, False, None, False),
    "2024-OJS017-00047522.xml": Expected(
        C, "cn-standard", "fr", "Prestations de collecte des colonnes de verre et de papier",
        "Communauté de Communes du Piémont Cévenol", "20003441100013", "FRA", "FRJ12", "Quissac", "30260",
        "body-pl-la", SERVICES, "open", "90511100", 2, "FRJ12", None, datetime(2024, 2, 28, 12, tzinfo=PLUS_TWO),
        None, False, False, None, False),
    "2024-OJS044-00127505.xml": Expected(
        C, "pin-cfc-standard", "nl", "20383042 Werving en selectie IT personeel",
        "Ministerie van Defensie", "27370985", "NLD", None, "'s-Gravenhage", "2511CR", "cga",
        SERVICES, "oth-mult", "79610000", 1, None, eur("1000000"), datetime(2025, 1, 31, 11, tzinfo=UTC), None,
        False, False, None, False),
    "2024-OJS044-00128154.xml": Expected(
        C, "cn-standard", "pl", "Najem długoterminowy samochodów służbowych",
        '"Koleje Mazowieckie - KM" Sp. z o.o.', "1132520369", "POL", "PL912", "Warszawa", "03-802", None,
        SUPPLIES, "open", "34110000", 7, "PL912", None, datetime(2024, 3, 18, 11, 30, tzinfo=PLUS_ONE), None,
        False, False, None, False),
    "2024-OJS044-00129266.xml": Expected(
        C, "cn-desg", "fr", "Mission de maîtrise d'oeuvre relative à la construction d'un ESAT",
        "EPDAHAA", "20004716500010", "FRA", "FRE12", "Arras Cedex", "62031", "body-pl",
        SERVICES, "restricted", "71200000", 1, "FRE12", None, datetime(2024, 4, 18, 12, tzinfo=PLUS_TWO), None,
        False, False, None, False),
    "2024-OJS065-00191534.xml": Expected(
        R, "can-standard", "fr", "PROCEDURE OUVERTE POUR LE NETTOYAGE DES MAISONS FITT",
        "SPF Intérieur", "0308356862_4661", "BEL", "BE100", "Bruxelles", "1000", "cga",
        SERVICES, "open", "90911000", 5, "BE234", None, None, None, False, False, None, False),
    "2024-OJS074-00219998.xml": Expected(
        C, "pin-cfc-standard", "fr", "Gestion et Exploitation de la déchetterie intercommunale",
        "Communauté d'agglomération CAP Excellence", "20001865300051", "FRA", None, "Pointe-à-pitre", "97110",
        "body-pl", SERVICES, "open", "90500000", 1, None, None, datetime(2024, 5, 13, 12, tzinfo=PLUS_TWO), None,
        False, False, None, False),
    "2024-OJS197-00607986.xml": Expected(
        R, "can-standard", "fr", "Bruxelles-Régie des Bâtiments-Nettoyage par une firme externe",
        "Régie des Bâtiments", "0208312646_5511", "BEL", "BE100", "Saint-Gilles", "1060", "cga",
        SERVICES, "open", "90911200", 1, "BE100", None, None, None, False, False, None, False),
    # --- eForms SDK 1.15.1 examples ---
    "E4_minimal.xml": Expected(
        R, "can-standard", "fr", "Service d'entretien de remise en état et de nettoyage des espaces vert",
        "Rouen Habitat", None, "FRA", None, None, None, None,
        SERVICES, None, "77310000", 1, "FRD22", None, None, None, False, False, None, False),
    "can-desg_24.xml": Expected(
        R, "can-desg", "en", "Peeping Tom vol3",
        "ZenithNova Innovations", "ABE", "GRC", "EL303", "New Horizons, CA", "90210", "org-sub-la",
        WORKS, "open", "45000000", 4, None, None, None, None, False, False, None, False),
    "can-modif_24_value.xml": Expected(
        R, "can-modif", "en", "Change Partner",
        "London South Bank University", "123 456 789", "GBR", None, "London", "SE1 0AA", None,
        SERVICES, None, "79410000", 1, None, None, None, None, False, False, None, False),
    "can-social_24.xml": Expected(
        R, "can-social", "en", "March of the Penguins vol3",
        "ZenithNova Innovations Ltd.", "ABE", "GRC", "EL303", "New Horizons, CA", "117 43", "cga",
        SERVICES, None, "75121000", 3, None, None, None, None, False, False, None, False),
    "can_24_FRA_comments.xml": Expected(
        R, "can-standard", "fr", "Service d'entretien de remise en état",
        "Rouen Habitat", "123 456 789", "FRA", "FRD22", "Rouen Cedex 1", "76001", "pub-undert-la",
        SERVICES, "open", "77310000", 2, "FRD22", None, None, None, False, False, None, False),
    "can_25_ITA.xml": Expected(
        R, "can-standard", "it", "Servizio di prove funzionali finalizzate all’attivazione",
        "Rete Ferroviaria italiana", "123 456 789", "ITA", "ITI43", "Roma", "00159", "pub-undert-cga",
        SERVICES, "neg-wo-call", "60210000", 1, "ITZZZ", None, None, None, False, False, None, False),
    "can_81_FRA.xml": Expected(
        R, "can-standard", "fr", "Assistance à maîtrise d’œuvre en suivi de réalisation",
        "Commissariat à l'énergie atomique et aux énergies alternatives", None, "FRA", "FR104", "Arpajon Cedex",
        "91297", "body-pl", SERVICES, "restricted", "71336000", 1, "FRL04", None, None, None,
        False, False, None, False),
    "change-cn_24_open_dates.xml": Expected(
        C, "cn-standard", "en", "Term Contract for a Planned Programme of In-service Inspection",
        "Renfrewshire Council", "not available", "GBR", None, "Paisley", "PA1 1JB", "la",
        SERVICES, "open", "71630000", 1, None, eur("500000"), datetime(2020, 6, 12, 12, tzinfo=PLUS_ONE), None,
        True, False, None, False),
    "change-cn_24_void.xml": Expected(
        C, "cn-standard", "en", "Provision of IT Services Related to OP IT Systems",
        "Publications Office of the European Union", "EU-PO", "LUX", "LU000", "Luxembourg", "2985", "eu-ins-bod-ag",
        SERVICES, "open", "72230000", 1, "FRD22", None, datetime(2020, 2, 4, 10, tzinfo=PLUS_TWO), None,
        True, True, None, False),
    "cn-desg_24.xml": Expected(
        C, "cn-desg", "fr", "Concours restreint de maîtrise d'œuvre en vue de la construction",
        "Communauté de Communes de la Vallée de la Doller et du Soultzbach", "24680067600016", "FRA", "FRF12",
        "Masevaux-Niederbruck", "68290", "la", SERVICES, "restricted", "71000000", 1, "FRF12", None,
        datetime(2020, 6, 5, 12, tzinfo=PLUS_ONE), None, False, False, None, False),
    "cn-social_24.xml": Expected(
        C, "cn-social", "en", "Secure Care Services",
        "Scotland Excel", "n/a", "GBR", None, "Paisley", "PA1 1AR", "pub-undert-ra",
        SERVICES, "oth-single", "85311300", 1, None, None, datetime(2020, 1, 6, 12, tzinfo=PLUS_ONE), None,
        False, False, None, False),
    "cn_23.xml": Expected(
        C, "cn-standard", "fr", "Concession de service public pour la gestion des équipements d'accueil",
        "Communauté de communes Loches sud Touraine", "20007158700014", "FRA", "FRB04", "Loches", "37600", "body-pl",
        SERVICES, None, "85312110", 1, "FRB04", None, None, None, False, False, None, False),
    "cn_24_FRA_comments.xml": Expected(
        C, "cn-standard", "fr", "Service d'entretien de remise en état",
        "Rouen Habitat", "123 456 789", "FRA", "FRD22", "Rouen Cedex 1", "76001", "pub-undert-la",
        SERVICES, "open", "77310000", 2, "FRD22", None, datetime(2019, 6, 24, 16, tzinfo=UTC), None,
        False, False, None, False),
    "cn_24_multilingual.xml": Expected(
        C, "cn-standard", "fr", "Fourniture de services informatiques liés aux systèmes informatiques OP",
        "Office des publications de l'Union européenne", "EU-PO", "LUX", "LU000", "Luxembourg", "L-2985",
        "eu-ins-bod-ag", SERVICES, "open", "72230000", 1, "LU000", eur("4500000"),
        datetime(2020, 2, 3, 13, tzinfo=UTC), None, False, False, None, False),
    "cn_24_open.xml": Expected(
        C, "cn-standard", "en", "Term Contract for a Planned Programme of In-service Inspection",
        "Renfrewshire Council", "not available", "GBR", None, "Paisley", "PA1 1JB", "la",
        SERVICES, "open", "71630000", 1, None, eur("500000"), datetime(2020, 4, 3, 12, tzinfo=PLUS_ONE), None,
        False, False, None, False),
    "cn_24_open_accel.xml": Expected(
        C, "cn-standard", "it", "Procedura aperta accelerata per la fornitura di n. 212 posti letto",
        "Comando generale dell'Arma dei carabinieri", "123 456 789", "ITA", "ITI43", "Roma", "00197", "cga",
        SUPPLIES, "open", "39143100", 1, "ITI14", eur("291934.60"), datetime(2020, 5, 18, 18, tzinfo=PLUS_ONE),
        None, False, False, None, False),
    "cn_81_FRA.xml": Expected(
        C, "cn-standard", "fr", "Assistance à maîtrise d’œuvre en suivi de réalisation",
        "Commissariat à l'énergie atomique et aux énergies alternatives", None, "FRA", "FR102", "Arpajon Cedex",
        "91297", "body-pl", SERVICES, "restricted", "71336000", 1, "FRL04", None,
        datetime(2020, 9, 14, 16, tzinfo=PLUS_ONE), None, False, False, None, False),
    "pin-buyer_24.xml": Expected(
        P, "pin-buyer", "it", "Avviso consultazione preliminare mat. dedicato a ventilatore polmonare",
        "IRCCS Policlinico ospedale San Martino", "123 456 789", "ITA", "ITC33", "Genova", "16132", "pub-undert-la",
        SUPPLIES, None, "33157000", 0, "ITC33", None, None, None, False, False, None, False),
    "pin-cfc-social_24.xml": Expected(
        C, "pin-cfc-social", "en", "Procurement title vol3",
        "ZenithNova Innovations Ltd.", "ABE", "GRC", "EL303", "New Horizons, CA", "90210", "la",
        SERVICES, "oth-mult", "85000000", 1, None, None, datetime(2023, 5, 31, 15, tzinfo=PLUS_THREE), None,
        False, False, None, True),
    "pin-cfc_25.xml": Expected(
        C, "pin-cfc-standard", "de", "Instandhaltung Brandschutztüren",
        "Flughafen Stuttgart GmbH", "123 456 789", "DEU", "DE113", "Stuttgart", "70629", "pub-undert-ra",
        SERVICES, "oth-mult", "50712000", 2, "DE113", None, datetime(2020, 5, 18, 23, 59, 59, tzinfo=PLUS_ONE),
        None, False, False, None, False),
    "pin-only_24.xml": Expected(
        P, "pin-only", "en", "ProPrName1234",
        "PartyName1234", "PartyLegalEntityCID1234", "DEU", "DE401", "City1234", "ABC123", "eu-ins-bod-ag",
        SERVICES, None, "72000000", 1, "DE123", eur("100000"), None, date(2020, 12, 31), False, False, True, False),
    "pin-only_25.xml": Expected(
        P, "pin-only", "en", "Title (BT-21-Procedure)",
        "ZenithNova Innovations", "ABE", "GRC", "EL303", "New Horizons, CA", "90210", "pub-undert-la",
        SERVICES, None, "98910000", 1, "EL303", None, None, None, False, False, None, False),
    "pin-only_81_FRA.xml": Expected(
        P, "pin-only", "fr", "Demande d'informations nº DI 123/DSSFT",
        "Marine/DCSSF/DSSF Toulon", None, "FRA", "FRL04", "Toulon Cedex 9", "83800", "def-cont",
        SUPPLIES, None, "35520000", 1, None, None, None, date(2021, 5, 7), False, False, None, False),
    "pin-rtl_24.xml": Expected(
        P, "pin-rtl", "en", "Title ( vol3",
        "ZenithNova Innovations", "ABE", "GRC", "EL303", "New Horizons, CA", "90210", "pub-undert-la",
        SERVICES, None, "80110000", 1, "EL301", None, None, None, False, False, None, False),
    "qu-sy_25.xml": Expected(
        C, "qu-sy", "it", "Sistema di qualificazione lavori di asfaltatura",
        "Acque Bresciane srl", "SQASF2020", "ITA", "ITC47", "Rovato", "25038", "pub-undert-ra",
        WORKS, None, "45233222", 1, "ITC47", None, datetime(2020, 4, 29, 12, tzinfo=PLUS_ONE), None,
        False, False, None, False),
    "t01_PRT.xml": Expected(
        P, "pin-tran", "pt", "Public road transport services",
        "Município de Águeda", "PartyLegalEntityCID1234", "PRT", "PT191", "Águeda", "3754-500", "ra",
        SERVICES, "comp-tend", "60112000", 1, "PT191", None, None, None, False, False, None, False),
    "t02_ESP.xml": Expected(
        R, "can-tran", "es", "Public transport services by railways",
        "Ministerio de Transportes, Movilidad y Agenda Urbana", "S 2800113 I", "ESP", "ES300", "Madrid", "28071",
        "cga", SERVICES, "comp-tend", "60210000", 1, None, None, None, None, False, False, None, False),
    "veat_23.xml": Expected(
        R, "veat", "de", "Wasser-Konzessionsvertrag und Löschwasservereinbarung",
        "Stadt Neckargemünd", "buyerid01", "DEU", "DE128", "Neckargemünd", "69151", "la",
        SERVICES, "neg-wo-call", "65110000", 1, "DE128", None, None, None, False, False, None, False),
}
# fmt: on


def test_the_table_lists_every_fixture() -> None:
    assert sorted(EXPECTED) == sorted(path.name for path in ALL_NOTICES)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_fixture_yields_the_values_read_from_its_xml(name: str) -> None:
    notice = parse(name)
    expected = EXPECTED[name]
    address = notice.buyer.address or Address()
    places = notice.all_places()
    actual = Expected(
        kind=notice.kind,
        notice_type=notice.notice_type or "",
        language=notice.language,
        title_start=notice.title[: len(expected.title_start)],
        buyer_name=notice.buyer.name,
        buyer_national_id=notice.buyer.national_id,
        buyer_country=address.country,
        buyer_nuts=address.nuts,
        buyer_town=address.city,
        buyer_postcode=address.postal_code,
        buyer_legal_type=notice.buyer.buyer_type,
        contract_nature=notice.contract_nature or ContractNature.SERVICES,
        procedure=notice.procedure,
        cpv_main=notice.cpv_main or "",
        lot_count=len(notice.lots),
        first_place_nuts=places[0].nuts if places else None,
        estimated_value=notice.estimated_value,
        deadline=notice.deadline,
        planned_date=notice.planned_date,
        is_change=notice.is_change,
        cancelled=notice.cancelled,
        sme_suitable=notice.flags.sme_suitable,
        reserved=notice.flags.reserved,
    )
    assert notice.contract_nature is not None
    assert actual == expected
    # Equal datetimes may still differ in zone: the published offset is kept.
    if expected.deadline is not None:
        assert notice.deadline is not None
        assert notice.deadline.utcoffset() == expected.deadline.utcoffset()


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


def test_contract_modification_is_a_result_not_a_change_notice() -> None:
    notice = parse("can-modif_24_value.xml")
    assert notice.kind is NoticeKind.RESULT
    assert notice.is_change is False
    assert notice.change_of is None
    assert notice.notice_id == "eforms:3572a106-eb30-4c7a-8ac5-b3502f71742a"


def test_change_notice_is_a_new_version_of_the_notice_it_changes() -> None:
    original = parse("cn_24_open.xml")
    change = parse("change-cn_24_open_dates.xml")

    # Same identity as the original, so that downstream the change replaces it...
    assert change.notice_id == original.notice_id == "eforms:c4c415ee-ac08-4465-8fa6-57568cf69462"
    # ...at a version no version of the original can have: the change notice's own UUID and version.
    assert (original.version, change.version) == ("01", "71397268-6c47-4f2f-8ab0-f41a26138f81-01")
    assert change.source_id == "71397268-6c47-4f2f-8ab0-f41a26138f81"
    assert change.change_of == "c4c415ee-ac08-4465-8fa6-57568cf69462-01"
    assert change.is_change is True
    assert change.cancelled is False
    assert change.procedure_id == original.procedure_id == "31f258b6-5eb2-4875-8997-affa3cdce27c"
    assert change.change_description == (
        "Time limit for receipt of tenders or requests to participate; Conditions for opening of tenders; "
        "reason update-add: Due to Covid-19 and the UK Government’s decision to extend the UK lockdown period for "
        "an additional 3 weeks the timescales applicable to this contract notice have been extended accordingly."
    )
    assert original.deadline == datetime(2020, 4, 3, 12, 0, tzinfo=PLUS_ONE)
    assert change.deadline == datetime(2020, 6, 12, 12, 0, tzinfo=PLUS_ONE)
    assert change.kind is NoticeKind.COMPETITION
    assert original.is_change is False
    assert (original.change_of, original.change_description) == (None, None)


def test_change_notice_version_is_stable_and_follows_its_own_version() -> None:
    document = read("change-cn_24_open_dates.xml")
    assert parse_document(document)[0].version == parse_document(document)[0].version

    [resubmitted] = parse_document(document.replace(b"<cbc:VersionID>01<", b"<cbc:VersionID>02<"))
    assert resubmitted.notice_id == "eforms:c4c415ee-ac08-4465-8fa6-57568cf69462"
    assert resubmitted.version == "71397268-6c47-4f2f-8ab0-f41a26138f81-02"


def test_cancelling_change_notice() -> None:
    notice = parse("change-cn_24_void.xml")

    assert notice.is_change is True
    assert notice.cancelled is True
    assert notice.notice_id == "eforms:f42be27e-09cf-4f0e-a745-63ec689631e6"
    assert notice.version == "1d192942-a4a3-4833-8775-ca38f7ec09ca-01"
    assert notice.source_id == "1d192942-a4a3-4833-8775-ca38f7ec09ca"
    assert notice.change_of == "f42be27e-09cf-4f0e-a745-63ec689631e6-01"
    assert notice.change_description == "reason cancel: We cancel because..."


@pytest.mark.parametrize(("reason", "cancelled"), [("cancel-intent", True), ("cor-buy", False)])
def test_only_cancelling_reasons_cancel(reason: str, cancelled: bool) -> None:
    document = read("change-cn_24_void.xml").replace(b'justification">cancel<', f'justification">{reason}<'.encode())
    [notice] = parse_document(document)
    assert notice.cancelled is cancelled
    assert notice.change_description == f"reason {reason}: We cancel because..."


def test_change_notice_without_the_changed_notice_identifier_is_rejected() -> None:
    document = re.sub(
        rb"<efbc:ChangedNoticeIdentifier>[^<]*</efbc:ChangedNoticeIdentifier>", b"", read("change-cn_24_void.xml")
    )
    with pytest.raises(DocumentError) as caught:
        parse_document(document)
    assert caught.value.reason == "missing-field"
    assert "identifier of the changed notice (BT-758)" in caught.value.message
    assert "efac:Changes/efbc:ChangedNoticeIdentifier" in caught.value.message


def test_notice_id_is_stable_across_versions() -> None:
    notice = parse("2024-OJS065-00191534.xml")
    assert (notice.notice_id, notice.version) == ("eforms:f80d83c5-f453-474d-b11b-c62bec947312", "02")

    [resubmitted] = parse_document(
        read("2024-OJS065-00191534.xml").replace(b"<cbc:VersionID>02<", b"<cbc:VersionID>03<")
    )
    assert (resubmitted.notice_id, resubmitted.version) == (notice.notice_id, "03")


def test_bilingual_belgian_notice_keeps_french_and_offers_dutch() -> None:
    notice = parse("2024-OJS065-00191534.xml")

    # Dutch comes first in the document; French is kept.
    assert notice.language == "fr"
    assert notice.title == (
        "PROCEDURE OUVERTE POUR LE NETTOYAGE DES MAISONS FITT SOUS GESTION DE L’OFFICE DES ETRANGERS POUR LE "
        "COMPTE DU SPF INTERIEUR"
    )
    assert notice.description is not None
    assert notice.description.startswith("Le présent marché porte à nettoyer, sur demande,")
    assert list(notice.translations) == ["nl"]
    dutch = notice.translations["nl"]
    assert dutch.title.startswith("OPENBARE PROCEDURE VOOR HET SCHOONMAKEN VAN DE FITT-WONINGEN IN HET BEHEER")
    assert dutch.description is not None
    assert dutch.description.startswith("De onderhavige opdracht betreft het op afroep schoonmaken")
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


def test_french_is_kept_even_when_the_notice_language_is_another() -> None:
    # The notice language is Italian; the texts are given in all 24 EU languages.
    notice = parse("2023-OJS167-00524889.xml")
    assert notice.language == "fr"
    assert notice.title.startswith("Marchés de services cadres relatifs à la dispense de formations dans le domaine")
    assert notice.description is not None
    assert notice.description.startswith("Le Centre commun de recherche (JRC), site d’Ispra (VA), envisage de conclure")
    assert notice.buyer.name == "Centre commun de recherche"
    assert [(lot.lot_id, lot.title, lot.description) for lot in notice.lots] == [
        ("LOT-0004", "Cours de radioprotection", "Cours de radioprotection.")
    ]
    assert len(notice.translations) == 23
    italian = notice.translations["it"]
    assert italian.title.startswith("Contratti quadro per servizi di formazione in materia di salute e sicurezza")
    assert italian.description is not None
    assert italian.description.startswith("Il Centro Comune di Ricerca (JRC), sito di Ispra (VA) intende stipulare")
    assert notice.translations["de"].title.startswith("Dienstleistungsrahmenverträge für die Durchführung")


def test_notice_in_all_eu_languages() -> None:
    notice = parse("cn_24_multilingual.xml")

    assert notice.language == "fr"
    assert notice.title == (
        "Fourniture de services informatiques liés aux systèmes informatiques OP (EUR-Lex, N-Lex, Search Layer, etc.)"
    )
    assert notice.buyer.name == "Office des publications de l'Union européenne"
    assert notice.lots[0].title == notice.title
    assert sorted(notice.translations) == [
        "bg", "cs", "da", "de", "el", "en", "es", "et", "fi", "ga", "hr", "hu",
        "it", "lt", "lv", "mt", "nl", "pl", "pt", "ro", "sk", "sl", "sv",
    ]  # fmt: skip
    english = notice.translations["en"]
    assert (
        english.title == "Provision of IT Services Related to OP IT Systems (EUR-Lex, N-Lex, Search Layer, and Others)"
    )
    assert english.description is not None
    assert english.description.startswith("Provision of IT services related to the information systems of the")
    assert notice.estimated_value == Money(amount=Decimal("4500000"), currency="EUR")


def test_single_language_notice_has_no_translations() -> None:
    notice = parse("cn_24_open.xml")
    assert (notice.language, notice.translations) == ("en", {})


def test_without_french_the_notice_language_wins_over_document_order() -> None:
    # Turn the French texts of the Belgian notice into German ones and make Dutch the notice language.
    document = (
        read("2024-OJS065-00191534.xml")
        .replace(b'languageID="FRA"', b'languageID="DEU"')
        .replace(
            b'<cbc:NoticeLanguageCode listName="language">FRA<', b'<cbc:NoticeLanguageCode listName="language">DEU<'
        )
    )
    [notice] = parse_document(document)
    assert notice.language == "de"
    assert notice.title.startswith("PROCEDURE OUVERTE POUR LE NETTOYAGE")
    assert list(notice.translations) == ["nl"]


def test_text_missing_in_every_preferred_language_falls_back_to_the_first() -> None:
    document = (
        read("2024-OJS065-00191534.xml")
        .replace(b'languageID="FRA"', b'languageID="DEU"')
        .replace(
            b'<cbc:NoticeLanguageCode listName="language">FRA<', b'<cbc:NoticeLanguageCode listName="language">SWE<'
        )
    )
    [notice] = parse_document(document)
    assert notice.language == "nl"
    assert notice.title.startswith("OPENBARE PROCEDURE VOOR HET SCHOONMAKEN VAN DE FITT-WONINGEN")
    # The rest of the notice follows the language of the title that was chosen.
    assert notice.description is not None
    assert notice.description.startswith("De onderhavige opdracht betreft")
    assert notice.buyer.name == "FOD Binnenlandse Zaken"
    assert list(notice.translations) == ["de"]
    assert notice.translations["de"].title.startswith("PROCEDURE OUVERTE POUR LE NETTOYAGE")


def test_cpv_and_places_of_every_lot() -> None:
    research = parse("2023-OJS167-00524889.xml")
    [lot] = research.lots
    assert (lot.cpv_main, lot.cpv_additional) == (
        "80500000",
        ["80000000", "80510000", "80522000", "80531200", "80550000", "80560000", "80562000"],
    )
    assert lot.estimated_value == Money(amount=Decimal("76000"), currency="EUR")
    assert research.all_cpv()[:2] == ["80500000", "80000000"]

    cleaning = parse("2024-OJS197-00607986.xml")
    assert (cleaning.cpv_main, cleaning.cpv_additional) == ("90911200", ["90914000", "90919200"])
    [lot] = cleaning.lots
    # The lot repeats its main code among the additional ones: kept once.
    assert (lot.cpv_main, lot.cpv_additional) == ("90919200", ["90914000"])
    assert lot.places == [Place(nuts="BE100", country="BEL")]
    assert cleaning.places == []

    cars = parse("2024-OJS044-00128154.xml")
    assert [(lot.lot_id, lot.cpv_main, [place.nuts for place in lot.places]) for lot in cars.lots] == [
        (f"LOT-000{number}", "34110000", ["PL912"]) for number in range(1, 8)
    ]

    esat = parse("2024-OJS044-00129266.xml")
    assert esat.places == []
    assert esat.lots[0].places == [Place(nuts="FRE12", postal_code="62160", city="AIX NOULETTE", country="FRA")]

    # The procedure and its lot may differ: both are kept where they were published.
    defence = parse("cn_81_FRA.xml")
    assert defence.cpv_main == "71336000"
    assert [(place.nuts, place.country, place.description) for place in defence.places] == [
        ("FRL04", "FRA", "CEA Cadarache — 13115 Saint-Paul-lez-Durance.")
    ]
    assert defence.lots[0].cpv_main == "80512000"
    assert defence.lots[0].places == [Place(country="GBR", description="United Kingdom")]


def test_parts_of_a_prior_information_notice_are_its_lots() -> None:
    notice = parse("pin-only_24.xml")
    [part] = notice.lots
    assert (part.lot_id, part.title, part.description) == ("PAR-0000", "ProPrName1234-1", "PrPrDescblabla")
    assert part.cpv_main == "50000000"
    assert [(place.nuts, place.postal_code, place.city, place.country) for place in part.places] == [
        ("DE123", "RealizedLocPostalZone1234", "RealizedLocCity1234", "DEU")
    ]
    assert notice.all_cpv() == ["72000000", "50000000"]


def test_planned_date_is_read_for_planning_notices_only() -> None:
    assert parse("pin-only_81_FRA.xml").planned_date == date(2021, 5, 7)
    document = read("cn_24_open.xml").replace(
        b"</cbc:IssueTime>", b"</cbc:IssueTime><cbc:PlannedDate>2020-12-31+01:00</cbc:PlannedDate>", 1
    )
    assert b"<cbc:PlannedDate>" in document
    [notice] = parse_document(document)
    assert (notice.kind, notice.planned_date) == (NoticeKind.COMPETITION, None)


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
