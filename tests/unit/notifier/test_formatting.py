from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from schemas.notice import Money
from services.notifier.email.formatting import format_date, format_datetime, format_money

PARIS = ZoneInfo("Europe/Paris")
NNBSP = "\u202f"  # narrow no-break space: French thousands separator
NBSP = "\u00a0"


def test_french_amount_groups_thousands_and_puts_the_euro_sign_after() -> None:
    assert format_money(Money(amount=Decimal("1250000"), currency="EUR"), "fr") == f"1{NNBSP}250{NNBSP}000{NBSP}€"


def test_french_amount_shows_cents_with_a_comma_only_when_there_are_some() -> None:
    assert format_money(Money(amount=Decimal("27381.36"), currency="EUR"), "fr") == f"27{NNBSP}381,36{NBSP}€"
    assert format_money(Money(amount=Decimal("74000.00"), currency="EUR"), "fr") == f"74{NNBSP}000{NBSP}€"


def test_amount_in_a_currency_without_symbol_keeps_its_code() -> None:
    assert format_money(Money(amount=Decimal("950"), currency="CHF"), "fr") == f"950{NBSP}CHF"
    assert format_money(Money(amount=Decimal("1000000"), currency="CHF"), "en") == f"1,000,000{NBSP}CHF"


def test_english_amount() -> None:
    assert format_money(Money(amount=Decimal("1250000"), currency="EUR"), "en") == "€1,250,000"
    assert format_money(Money(amount=Decimal("1234.5"), currency="GBP"), "en") == "£1,234.50"


def test_french_deadline_in_paris_winter_time() -> None:
    assert format_datetime(datetime(2025, 3, 3, 12, 0, tzinfo=PARIS), "fr") == "lundi 3 mars 2025 à 12 h 00"
    assert format_datetime(datetime(2025, 3, 3, 11, 0, tzinfo=UTC), "fr") == "lundi 3 mars 2025 à 12 h 00"


def test_french_deadline_in_paris_summer_time_and_first_of_month() -> None:
    assert format_datetime(datetime(2025, 7, 1, 7, 5, tzinfo=UTC), "fr") == "mardi 1er juillet 2025 à 9 h 05"


def test_naive_datetime_is_taken_as_utc() -> None:
    assert format_datetime(datetime(2025, 3, 3, 11, 0), "fr") == "lundi 3 mars 2025 à 12 h 00"


def test_english_deadline() -> None:
    assert format_datetime(datetime(2025, 3, 3, 11, 0, tzinfo=UTC), "en") == "Monday 3 March 2025 at 12:00"


def test_dates_without_time() -> None:
    assert format_date(date(2025, 4, 1), "fr") == "1er avril 2025"
    assert format_date(date(2025, 8, 15), "fr") == "15 août 2025"
    assert format_date(date(2025, 12, 1), "en") == "1 December 2025"


def test_a_datetime_given_as_date_is_the_paris_day() -> None:
    # 23:30 UTC on 28 February is already 1 March in Paris
    assert format_date(datetime(2025, 2, 28, 23, 30, tzinfo=UTC), "fr") == "1er mars 2025"
