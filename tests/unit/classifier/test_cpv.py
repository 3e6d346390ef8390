from __future__ import annotations

import csv

import pytest

from services.classifier.cpv import CpvVocabulary, InvalidCpvCodeError, cpv_ancestors, cpv_check_digit, cpv_level
from services.classifier.data import data_file


@pytest.fixture(scope="module")
def published() -> dict[str, int]:
    """Every code of the official CPV 2008 list with the check digit it is published with."""
    with data_file("cpv_2008_fr.csv").open(encoding="utf-8", newline="") as handle:
        return {row["CODE"][:8]: int(row["CODE"][9]) for row in csv.DictReader(handle)}


@pytest.fixture(scope="module")
def vocabulary() -> CpvVocabulary:
    return CpvVocabulary.load()


def test_the_check_digit_algorithm_gives_the_published_digit_except_for_the_known_2008_errors(
    published: dict[str, int],
) -> None:
    assert len(published) == 9454
    disagreeing = sorted(code for code, digit in published.items() if cpv_check_digit(code) != digit)
    assert len(published) - len(disagreeing) == 8922
    assert len(disagreeing) == 532
    # The errors come in blocks, e.g. every code of group 421.
    assert all(code in disagreeing for code in published if code.startswith("421"))
    assert ("03300000", published["03300000"], cpv_check_digit("03300000")) == ("03300000", 2, 4)
    assert cpv_check_digit("45000000") == 7
    assert cpv_check_digit("03000000") == 1
    assert cpv_check_digit("72230000") == published["72230000"] == 6


def test_every_published_code_normalises_to_its_8_digits(published: dict[str, int], vocabulary: CpvVocabulary) -> None:
    for code, digit in published.items():
        assert vocabulary.normalise(f"{code}-{digit}") == code


def test_the_shipped_vocabulary_is_the_official_list(published: dict[str, int], vocabulary: CpvVocabulary) -> None:
    assert len(vocabulary) == len(published)
    assert all(vocabulary.published_check_digit(code) == digit for code, digit in published.items())
    assert vocabulary.label_fr("45000000") == "Travaux de construction"
    assert vocabulary.label_fr("90911200") == "Services de nettoyage de bâtiments"
    assert vocabulary.label_fr("12345678") is None


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("45000000", "45000000"),
        ("45000000-7", "45000000"),
        (" 45000000 7 ", "45000000"),
        ("45000000 - 7", "45000000"),
        ("450000007", "45000000"),
        ("03300000-2", "03300000"),  # published digit, although the algorithm gives 4
        ("03300000-4", "03300000"),  # computed digit
        ("3000000-1", "03000000"),  # leading zero lost in a spreadsheet
        ("09134000", "09134000"),
        ("45233139", "45233139"),
    ],
)
def test_normalise_accepts_the_written_forms_of_a_code(vocabulary: CpvVocabulary, raw: str, code: str) -> None:
    assert vocabulary.normalise(raw) == code


def test_normalise_keeps_a_well_formed_code_outside_cpv_2008_in_an_existing_division(vocabulary: CpvVocabulary) -> None:
    assert "45233199" not in vocabulary
    assert vocabulary.normalise("45233199") == "45233199"
    assert vocabulary.normalise(f"45233199-{cpv_check_digit('45233199')}") == "45233199"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("45000000-8", "'45000000-8' has check digit 8 but 45000000 takes 7; check for a typo"),
        ("99000000", "'99000000' does not start with a CPV division such as 03, 45 or 72"),
        ("4500000", "'4500000' has 7 digits and 04500000 is not a CPV 2008 code; expected 8 digits"),
        ("4500000A", "'4500000A' is not a CPV code; expected 8 digits with an optional check digit"),
        ("", "'' is not a CPV code; expected 8 digits with an optional check digit"),
        ("45.00.00.00", "'45.00.00.00' is not a CPV code; expected 8 digits with an optional check digit"),
    ],
)
def test_normalise_rejects_what_is_not_a_cpv_code(vocabulary: CpvVocabulary, raw: str, message: str) -> None:
    with pytest.raises(InvalidCpvCodeError) as error:
        vocabulary.normalise(raw)
    assert str(error.value) == message


@pytest.mark.parametrize(
    ("code", "level"),
    [
        ("45000000", 2),
        ("03000000", 2),
        ("45200000", 3),
        ("45230000", 4),
        ("45233000", 5),
        ("45233100", 6),
        ("45233140", 7),
        ("45233141", 8),
        ("09100000", 3),
    ],
)
def test_cpv_level_counts_significant_digits(code: str, level: int) -> None:
    assert cpv_level(code) == level


def test_cpv_ancestors_strip_one_level_at_a_time() -> None:
    assert cpv_ancestors("45233140") == ["45233100", "45233000", "45230000", "45200000", "45000000"]
    assert cpv_ancestors("03111000") == ["03110000", "03100000", "03000000"]
    assert cpv_ancestors("45000000") == []


def test_ancestors_may_skip_a_level_the_list_does_not_publish_but_always_reach_a_published_one(
    published: dict[str, int],
) -> None:
    skipping = sorted(code for code in published if cpv_level(code) > 2 and cpv_ancestors(code)[0] not in published)
    assert len(skipping) == 35
    assert skipping[0] == "30192121"  # its parent 30192120 is not published; 30192100 is
    assert cpv_ancestors("30192121")[:2] == ["30192120", "30192100"]
    for code in published:
        if cpv_level(code) > 2:
            assert any(ancestor in published for ancestor in cpv_ancestors(code)), code


def test_level_and_check_digit_refuse_codes_of_the_wrong_length() -> None:
    with pytest.raises(InvalidCpvCodeError, match="must have exactly 8 digits"):
        cpv_level("4500000")
    with pytest.raises(InvalidCpvCodeError, match="must have exactly 8 digits"):
        cpv_check_digit("45000000-7")
