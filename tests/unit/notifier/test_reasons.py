from datetime import UTC, datetime

import pytest

from schemas.alert import Criterion, MatchReason
from services.notifier.email.formatting import Language
from services.notifier.reasons import reason_line, reason_lines

# 09:00 UTC on Monday 3 March 2025: 10:00 in Paris, the same day
MATCHED_AT = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
NBSP = "\u00a0"
NNBSP = "\u202f"


def _line(criterion: Criterion, values: list[str], notice_values: list[str], language: Language) -> str:
    reason = MatchReason(criterion=criterion, values=values, notice_values=notice_values)
    return reason_line(reason, language, matched_at=MATCHED_AT)


# (criterion, values, notice_values, French line, English line): one typical reason per criterion
TYPICAL = [
    (
        Criterion.KIND,
        ["competition"],
        ["competition"],
        f"Type d'avis{NBSP}: appel d'offres",
        "Notice type: call for tenders",
    ),
    (
        Criterion.CPV,
        ["45000000"],
        ["45233140"],
        f"CPV 45000000 (avis{NBSP}: 45233140)",
        "CPV 45000000 (notice: 45233140)",
    ),
    (
        Criterion.SECTOR,
        ["travaux-publics"],
        ["batiment", "travaux-publics"],
        f"Secteur{NBSP}: travaux-publics",
        "Sector: travaux-publics",
    ),
    (
        Criterion.DEPARTMENT,
        ["31"],
        ["31"],
        f"Département{NBSP}: 31 Haute-Garonne",
        "Department: 31 Haute-Garonne",
    ),
    (
        Criterion.REGION,
        ["76"],
        ["76"],
        f"Région{NBSP}: 76 Occitanie",
        "Region: 76 Occitanie",
    ),
    (
        Criterion.COUNTRY,
        ["FR"],
        ["FR"],
        f"Pays{NBSP}: FR",
        "Country: FR",
    ),
    (
        Criterion.KEYWORDS,
        ["voirie", "enrobés"],
        ["title"],
        f"Mots-clés{NBSP}: «{NBSP}voirie{NBSP}», «{NBSP}enrobés{NBSP}» (titre)",
        "Keywords: “voirie”, “enrobés” (title)",
    ),
    (
        Criterion.VALUE,
        ["100000", "500000"],
        ["250000.00 EUR"],
        f"Valeur estimée{NBSP}: 250{NNBSP}000{NBSP}€ (entre 100{NNBSP}000 et 500{NNBSP}000{NBSP}€)",
        "Estimated value: €250,000 (between €100,000 and €500,000)",
    ),
    (
        Criterion.BUYER,
        ["213105554"],
        ["Mairie de Toulouse"],
        f"Acheteur{NBSP}: 213105554 (avis{NBSP}: Mairie de Toulouse)",
        "Buyer: 213105554 (notice: Mairie de Toulouse)",
    ),
    (
        Criterion.BUYER_CATEGORY,
        ["municipality"],
        ["municipality"],
        f"Catégorie d'acheteur{NBSP}: commune ou intercommunalité",
        "Buyer category: municipality or inter-municipal body",
    ),
    (
        Criterion.PROCEDURE_TYPE,
        ["open"],
        ["open"],
        f"Procédure{NBSP}: ouverte",
        "Procedure: open",
    ),
    (
        Criterion.SME_SUITABLE,
        ["true"],
        ["true"],
        "Adapté aux PME",
        "Suitable for SMEs",
    ),
    (
        Criterion.RESERVED,
        ["true"],
        ["true"],
        "Marché réservé (handicap, insertion ou économie sociale)",
        "Reserved contract (disability, integration or social economy)",
    ),
    (
        Criterion.DEADLINE,
        ["10"],
        ["2025-03-15T12:00:00+01:00"],
        "Date limite dans 12 jours (au moins 10)",
        "Deadline in 12 days (at least 10)",
    ),
    (
        Criterion.EVERYTHING,
        [],
        [],
        "Tous les avis (alerte sans critère)",
        "Every notice (alert without criteria)",
    ),
]


def test_every_criterion_has_a_typical_case() -> None:
    assert {case[0] for case in TYPICAL} == set(Criterion)


@pytest.mark.parametrize(("criterion", "values", "notice_values", "french", "english"), TYPICAL)
def test_typical_reason_in_both_languages(
    criterion: Criterion, values: list[str], notice_values: list[str], french: str, english: str
) -> None:
    assert _line(criterion, values, notice_values, "fr") == french
    assert _line(criterion, values, notice_values, "en") == english


# Reasons with nothing in them: every criterion still gives a line, never an exception.
EMPTY = [
    (Criterion.KIND, f"Type d'avis{NBSP}: non précisé", "Notice type: not given"),
    (Criterion.CPV, f"CPV{NBSP}: non précisé", "CPV: not given"),
    (Criterion.SECTOR, f"Secteur{NBSP}: non précisé", "Sector: not given"),
    (Criterion.DEPARTMENT, f"Département{NBSP}: non précisé", "Department: not given"),
    (Criterion.REGION, f"Région{NBSP}: non précisé", "Region: not given"),
    (Criterion.COUNTRY, f"Pays{NBSP}: non précisé", "Country: not given"),
    (Criterion.KEYWORDS, f"Mot-clé{NBSP}: requête satisfaite", "Keyword: query matched"),
    (Criterion.VALUE, f"Valeur estimée{NBSP}: non publiée", "Estimated value: not published"),
    (Criterion.BUYER, f"Acheteur{NBSP}: non précisé", "Buyer: not given"),
    (Criterion.BUYER_CATEGORY, f"Catégorie d'acheteur{NBSP}: non précisé", "Buyer category: not given"),
    (Criterion.PROCEDURE_TYPE, f"Procédure{NBSP}: non précisé", "Procedure: not given"),
    (Criterion.SME_SUITABLE, f"Adapté aux PME{NBSP}: non précisé", "Suitable for SMEs: not given"),
    (Criterion.RESERVED, f"Marché réservé{NBSP}: non précisé", "Reserved contract: not given"),
    (Criterion.DEADLINE, "Pas de date limite publiée", "No deadline published"),
    (Criterion.EVERYTHING, "Tous les avis (alerte sans critère)", "Every notice (alert without criteria)"),
]


def test_every_criterion_has_an_empty_case() -> None:
    assert {case[0] for case in EMPTY} == set(Criterion)


@pytest.mark.parametrize(("criterion", "french", "english"), EMPTY)
def test_empty_reason_in_both_languages(criterion: Criterion, french: str, english: str) -> None:
    assert _line(criterion, [], [], "fr") == french
    assert _line(criterion, ["", "  "], ["\n"], "en") == english  # blank values count as none


def test_blank_subscription_values_fall_back_to_the_notice_values() -> None:
    assert _line(Criterion.DEPARTMENT, [], ["30"], "fr") == f"Département{NBSP}: 30 Gard"
    assert _line(Criterion.SME_SUITABLE, [], ["false"], "en") == "Not marked as suitable for SMEs"


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("fr", f"Départements{NBSP}: 2A Corse-du-Sud, 974 La Réunion, 975"),
        ("en", "Departments: 2A Corse-du-Sud, 974 La Réunion, 975"),
    ],
)
def test_several_departments_are_named_and_an_unknown_code_is_kept(language: Language, expected: str) -> None:
    assert _line(Criterion.DEPARTMENT, ["2a", "974", "975"], [], language) == expected


def test_several_values_take_the_plural_label() -> None:
    assert _line(Criterion.REGION, ["76", "11"], [], "fr") == f"Régions{NBSP}: 76 Occitanie, 11 Île-de-France"
    assert _line(Criterion.COUNTRY, ["FR", "BE"], [], "en") == "Countries: FR, BE"
    assert (
        _line(Criterion.KIND, ["planning", "result"], [], "en") == "Notice types: planned procurement, contract award"
    )


def test_unknown_codes_are_shown_as_given() -> None:
    assert _line(Criterion.PROCEDURE_TYPE, ["open", "neg-w-call", "mystery"], [], "fr") == (
        f"Procédures{NBSP}: ouverte, négociée avec mise en concurrence préalable, mystery"
    )
    assert _line(Criterion.BUYER_CATEGORY, ["guild"], [], "en") == "Buyer category: guild"
    assert _line(Criterion.KIND, ["lottery"], [], "fr") == f"Type d'avis{NBSP}: lottery"
    assert _line(Criterion.RESERVED, ["maybe"], [], "en") == "Reserved contract: maybe"


def test_cpv_equal_to_the_notice_code_is_written_once() -> None:
    assert _line(Criterion.CPV, ["45233140"], ["45233140"], "fr") == "CPV 45233140"
    assert _line(Criterion.CPV, ["45000000", "90500000"], ["45233140", "90511100"], "en") == (
        "CPV 45000000, 90500000 (notice: 45233140, 90511100)"
    )


def test_buyer_the_notice_names_the_same_way_is_written_once() -> None:
    assert _line(Criterion.BUYER, ["Mairie de Quissac"], ["Mairie de Quissac"], "en") == "Buyer: Mairie de Quissac"


@pytest.mark.parametrize(
    ("notice_values", "french", "english"),
    [
        (["description"], " (description)", " (description)"),
        (["title", "description"], "", ""),
        ([], "", ""),
        (
            ["Réfection de la voirie communale"],
            f" (avis{NBSP}: «{NBSP}Réfection de la voirie communale{NBSP}»)",
            " (notice: “Réfection de la voirie communale”)",
        ),
    ],
)
def test_where_keywords_were_found(notice_values: list[str], french: str, english: str) -> None:
    assert _line(Criterion.KEYWORDS, ["voirie"], notice_values, "fr") == f"Mot-clé{NBSP}: «{NBSP}voirie{NBSP}»{french}"
    assert _line(Criterion.KEYWORDS, ["voirie"], notice_values, "en") == f"Keyword: “voirie”{english}"


def test_a_long_keyword_excerpt_is_shortened_at_a_word() -> None:
    excerpt = "travaux de voirie " * 10
    line = _line(Criterion.KEYWORDS, ["maîtrise d'œuvre"], [excerpt], "en")
    assert line.startswith("Keyword: “maîtrise d'œuvre” (notice: “travaux de voirie travaux")
    assert line.endswith("voirie…”)")
    assert len(line) < 130


def test_newlines_in_values_never_reach_the_line() -> None:
    line = _line(Criterion.BUYER, ["Mairie\r\nde  Quissac"], ["Mairie de\nQuissac\n"], "fr")
    assert line == f"Acheteur{NBSP}: Mairie de Quissac"


@pytest.mark.parametrize(
    ("values", "notice_values", "french", "english"),
    [
        (
            ["100000", ""],
            ["250000.00 EUR"],
            f"250{NNBSP}000{NBSP}€ (au moins 100{NNBSP}000{NBSP}€)",
            "€250,000 (at least €100,000)",
        ),
        (
            ["", "500000"],
            ["250000.00 EUR"],
            f"250{NNBSP}000{NBSP}€ (au plus 500{NNBSP}000{NBSP}€)",
            "€250,000 (at most €500,000)",
        ),
        (
            ["100000"],  # a single value is a minimum
            ["250000.5 EUR"],
            f"250{NNBSP}000,50{NBSP}€ (au moins 100{NNBSP}000{NBSP}€)",
            "€250,000.50 (at least €100,000)",
        ),
        (
            ["", ""],
            ["1200 GBP"],
            f"1{NNBSP}200{NBSP}£",
            "£1,200",
        ),
        (
            ["100000", "500000"],
            [],  # the subscription includes notices without a value
            f"non publiée (entre 100{NNBSP}000 et 500{NNBSP}000{NBSP}€)",
            "not published (between €100,000 and €500,000)",
        ),
        (
            ["cent mille", "500000"],
            ["about 250k"],
            f"about 250k (entre cent mille et 500{NNBSP}000{NBSP}€)",
            "about 250k (between cent mille and €500,000)",
        ),
        (
            ["-5", ""],
            ["250000"],  # a bare amount is in euros
            f"250{NNBSP}000{NBSP}€ (au moins -5)",
            "€250,000 (at least -5)",
        ),
    ],
)
def test_value_ranges(values: list[str], notice_values: list[str], french: str, english: str) -> None:
    assert _line(Criterion.VALUE, values, notice_values, "fr") == f"Valeur estimée{NBSP}: {french}"
    assert _line(Criterion.VALUE, values, notice_values, "en") == f"Estimated value: {english}"


@pytest.mark.parametrize(
    ("values", "notice_values", "french", "english"),
    [
        (["10"], ["2025-03-04"], "Date limite dans 1 jour (au moins 10)", "Deadline in 1 day (at least 10)"),
        (["0"], ["2025-03-03"], "Date limite aujourd'hui", "Deadline today"),
        ([], ["2025-03-13"], "Date limite dans 10 jours", "Deadline in 10 days"),
        (
            ["5"],
            ["2025-03-01"],
            "Date limite passée le 1er mars 2025 (au moins 5)",
            "Deadline passed on 1 March 2025 (at least 5)",
        ),
        # 23:30 UTC on 12 March is already 13 March in Paris
        (
            ["7"],
            ["2025-03-12T23:30:00+00:00"],
            "Date limite dans 10 jours (au moins 7)",
            "Deadline in 10 days (at least 7)",
        ),
        # a naive datetime is UTC
        ([], ["2025-03-12T23:30:00"], "Date limite dans 10 jours", "Deadline in 10 days"),
        (
            ["10"],
            [],
            "Pas de date limite publiée (au moins 10 jours demandés)",
            "No deadline published (at least 10 days required)",
        ),
        (["10"], ["bientôt"], f"Date limite{NBSP}: bientôt (au moins 10)", "Deadline: bientôt (at least 10)"),
    ],
)
def test_deadlines_are_counted_from_the_day_of_the_match(
    values: list[str], notice_values: list[str], french: str, english: str
) -> None:
    assert _line(Criterion.DEADLINE, values, notice_values, "fr") == french
    assert _line(Criterion.DEADLINE, values, notice_values, "en") == english


def test_the_day_of_the_match_is_the_paris_day() -> None:
    # 23:30 UTC on 2 March is 00:30 on 3 March in Paris: one day before the 4th, not two
    reason = MatchReason(criterion=Criterion.DEADLINE, values=[], notice_values=["2025-03-04"])
    late_evening = datetime(2025, 3, 2, 23, 30, tzinfo=UTC)
    assert reason_line(reason, "en", matched_at=late_evening) == "Deadline in 1 day"
    assert reason_line(reason, "en", matched_at=late_evening.replace(tzinfo=None)) == "Deadline in 1 day"


def test_flags_wanted_false() -> None:
    assert _line(Criterion.SME_SUITABLE, ["false"], ["false"], "fr") == "Non signalé comme adapté aux PME"
    assert _line(Criterion.RESERVED, ["False"], [], "fr") == "Marché non réservé"
    assert _line(Criterion.RESERVED, ["false"], [], "en") == "Not a reserved contract"


def test_reason_lines_keep_the_order() -> None:
    reasons = [
        MatchReason(criterion=Criterion.REGION, values=["76"]),
        MatchReason(criterion=Criterion.CPV, values=["45000000"], notice_values=["45000000"]),
    ]
    assert reason_lines(reasons, "en", matched_at=MATCHED_AT) == ["Region: 76 Occitanie", "CPV 45000000"]
