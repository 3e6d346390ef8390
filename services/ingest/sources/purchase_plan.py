"""Buyers' purchase plans ("programmation", "plan de charge") as CSV: each line becomes a planning notice.

The format is tenderwatch's own, documented in docs/purchase-plan-format.md: a header row naming the columns
(English names, French aliases), then one planned purchase per line. A plan is all or nothing: every bad line is
reported with its number and the reason, and a plan with any error yields no notice, so that a buyer fixes the
file and sends it again instead of publishing half of it.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Callable, Iterator
from datetime import date
from decimal import Decimal
from typing import NamedTuple, TypeVar

from schemas.notice import Buyer, ContractNature, Money, Notice, NoticeKind, Place
from services.ingest.sources._errors import DocumentError

SOURCE = "plan"
NOTICE_TYPE = "purchase-plan"

_T = TypeVar("_T")

_UTF8_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_HEAD_BYTES = 64 * 1024  # enough for any header row; recognising a plan never decodes the whole document
_DELIMITERS = (";", ",")  # ';' first: French spreadsheets write it, and it wins a tie
_MAX_REPORTED_ERRORS = 50
_MAX_SHOWN_VALUE = 60
_MAX_LENGTH = {"reference": 100, "label": 1000, "buyer_name": 300, "contact_name": 200, "description": 10000}


class _Column(NamedTuple):
    name: str
    aliases: tuple[str, ...]  # compared after _plain_key: 'Catégorie' and 'CATEGORIE' are both 'categorie'
    required: bool


_COLUMNS = (
    _Column("reference", ("ref",), required=False),
    _Column("label", ("objet", "intitule"), required=True),
    _Column("category", ("categorie", "nature"), required=True),
    _Column("cpv", ("code_cpv",), required=False),
    _Column("estimated_amount", ("montant", "montant_estime", "montant_ht", "montant_estime_ht"), required=True),
    _Column("currency", ("devise",), required=False),
    _Column("planned", ("publication_prevue", "date_publication_prevue"), required=True),
    _Column("department", ("departement",), required=False),
    _Column("postcode", ("postal_code", "code_postal"), required=False),
    _Column("buyer_name", ("acheteur", "nom_acheteur"), required=True),
    _Column("buyer_siret", ("siret", "siret_acheteur"), required=True),
    _Column("contact_email", ("email", "courriel", "email_contact"), required=False),
    _Column("contact_name", ("contact", "nom_contact"), required=False),
    _Column("description", ("descriptif",), required=False),
    _Column("language", ("langue",), required=False),
)
_COLUMN_BY_KEY = {key: column.name for column in _COLUMNS for key in (column.name, *column.aliases)}
_PLACE_COLUMNS = ("department", "postcode")  # a line needs one of them
_EXAMPLE_HEADER = "reference;label;category;cpv;estimated_amount;planned;department;postcode;buyer_name;buyer_siret"

_CATEGORIES = {
    ContractNature.WORKS: ("works", "work", "travaux", "travail"),
    ContractNature.SUPPLIES: ("supplies", "supply", "goods", "fournitures", "fourniture"),
    ContractNature.SERVICES: ("services", "service", "prestations", "prestation"),
}
_CATEGORY_BY_WORD = {word: nature for nature, words in _CATEGORIES.items() for word in words}

_CPV = re.compile(r"^(?P<code>\d{8})(-\d)?$")
# A grouped amount uses one separator throughout: spaces (as French spreadsheets print, also no-break spaces),
# dots with a comma for the decimals, or commas with a dot for the decimals. A single group after a dot or a comma
# ('1.250', '1,250') is refused on purpose: French and English read it 1000 times apart, and a wrong planned
# amount is worse than a rejected line.
_AMOUNTS = (
    re.compile(r"^(?P<units>\d+)(?:[.,](?P<cents>\d{1,2}))?$"),
    re.compile(r"^(?P<units>\d{1,3}(?: \d{3})+)(?:[.,](?P<cents>\d{1,2}))?$"),
    re.compile(r"^(?P<units>\d{1,3}(?:\.\d{3}){2,})(?:,(?P<cents>\d{1,2}))?$"),
    re.compile(r"^(?P<units>\d{1,3}\.\d{3}),(?P<cents>\d{1,2})$"),
    re.compile(r"^(?P<units>\d{1,3}(?:,\d{3}){2,})(?:\.(?P<cents>\d{1,2}))?$"),
    re.compile(r"^(?P<units>\d{1,3},\d{3})\.(?P<cents>\d{1,2})$"),
)
_AMOUNT_EURO_SUFFIX = re.compile(r"\s*(?:€|eur)?\s*(?:ht)?$", re.IGNORECASE)
_SPACES = re.compile(r"[\s\u00a0\u202f]+")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_MONTH_PATTERNS = (
    re.compile(r"^(?P<year>\d{4})-(?P<month>\d{1,2})$"),
    re.compile(r"^(?P<month>\d{1,2})/(?P<year>\d{4})$"),
)
_QUARTER_PATTERNS = (
    re.compile(r"^(?P<year>\d{4})[- ]?[TQ](?P<quarter>[1-4])$", re.IGNORECASE),
    re.compile(r"^[TQ](?P<quarter>[1-4])[- /]?(?P<year>\d{4})$", re.IGNORECASE),
)
# Spreadsheets turn '03/2026' into a date; a full date is then taken as the planned day.
_DAY_PATTERNS = (
    re.compile(r"^(?P<year>\d{4})-(?P<month>\d{2})-(?P<day>\d{2})$"),
    re.compile(r"^(?P<day>\d{1,2})/(?P<month>\d{1,2})/(?P<year>\d{4})$"),
)
_YEARS = range(2000, 2100)
# INSEE department codes: 01-95 without 20, Corsica 2A/2B, overseas 971-974 and 976.
_DEPARTMENT = re.compile(r"^(0[1-9]|1\d|2[1-9AB]|[3-8]\d|9[0-5]|97[1-46])$")
_POSTCODE = re.compile(r"^(?!00)\d{5}$")
_SIRET = re.compile(r"^\d{14}$")
_SCIENTIFIC = re.compile(r"^\d+(?:[.,]\d+)?E\+?\d+$", re.IGNORECASE)
_LA_POSTE_SIREN = "356000000"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_SLUG_LENGTH = 80
_LIGATURES = str.maketrans({"œ": "oe", "Œ": "OE", "æ": "ae", "Æ": "AE", "ß": "ss"})
_LANGUAGE = re.compile(r"^[a-z]{2}$")
_DEFAULT_LANGUAGE = "fr"


class _CellError(ValueError):
    """A cell's value is wrong; the message completes '<column> "<value>" ...'."""


class _Period(NamedTuple):
    start: date
    key: str  # '2026-03', '2026-q1' or '2026-03-15': part of the notice id of a line without a reference


class _Header(NamedTuple):
    delimiter: str
    width: int
    positions: dict[str, int]  # canonical column name -> position
    names: dict[str, str]  # canonical column name -> the name as the file writes it, for error messages
    unnamed: tuple[int, ...]  # positions of empty header cells: their values must stay empty
    problems: list[str]


def looks_like_purchase_plan(data: bytes) -> bool:
    """Whether a document starts with a purchase-plan header row (it names at least a label and a planned period)."""
    head = data[:_HEAD_BYTES]
    if len(data) > _HEAD_BYTES and b"\n" in head:
        head = head[: head.rindex(b"\n")]  # never cut a multi-byte character in two
    try:
        header = _read_header(_decode(head))
    except (DocumentError, csv.Error):
        return False
    return header is not None and "label" in header.positions and "planned" in header.positions


def parse_purchase_plan(data: bytes) -> list[Notice]:
    """Turn a purchase plan into one planning notice per line, in the order of the file.

    Raises DocumentError: `invalid-lines` listing every bad line (header problems are line 1), `empty-document`
    when the plan has no line after its header, `malformed-csv` for an undecodable file or broken quoting,
    `unknown-format` when the first line is not a purchase-plan header.
    """
    text = _decode(data)
    if not text.strip():
        raise DocumentError(
            "empty-document", f"the purchase plan is empty; its first line must be a header such as {_EXAMPLE_HEADER}"
        )
    header = _read_header(text)
    if header is None:
        raise _invalid_lines(
            [f"line 1: the header row is empty; the first line must be a header such as {_EXAMPLE_HEADER}"]
        )
    if "label" not in header.positions or "planned" not in header.positions:
        raise DocumentError(
            "unknown-format",
            f"line 1 is not a purchase-plan header: it must name at least the columns label (objet) and planned "
            f"(publication_prevue), e.g. {_EXAMPLE_HEADER}",
        )
    if header.problems:
        raise _invalid_lines([f"line 1: {problem}" for problem in header.problems])
    notices: list[Notice] = []
    errors: list[str] = []
    lines_by_notice_id: dict[str, int] = {}
    records = _records(text, header.delimiter)
    next(records)  # the header
    for line, cells in records:
        if not any(cell.strip() for cell in cells):
            continue  # spreadsheets leave empty rows (';;;;') behind
        row = _Row(header, cells)
        notice = row.notice()
        if notice is not None:
            earlier = lines_by_notice_id.setdefault(notice.notice_id, line)
            if earlier == line:
                notices.append(notice)
            else:
                row.errors.append(_duplicate(header, row, earlier))
        errors += [f"line {line}: {error}" for error in row.errors]
    if errors:
        raise _invalid_lines(errors)
    if not notices:
        raise DocumentError("empty-document", "the purchase plan has a header but no line; add one line per purchase")
    return notices


# --- reading the file ---


def _decode(data: bytes) -> str:
    """UTF-8 (with or without BOM), else Windows-1252 as Excel writes 'CSV (separator: semicolon)'."""
    if data.startswith(_UTF16_BOMS):
        raise DocumentError(
            "malformed-csv",
            "the purchase plan is UTF-16 (Excel's 'Unicode text'); save it as 'CSV UTF-8' and send it again",
        )
    body = data.removeprefix(_UTF8_BOM)
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        pass  # a Windows-1252 text with accents is practically never valid UTF-8
    try:
        return body.decode("cp1252")
    except UnicodeDecodeError as exc:
        raise DocumentError(
            "malformed-csv",
            f"the purchase plan is neither UTF-8 nor Windows-1252 (byte 0x{body[exc.start]:02x} at offset "
            f"{exc.start}); save it as 'CSV UTF-8' and send it again",
        ) from None


def _read_header(text: str) -> _Header | None:
    """The header row, split with the delimiter that makes the most known column names; None if no header."""
    best: _Header | None = None
    for delimiter in _DELIMITERS:
        first = next(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter), None)
        if first is None or not any(cell.strip() for cell in first):
            return None
        header = _header(first, delimiter)
        if best is None or len(header.positions) > len(best.positions):
            best = header
    return best


def _header(cells: list[str], delimiter: str) -> _Header:
    positions: dict[str, int] = {}
    names: dict[str, str] = {}
    unnamed: list[int] = []
    problems: list[str] = []
    for position, cell in enumerate(cells):
        written = cell.strip()
        if not written:
            unnamed.append(position)
            continue
        column = _COLUMN_BY_KEY.get(_plain_key(written))
        if column is None:
            problems.append(f'unknown column "{_shown(written)}"; the columns are {", ".join(_COLUMN_BY_KEY)}')
        elif column in positions:
            problems.append(f'columns "{names[column]}" and "{written}" are both {column}; keep one')
        else:
            positions[column], names[column] = position, written
    missing = [column.name for column in _COLUMNS if column.required and column.name not in positions]
    if missing:
        problems.append(f"missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)}")
    if not any(column in positions for column in _PLACE_COLUMNS):
        problems.append("missing column department (departement) or postcode (code_postal); one is required")
    return _Header(delimiter, len(cells), positions, names, tuple(unnamed), problems)


def _plain_key(name: str) -> str:
    """A name without accents, case or punctuation: 'Publication prévue (T1)' -> 'publication_prevue_t1'."""
    bare = "".join(char for char in unicodedata.normalize("NFKD", name) if not unicodedata.combining(char))
    return re.sub(r"[^a-z0-9]+", "_", bare.casefold()).strip("_")


def _records(text: str, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """Each record with the number of the line it starts on (a quoted value may span lines)."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    start = 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise DocumentError(
                "malformed-csv",
                f"line {start}: {exc}; a value holding the delimiter {delimiter!r}, a quote or a line break must be "
                'enclosed in double quotes, with its quotes doubled ("")',
            ) from None
        yield start, cells
        start = reader.line_num + 1


def _invalid_lines(errors: list[str]) -> DocumentError:
    shown = "; ".join(errors[:_MAX_REPORTED_ERRORS])
    more = len(errors) - _MAX_REPORTED_ERRORS
    if more > 0:
        shown += f"; and {more} more error{'s' if more > 1 else ''}"
    return DocumentError(
        "invalid-lines",
        f"the purchase plan has {len(errors)} error{'s' if len(errors) > 1 else ''} and nothing was imported; "
        f"correct the file and send it whole again: {shown}",
    )


def _duplicate(header: _Header, row: _Row, earlier: int) -> str:
    reference = row.text("reference")
    if reference is not None:
        name = header.names["reference"]
        return f'{name} "{_shown(reference)}" is already used on line {earlier}; give each line its own'
    return (
        f"same buyer, label and planned period as line {earlier}; merge the two lines or tell them apart with a "
        "reference column"
    )


def _shown(value: str) -> str:
    flat = " ".join(value.split())
    return flat if len(flat) <= _MAX_SHOWN_VALUE else flat[: _MAX_SHOWN_VALUE - 1] + "…"


# --- one line ---


class _Row:
    """One line of the plan, read cell by cell; every problem goes to `errors` instead of stopping the reading."""

    def __init__(self, header: _Header, cells: list[str]) -> None:
        self._header = header
        self._cells = cells
        self.errors: list[str] = []
        self._bad_columns: set[str] = set()

    def notice(self) -> Notice | None:
        """The line's notice, or None when `errors` says why not."""
        if not self._has_right_width():
            return None
        label = self._value("label", _text_of("label"), required=True)
        nature = self._value("category", _category, required=True)
        cpv = self._value("cpv", _cpv)
        amount = self._value("estimated_amount", _amount, required=True)
        currency = self._value("currency", _currency)
        period = self._value("planned", _planned, required=True)
        department = self._value("department", _department)
        postcode = self._value("postcode", _postcode)
        buyer_name = self._value("buyer_name", _text_of("buyer_name"), required=True)
        siret = self._value("buyer_siret", _siret, required=True)
        email = self._value("contact_email", _email)
        self._value("contact_name", _text_of("contact_name"))  # checked; the contract has no contact name yet
        description = self._value("description", _text_of("description"))
        reference = self._value("reference", _text_of("reference"))
        language = self._value("language", _language)
        if department is None and postcode is None and not self._bad_columns.intersection(_PLACE_COLUMNS):
            written = [self._header.names[column] for column in _PLACE_COLUMNS if column in self._header.names]
            self.errors.append(f"{' and '.join(written)} {'are' if len(written) > 1 else 'is'} empty; give one")
        if amount is not None and amount[1] is not None and currency not in (None, amount[1]):
            self.errors.append(f"the amount is in {amount[1]} but the currency is {currency}; keep one currency")
        if (
            self.errors
            or label is None
            or nature is None
            or amount is None
            or period is None
            or buyer_name is None
            or siret is None
        ):
            return None
        source_id = f"{siret}:{reference or _slug(label) + '-' + period.key}"
        return Notice(
            notice_id=f"{SOURCE}:{source_id}",
            version="",
            source=SOURCE,
            source_id=source_id,
            kind=NoticeKind.PLANNING,
            notice_type=NOTICE_TYPE,
            title=label,
            description=description,
            language=language or _DEFAULT_LANGUAGE,
            buyer=Buyer(name=buyer_name, national_id=siret, email=email),
            contract_nature=nature,
            cpv_main=cpv,
            places=[Place(department=department, postal_code=postcode, country="FR")],
            estimated_value=Money(amount=amount[0], currency=currency or amount[1] or "EUR"),
            planned_date=period.start,
        )

    def text(self, column: str) -> str | None:
        """A cell's text, trimmed; None when the column is absent or the cell empty."""
        position = self._header.positions.get(column)
        if position is None:
            return None
        value = self._cells[position].strip() if position < len(self._cells) else ""
        if value.startswith('="') and value.endswith('"'):
            value = value[2:-1].strip()  # Excel's way of keeping leading zeros: ="01000"
        return value or None

    def _value(self, column: str, parse: Callable[[str], _T], *, required: bool = False) -> _T | None:
        raw = self.text(column)
        if raw is None:
            if required:
                self._bad_columns.add(column)
                self.errors.append(f"{self._header.names[column]} is empty")
            return None
        try:
            return parse(raw)
        except _CellError as exc:
            self._bad_columns.add(column)
            self.errors.append(f'{self._header.names[column]} "{_shown(raw)}" {exc}')
            return None

    def _has_right_width(self) -> bool:
        width = self._header.width
        if len(self._cells) != width:
            self.errors.append(
                f"{len(self._cells)} values where the header has {width} columns; a value holding the delimiter "
                f"{self._header.delimiter!r} must be enclosed in double quotes"
            )
            return False
        if any(self._cells[position].strip() for position in self._header.unnamed):
            self.errors.append("a value sits under a column without a name; name the column or empty the cell")
            return False
        return True


# --- one value ---


def _text_of(column: str) -> Callable[[str], str]:
    limit = _MAX_LENGTH[column]

    def text(raw: str) -> str:
        if len(raw) > limit:
            raise _CellError(f"is {len(raw)} characters long, over the limit of {limit}")
        return raw

    return text


def _category(raw: str) -> ContractNature:
    nature = _CATEGORY_BY_WORD.get(_plain_key(raw))
    if nature is None:
        raise _CellError("is not a category: write works, supplies or services (travaux, fournitures, services)")
    return nature


def _cpv(raw: str) -> str:
    match = _CPV.match(_SPACES.sub("", raw))
    if match is None:
        raise _CellError("is not a CPV code such as 45000000 or 45000000-7")
    return match["code"]


def _amount(raw: str) -> tuple[Decimal, str | None]:
    """The amount, and 'EUR' when the cell says so with '€' or 'EUR' ('125 000 € HT')."""
    value = _SPACES.sub(" ", raw).strip()
    suffix = _AMOUNT_EURO_SUFFIX.search(value)
    number = value[: suffix.start()] if suffix else value
    currency = "EUR" if suffix and re.search("€|eur", suffix.group(), re.IGNORECASE) else None
    for pattern in _AMOUNTS:
        match = pattern.match(number)
        if match is not None:
            units = re.sub(r"[ .,]", "", match["units"])
            return Decimal(f"{units}.{match['cents']}" if match["cents"] else units), currency
    raise _CellError(
        "is not an amount such as 125000, 125 000,50 or 1.250.000 (excluding VAT, at most 2 decimals; "
        "write 1250 or 1 250 rather than 1.250 or 1,250, which read differently in French and English)"
    )


def _currency(raw: str) -> str:
    code = "EUR" if raw == "€" else raw.upper()
    if not _CURRENCY.match(code):
        raise _CellError("is not a 3-letter ISO 4217 currency code such as EUR")
    return code


def _planned(raw: str) -> _Period:
    value = raw.strip()
    try:
        for pattern in _MONTH_PATTERNS:
            if match := pattern.match(value):
                year, month = _year(match["year"]), int(match["month"])
                return _Period(date(year, month, 1), f"{year}-{month:02d}")
        for pattern in _QUARTER_PATTERNS:
            if match := pattern.match(value):
                year, quarter = _year(match["year"]), int(match["quarter"])
                return _Period(date(year, 3 * quarter - 2, 1), f"{year}-q{quarter}")
        for pattern in _DAY_PATTERNS:
            if match := pattern.match(value):
                day = date(_year(match["year"]), int(match["month"]), int(match["day"]))
                return _Period(day, day.isoformat())
    except ValueError:
        pass  # month 13, 31 February, year 1926: same answer as an unknown form
    raise _CellError(
        "is not a planned publication month or quarter such as 2026-03, 03/2026, 2026-T1, 2026-Q1 or T1 2026"
    )


def _year(raw: str) -> int:
    year = int(raw)
    if year not in _YEARS:
        raise ValueError(year)
    return year


def _department(raw: str) -> str:
    code = raw.upper()
    code = "0" + code if len(code) == 1 and code.isdigit() else code
    if not _DEPARTMENT.match(code):
        raise _CellError("is not a French department code such as 34, 05, 2A or 974")
    return code


def _postcode(raw: str) -> str:
    code = _SPACES.sub("", raw)
    # Spreadsheets read '01000' as the number 1000; a French postal code always has 5 digits.
    code = "0" + code if len(code) == 4 and code.isdigit() else code
    if not _POSTCODE.match(code):
        raise _CellError("is not a French postal code of 5 digits such as 34000")
    return code


def _siret(raw: str) -> str:
    siret = _SPACES.sub("", raw)
    if _SCIENTIFIC.match(siret):
        raise _CellError(
            "was turned into a number by the spreadsheet; format the column as text and type the 14 digits again"
        )
    if not _SIRET.match(siret):
        raise _CellError("is not a SIRET: 14 digits expected")
    if not _siret_checks(siret):
        raise _CellError("fails the SIRET check digit; copy it again from the buyer's entry in the SIRENE register")
    return siret


def _siret_checks(siret: str) -> bool:
    """The Luhn check over the 14 digits. La Poste has more establishments than the Luhn numbering leaves room
    for: INSEE numbers them so that the sum of the digits is a multiple of 5 instead (its head office,
    35600000000048, passes Luhn)."""
    total = 0
    for position, digit in enumerate(reversed(siret)):
        value = int(digit) * (2 if position % 2 else 1)
        total += value - 9 if value > 9 else value
    if total % 10 == 0:
        return True
    return siret.startswith(_LA_POSTE_SIREN) and sum(int(digit) for digit in siret) % 5 == 0


def _language(raw: str) -> str:
    code = raw.lower()
    if not _LANGUAGE.match(code):
        raise _CellError("is not a 2-letter ISO 639-1 language code such as fr or en")
    return code


def _email(raw: str) -> str:
    if not _EMAIL.match(raw):
        raise _CellError("is not an email address such as achats@ville.example")
    return raw


def _slug(label: str) -> str:
    """A label reduced to lower-case ASCII words joined by hyphens, cut at a word boundary."""
    spelled = label.translate(_LIGATURES)  # NFKD keeps œ and æ whole: 'cœur' must not become 'cur'
    bare = unicodedata.normalize("NFKD", spelled).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", bare.lower()).strip("-")
    if len(slug) > _SLUG_LENGTH:
        cut = slug[: _SLUG_LENGTH + 1]
        slug = cut[: cut.rindex("-")] if "-" in cut else cut[:_SLUG_LENGTH]
    return slug or "line"
