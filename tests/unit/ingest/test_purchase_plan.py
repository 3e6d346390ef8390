from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from schemas.notice import Buyer, ContractNature, Money, Notice, NoticeKind, Place
from services.ingest.sources._errors import DocumentError
from services.ingest.sources.purchase_plan import looks_like_purchase_plan, parse_purchase_plan

FIXTURES = Path(__file__).parents[2] / "fixtures" / "purchase-plans"
SIRET = "21349990800019"  # an invented commune SIREN (21 + 34999 + key) with a valid Luhn key

COLUMNS = (
    "reference",
    "label",
    "category",
    "cpv",
    "estimated_amount",
    "currency",
    "planned",
    "department",
    "postcode",
    "buyer_name",
    "buyer_siret",
    "contact_email",
)
GOOD_LINE = {
    "reference": "R-1",
    "label": "Réfection de la toiture de la mairie",
    "category": "travaux",
    "cpv": "45261000",
    "estimated_amount": "420 000",
    "currency": "",
    "planned": "2026-T2",
    "department": "34",
    "postcode": "",
    "buyer_name": "Ville de Sainte-Aurore-du-Lez",
    "buyer_siret": SIRET,
    "contact_email": "achats@sainte-aurore-du-lez.example",
}


NOT_AN_AMOUNT = (
    "is not an amount such as 125000, 125 000,50 or 1.250.000 (excluding VAT, at most 2 decimals; write 1250 or "
    "1 250 rather than 1.250 or 1,250, which read differently in French and English)"
)
NOT_A_CATEGORY = "is not a category: write works, supplies or services (travaux, fournitures, services)"
NOT_A_PERIOD = "is not a planned publication month or quarter such as 2026-03, 03/2026, 2026-T1, 2026-Q1 or T1 2026"
BAD_CHECK_DIGIT = "fails the SIRET check digit; copy it again from the buyer's entry in the SIRENE register"
SPREADSHEET_NUMBER = (
    "was turned into a number by the spreadsheet; format the column as text and type the 14 digits again"
)


def read(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def plan(*lines: dict[str, str]) -> bytes:
    rows = [";".join(COLUMNS), *(";".join({**GOOD_LINE, **line}[column] for column in COLUMNS) for line in lines)]
    return "\n".join(rows).encode()


def one(**values: str) -> Notice:
    [notice] = parse_purchase_plan(plan(values))
    return notice


def rejection(data: bytes) -> DocumentError:
    with pytest.raises(DocumentError) as caught:
        parse_purchase_plan(data)
    return caught.value


def line_errors(data: bytes) -> list[str]:
    error = rejection(data)
    assert error.reason == "invalid-lines"
    first, *others = error.message.split("send it whole again: ", 1)[1].split("; line ")
    return [first, *(f"line {entry}" for entry in others)]


# --- the example plan shipped with the service ---


def test_the_example_plan_gives_one_planning_notice_per_line() -> None:
    notices = parse_purchase_plan(read("plan-de-charge-exemple.csv"))

    assert [notice.source_id for notice in notices] == [
        *(f"{SIRET}:VSA-2026-00{number}" for number in range(1, 8)),
        "20009999200014:travaux-de-voirie-et-reseaux-divers-avenue-de-la-mer-2027-q1",
        "20009999200014:MAM-2026-014",
    ]
    for notice in notices:
        assert notice.notice_id == f"plan:{notice.source_id}"
        assert notice.source == "plan"
        assert notice.kind is NoticeKind.PLANNING
        assert notice.version == ""  # parse_document fills in the content hash
        assert notice.language == "fr"
        assert Notice.model_validate_json(notice.model_dump_json()) == notice


def test_the_example_plan_first_line_in_full() -> None:
    notice = parse_purchase_plan(read("plan-de-charge-exemple.csv"))[0]

    assert notice == Notice(
        notice_id=f"plan:{SIRET}:VSA-2026-001",
        version="",
        source="plan",
        source_id=f"{SIRET}:VSA-2026-001",
        kind=NoticeKind.PLANNING,
        notice_type="purchase-plan",
        title="Réfection de la toiture de l'école élémentaire Jules-Ferry",
        # quoted in the file because it holds the delimiter
        description="Couverture en zinc, isolation ; désamiantage partiel. Travaux pendant les vacances d'été.",
        language="fr",
        buyer=Buyer(
            name="Ville de Sainte-Aurore-du-Lez",
            national_id=SIRET,
            email="commande-publique@sainte-aurore-du-lez.example",
        ),
        contract_nature=ContractNature.WORKS,
        cpv_main="45261000",
        places=[Place(department="34", postal_code="34000", country="FR")],
        estimated_value=Money(amount=Decimal("420000"), currency="EUR"),
        planned_date=date(2026, 4, 1),
    )


def test_the_example_plan_values_in_their_french_forms() -> None:
    notices = {
        notice.source_id.split(":")[1]: notice for notice in parse_purchase_plan(read("plan-de-charge-exemple.csv"))
    }

    supplies = notices["VSA-2026-002"]
    assert supplies.cpv_main == "15000000"  # written with its check digit, 15000000-8
    assert supplies.estimated_value == Money(amount=Decimal("1250000.00"), currency="EUR")  # 1.250.000,00
    assert supplies.planned_date == date(2026, 9, 1)
    assert supplies.places == [Place(department="34", country="FR")]
    green = notices["VSA-2026-003"]
    assert green.estimated_value == Money(amount=Decimal("185000.50"), currency="EUR")  # 185 000,50
    assert green.planned_date == date(2026, 7, 1)  # 2026-Q3
    assert green.places == [Place(postal_code="34070", country="FR")]
    heating = notices["VSA-2026-004"]
    assert heating.planned_date == date(2027, 3, 1)  # 03/2027
    assert heating.description == "Marché à bons de commande.\r\n42 bâtiments communaux, dont 11 écoles."
    vehicles = notices["VSA-2026-005"]
    assert vehicles.estimated_value == Money(amount=Decimal("310000"), currency="EUR")  # 310 000 €
    assert vehicles.planned_date == date(2026, 10, 1)  # 2026-T4
    assert notices["VSA-2026-006"].title == "Maîtrise d'œuvre pour la rénovation énergétique du gymnase Léo-Lagrange"
    assert notices["VSA-2026-007"].cpv_main is None
    assert notices["MAM-2026-014"].buyer == Buyer(
        name="Métropole Aurore Méditerranée", national_id="20009999200014", email="marches@aurore-mediterranee.example"
    )


# --- encodings, delimiters, column names ---


def test_an_english_plan_with_commas() -> None:
    road, meals, furniture = parse_purchase_plan(read("plan-english-comma.csv"))

    assert road.title == "Road resurfacing, rue des Lilas"
    assert road.notice_id == f"plan:{SIRET}:road-resurfacing-rue-des-lilas-2026-q2"
    assert road.buyer.national_id == SIRET  # written '213 499 908 00019'
    assert road.cpv_main == "45233252"
    assert road.estimated_value == Money(amount=Decimal("650000.00"), currency="EUR")  # "650,000.00"
    assert road.language == "en"
    assert meals.planned_date == date(2026, 7, 1)  # Q3 2026
    assert meals.places == [Place(postal_code="01000", country="FR")]  # the spreadsheet dropped the leading zero
    assert meals.buyer.email is None
    assert meals.estimated_value == Money(amount=Decimal("540000.5"), currency="EUR")
    assert furniture.estimated_value == Money(amount=Decimal("45000"), currency="CHF")
    assert furniture.contract_nature is ContractNature.SUPPLIES


def test_a_windows_1252_plan_from_excel() -> None:
    fuel, village = parse_purchase_plan(read("plan-windows-1252.csv"))

    assert fuel.buyer.name == "Commune de Vallœil-les-Pins"
    assert fuel.places == [Place(department="05", country="FR")]  # written '5'
    assert fuel.estimated_value == Money(amount=Decimal("80000"), currency="EUR")  # '80 000 €'
    assert fuel.planned_date == date(2026, 4, 1)
    assert village.title == "Réhabilitation du cœur de village"
    assert village.notice_id == "plan:21349990800027:rehabilitation-du-coeur-de-village-2027-q1"
    assert village.places == [Place(department="2A", country="FR")]  # written '2a'
    assert village.estimated_value == Money(amount=Decimal("1480000"), currency="EUR")  # '1.480.000'
    assert village.contract_nature is ContractNature.WORKS


def test_column_names_are_read_without_case_accents_or_units() -> None:
    header = "Référence;OBJET;Catégorie;Montant estimé (€ HT);Publication prévue;Code postal;Acheteur;SIRET;Courriel"
    data = f"{header}\nX-1;Balayage;Prestations;5000;2026-05;34000;Ville;{SIRET};a@b.example\n".encode()

    [notice] = parse_purchase_plan(data)

    assert notice.source_id == f"{SIRET}:X-1"
    assert notice.contract_nature is ContractNature.SERVICES
    assert notice.places == [Place(postal_code="34000", country="FR")]
    assert notice.buyer.email == "a@b.example"


def test_looks_like_purchase_plan() -> None:
    for name in (
        "plan-de-charge-exemple.csv",
        "plan-english-comma.csv",
        "plan-windows-1252.csv",
        "plan-with-errors.csv",
    ):
        assert looks_like_purchase_plan(read(name)), name
    assert not looks_like_purchase_plan(b"CODE,FR\n03000000-1,Produits agricoles\n")
    assert not looks_like_purchase_plan(b'<?xml version="1.0"?><ContractNotice/>')
    assert not looks_like_purchase_plan(b'{"label": "x", "planned": "2026-01"}')
    assert not looks_like_purchase_plan(b"")


def test_recognising_a_large_plan_reads_only_its_head() -> None:
    data = plan(*({"reference": f"R-{number}", "label": "Équipement été"} for number in range(3000)))

    assert len(data) > 64 * 1024
    assert looks_like_purchase_plan(data)


# --- values ---


@pytest.mark.parametrize(
    ("written", "first_day"),
    [
        ("2026-03", date(2026, 3, 1)),
        ("2026-3", date(2026, 3, 1)),
        ("03/2026", date(2026, 3, 1)),
        ("2026-T1", date(2026, 1, 1)),
        ("2026-Q2", date(2026, 4, 1)),
        ("2026 t3", date(2026, 7, 1)),
        ("T4 2026", date(2026, 10, 1)),
        ("Q1-2027", date(2027, 1, 1)),
        ("01/03/2026", date(2026, 3, 1)),  # a month the spreadsheet turned into a date
        ("2026-03-15", date(2026, 3, 15)),
    ],
)
def test_planned_month_quarter_or_day(written: str, first_day: date) -> None:
    assert one(planned=written).planned_date == first_day


@pytest.mark.parametrize("written", ["2026", "13/2026", "2026-T5", "S1 2026", "1926-03", "31/02/2026", "mars 2026"])
def test_unreadable_planned_periods(written: str) -> None:
    assert line_errors(plan({"planned": written})) == [
        f'line 2: planned "{written}" is not a planned publication month or quarter such as 2026-03, 03/2026, '
        "2026-T1, 2026-Q1 or T1 2026"
    ]


@pytest.mark.parametrize(
    ("written", "amount"),
    [
        ("125000", "125000"),
        ("125 000", "125000"),
        ("125\u00a0000,50", "125000.50"),  # no-break space, as French spreadsheets print
        ("125\u202f000", "125000"),
        ("125000,5", "125000.5"),
        ("125000.50", "125000.50"),
        ("1.250.000", "1250000"),
        ("1.250,75", "1250.75"),
        ("1,250,000", "1250000"),
        ("1,250.75", "1250.75"),
        ("125 000 €", "125000"),
        ("125 000 € HT", "125000"),
        ("125000 EUR", "125000"),
        ("0", "0"),
    ],
)
def test_amounts(written: str, amount: str) -> None:
    assert one(estimated_amount=written).estimated_value == Money(amount=Decimal(amount), currency="EUR")


@pytest.mark.parametrize(
    "written", ["12k€", "1.250", "1,250", "125000,505", "-5000", "1.25E+05", "125 000 TTC", "12 34"]
)
def test_unreadable_amounts(written: str) -> None:
    [error] = line_errors(plan({"estimated_amount": written}))

    assert error.startswith(f'line 2: estimated_amount "{written}" is not an amount such as 125000, 125 000,50')


def test_a_euro_amount_in_another_currency_is_refused() -> None:
    assert line_errors(plan({"estimated_amount": "5000 €", "currency": "usd"})) == [
        "line 2: the amount is in EUR but the currency is USD; keep one currency"
    ]


@pytest.mark.parametrize(
    "siret",
    [
        SIRET,
        "213 499 908 00019",
        "35600000000048",  # La Poste's head office passes Luhn
        "35600000049837",  # a La Poste establishment: the digits add up to 45, a multiple of 5
    ],
)
def test_valid_sirets(siret: str) -> None:
    assert one(buyer_siret=siret).buyer.national_id == siret.replace(" ", "")


@pytest.mark.parametrize(
    ("siret", "reason"),
    [
        ("21349990800018", "fails the SIRET check digit; copy it again from the buyer's entry in the SIRENE register"),
        ("35600000049838", "fails the SIRET check digit; copy it again from the buyer's entry in the SIRENE register"),
        ("2134999080001", "is not a SIRET: 14 digits expected"),
        ("213499908000AB", "is not a SIRET: 14 digits expected"),
        (
            "2,13499908E+13",
            "was turned into a number by the spreadsheet; format the column as text and type the 14 digits again",
        ),
    ],
)
def test_invalid_sirets(siret: str, reason: str) -> None:
    assert line_errors(plan({"buyer_siret": siret})) == [f'line 2: buyer_siret "{siret}" {reason}']


@pytest.mark.parametrize(
    ("department", "postcode", "place"),
    [
        ("34", "", Place(department="34", country="FR")),
        ("1", "", Place(department="01", country="FR")),
        ("2b", "", Place(department="2B", country="FR")),
        ("974", "", Place(department="974", country="FR")),
        ("", "31000", Place(postal_code="31000", country="FR")),
        ("", '="01000"', Place(postal_code="01000", country="FR")),  # Excel's way to keep the leading zero
        ("31", "31 000", Place(department="31", postal_code="31000", country="FR")),
    ],
)
def test_places(department: str, postcode: str, place: Place) -> None:
    assert one(department=department, postcode=postcode).places == [place]


@pytest.mark.parametrize(("department"), ["20", "96", "975", "99", "Hérault"])
def test_unknown_departments(department: str) -> None:
    assert line_errors(plan({"department": department})) == [
        f'line 2: department "{department}" is not a French department code such as 34, 05, 2A or 974'
    ]


def test_categories_in_english_and_french() -> None:
    words = {"Works": ContractNature.WORKS, "Fourniture": ContractNature.SUPPLIES, "SERVICES": ContractNature.SERVICES}
    for word, nature in words.items():
        assert one(category=word).contract_nature is nature


def test_a_line_without_reference_is_named_by_its_label_and_period() -> None:
    notice = one(
        reference="", label="Maîtrise d'œuvre : rénovation du gymnase Léo-Lagrange (tranche 2)", planned="T3 2026"
    )

    assert notice.notice_id == f"plan:{SIRET}:maitrise-d-oeuvre-renovation-du-gymnase-leo-lagrange-tranche-2-2026-q3"


def test_a_long_label_makes_a_bounded_notice_id() -> None:
    notice = one(reference="", label="Travaux " * 40, planned="2026-03")

    assert notice.source_id == f"{SIRET}:" + "-".join(["travaux"] * 10) + "-2026-03"


# --- a plan with errors imports nothing ---


def test_every_bad_line_is_reported_with_its_number_and_reason() -> None:
    error = rejection(read("plan-with-errors.csv"))

    assert error.reason == "invalid-lines"
    assert error.message.startswith(
        "the purchase plan has 16 errors and nothing was imported; correct the file and send it whole again: "
    )
    assert line_errors(read("plan-with-errors.csv")) == [
        f'line 2: estimated_amount "12k€" {NOT_AN_AMOUNT}',
        f'line 3: category "jardinage" {NOT_A_CATEGORY}',
        'line 4: cpv "3913000" is not a CPV code such as 45000000 or 45000000-7',
        f'line 4: planned "13/2026" {NOT_A_PERIOD}',
        f'line 5: estimated_amount "1.250" {NOT_AN_AMOUNT}',
        f'line 5: buyer_siret "21349990800018" {BAD_CHECK_DIGIT}',
        'line 5: contact_email "vitres(at)example" is not an email address such as achats@ville.example',
        "line 5: department and postcode are empty; give one",
        "line 6: 12 values where the header has 11 columns; a value holding the delimiter ';' must be enclosed in "
        "double quotes",
        'line 7: department "99" is not a French department code such as 34, 05, 2A or 974',
        'line 7: postcode "340" is not a French postal code of 5 digits such as 34000',
        f'line 7: buyer_siret "2,13499908E+13" {SPREADSHEET_NUMBER}',
        "line 8: label is empty",
        "line 8: estimated_amount is empty",
        "line 8: buyer_name is empty",
        'line 11: reference "A-8" is already used on line 9; give each line its own',
    ]


def test_the_same_label_and_period_twice_without_reference() -> None:
    data = plan({"reference": ""}, {"reference": "", "estimated_amount": "9000"})

    assert line_errors(data) == [
        "line 3: same buyer, label and planned period as line 2; merge the two lines or tell them apart with a "
        "reference column"
    ]


def test_a_huge_bad_plan_lists_the_first_50_errors_and_counts_the_rest() -> None:
    error = rejection(plan(*({"reference": f"R-{number}", "category": "divers"} for number in range(120))))

    assert error.message.startswith("the purchase plan has 120 errors and nothing was imported")
    assert 'line 51: category "divers"' in error.message
    assert "line 52:" not in error.message
    assert error.message.endswith("; and 70 more errors")


def test_line_numbers_count_the_lines_of_quoted_values() -> None:
    data = (
        "label;category;estimated_amount;planned;department;buyer_name;buyer_siret\n"
        f'"Entretien\nsur deux lignes";services;1000;2026-01;34;Ville;{SIRET}\n'
        f"Voirie;travaux;1000;2026-13;34;Ville;{SIRET}\n"
    ).encode()

    assert line_errors(data) == [
        'line 4: planned "2026-13" is not a planned publication month or quarter such as 2026-03, 03/2026, 2026-T1, '
        "2026-Q1 or T1 2026"
    ]


# --- header and file problems ---


def test_header_problems_are_line_1() -> None:
    data = b"objet;montnat;label;planned;acheteur\nx;1;x;2026-01;Ville\n"

    assert line_errors(data) == [
        'line 1: unknown column "montnat"; the columns are '
        + ", ".join(
            [
                "reference, ref, label, objet, intitule, category, categorie, nature, cpv, code_cpv, estimated_amount",
                "montant, montant_estime, montant_ht, montant_estime_ht, currency, devise, planned, publication_prevue",
                "date_publication_prevue, department, departement, postcode, postal_code, code_postal, buyer_name",
                "acheteur, nom_acheteur, buyer_siret, siret, siret_acheteur, contact_email, email, courriel",
                "email_contact, contact_name, contact, nom_contact, description, descriptif, language, langue",
            ]
        ),
        'line 1: columns "objet" and "label" are both label; keep one',
        "line 1: missing columns category, estimated_amount, buyer_siret",
        "line 1: missing column department (departement) or postcode (code_postal); one is required",
    ]


def test_a_value_under_a_column_without_a_name() -> None:
    header = ";".join(COLUMNS) + ";"
    line = ";".join(GOOD_LINE[column] for column in COLUMNS)
    data = f"{header}\n{line};\n{line};oops\n".replace("R-1;", "R-2;", 1).encode()

    assert line_errors(data) == [
        "line 3: a value sits under a column without a name; name the column or empty the cell"
    ]


def test_a_header_only_plan_is_empty() -> None:
    error = rejection(read("plan-header-only.csv"))

    assert (error.reason, error.message) == (
        "empty-document",
        "the purchase plan has a header but no line; add one line per purchase",
    )


def test_an_empty_file_is_empty() -> None:
    assert rejection(b"\xef\xbb\xbf \r\n").reason == "empty-document"


def test_a_document_that_is_not_a_plan() -> None:
    error = rejection(b"CODE,FR\n03000000-1,Produits agricoles\n")

    assert error.reason == "unknown-format"
    assert error.message.startswith(
        "line 1 is not a purchase-plan header: it must name at least the columns label (objet) and planned"
    )


def test_utf16_is_refused_with_the_way_out() -> None:
    error = rejection("label;planned\n".encode("utf-16"))

    assert (error.reason, error.message) == (
        "malformed-csv",
        "the purchase plan is UTF-16 (Excel's 'Unicode text'); save it as 'CSV UTF-8' and send it again",
    )


def test_neither_utf8_nor_windows_1252() -> None:
    error = rejection(b"label;planned\n\x81\x8d;2026-01\n")

    assert error.reason == "malformed-csv"
    assert "neither UTF-8 nor Windows-1252 (byte 0x81 at offset 14)" in error.message


def test_broken_quoting_names_its_line() -> None:
    data = plan({}) + b'\nR-2;"Voirie" lot 2;travaux;;1000;;2026-01;34;;Ville;' + SIRET.encode() + b";\n"
    error = rejection(data)

    assert error.reason == "malformed-csv"
    assert error.message.startswith("line 3: ';' expected after '\"'; a value holding the delimiter ';'")
