"""Amounts and dates written the way a French (or English) reader expects them in an alert."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Literal
from zoneinfo import ZoneInfo

from schemas.notice import Money

Language = Literal["fr", "en"]

# French buyers' deadlines are written in Paris time; a digest's period in the subscriber's own zone (`zone`).
PARIS = ZoneInfo("Europe/Paris")

# CLDR French: narrow no-break space between thousands, no-break space before the currency sign,
# so a mail client never wraps "1 250 000 €" across two lines.
_FR_GROUP = "\u202f"
_NBSP = "\u00a0"

_SYMBOLS = {"EUR": "€", "GBP": "£", "USD": "$"}

_FR_WEEKDAYS = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")
_FR_MONTHS = (
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
)
_EN_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_EN_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


def format_money(money: Money, language: Language) -> str:
    """`1 250 000 €` in French, `€1,250,000` in English; cents only when there are some."""
    amount = money.amount
    cents = amount != amount.to_integral_value()
    digits = f"{amount:,.2f}" if cents else f"{amount.to_integral_value():,.0f}"
    currency = money.currency.upper()
    symbol = _SYMBOLS.get(currency)
    if language == "fr":
        digits = digits.replace(",", _FR_GROUP).replace(".", ",")
        return f"{digits}{_NBSP}{symbol or currency}"
    if symbol:
        return f"{symbol}{digits}"
    return f"{digits}{_NBSP}{currency}"


def format_date(day: date, language: Language) -> str:
    """`1er mars 2025` / `1 March 2025`: no weekday, for approximate or secondary dates.

    A datetime is first brought to Paris time, so 23:30 UTC on 28 February is written 1er mars.
    """
    if isinstance(day, datetime):
        day = _in_paris(day).date()
    if language == "fr":
        number = "1er" if day.day == 1 else str(day.day)
        return f"{number} {_FR_MONTHS[day.month - 1]} {day.year}"
    return f"{day.day} {_EN_MONTHS[day.month - 1]} {day.year}"


def format_datetime(moment: datetime, language: Language, zone: ZoneInfo = PARIS) -> str:
    """`lundi 3 mars 2025 à 12 h 00` / `Monday 3 March 2025 at 12:00`, in Paris time unless `zone` is given.

    A naive datetime is taken as UTC, the platform's storage convention.
    """
    local = _in_paris(moment) if zone is PARIS else _aware(moment).astimezone(zone)
    if language == "fr":
        weekday = _FR_WEEKDAYS[local.weekday()]
        return f"{weekday} {format_date(local.date(), 'fr')} à {local.hour} h {local.minute:02d}"
    weekday = _EN_WEEKDAYS[local.weekday()]
    return f"{weekday} {format_date(local.date(), 'en')} at {local.hour:02d}:{local.minute:02d}"


def _in_paris(moment: datetime) -> datetime:
    return _aware(moment).astimezone(PARIS)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
