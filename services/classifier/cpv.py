"""CPV 2008 codes: normalisation, check digit, hierarchy and French labels.

A CPV code is 8 digits plus a check digit (`45000000-7`). The hierarchy is read from trailing zeros: the first
two digits are the division (`45000000`), three the group (`45200000`), four the class, five the category, and
each further digit is a finer level.

The check digit is the weighted sum of the 8 digits with weights 3, 7, 1, 3, 7, 1, 3, 7, modulo 10. The official
CPV 2008 list publishes a different digit for 532 of its 9,454 codes (in blocks: all of groups 034, 091-093, 421):
the Commission confirmed these are errors of the 2008 revision that will not be corrected
(https://github.com/OP-TED/ePO/discussions/589). Notices carry the published digits, so both are accepted.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from services.classifier.data import data_file

_WEIGHTS = (3, 7, 1, 3, 7, 1, 3, 7)
# Spreadsheets drop the leading zero of divisions 03 and 09, hence the 7-digit form.
_SHAPE = re.compile(r"^(\d{7,8})(?:-?(\d))?$")
_DATA_FILE = "cpv_2008_fr.csv"


class InvalidCpvCodeError(ValueError):
    """A value that is not a CPV code."""


def cpv_check_digit(code: str) -> int:
    """The check digit of an 8-digit CPV code computed by the CPV algorithm (see the module docstring)."""
    _require_8_digits(code)
    return sum(weight * int(digit) for weight, digit in zip(_WEIGHTS, code, strict=True)) % 10


def cpv_level(code: str) -> int:
    """How deep the code sits: 2 for a division (45000000), 3 for a group (45200000) … 8 for a full code."""
    _require_8_digits(code)
    return max(2, len(code.rstrip("0")))


def cpv_ancestors(code: str) -> list[str]:
    """The codes above `code`, nearest first: 45233140 -> 45233100, 45233000, 45230000, 45200000, 45000000."""
    ancestors: list[str] = []
    for length in range(cpv_level(code) - 1, 1, -1):
        parent = code[:length].ljust(8, "0")
        if parent != code and parent not in ancestors:
            ancestors.append(parent)
    return ancestors


def _require_8_digits(code: str) -> None:
    if len(code) != 8 or not code.isdigit():
        raise InvalidCpvCodeError(f"CPV code {code!r} must have exactly 8 digits, such as '45000000'")


@dataclass(frozen=True)
class _Entry:
    check_digit: int
    label_fr: str


class CpvVocabulary:
    """The CPV 2008 main vocabulary with its French labels, loaded once."""

    def __init__(self, entries: dict[str, _Entry]) -> None:
        if not entries:
            raise ValueError("the CPV vocabulary is empty; check the CPV data file")
        self._entries = entries
        self._divisions = frozenset(code[:2] for code in entries)

    @classmethod
    def load(cls) -> CpvVocabulary:
        """The vocabulary shipped with the classifier (`data/cpv_2008_fr.csv`)."""
        return cls.from_csv(data_file(_DATA_FILE))

    @classmethod
    def from_csv(cls, path: Path) -> CpvVocabulary:
        """Read a `CODE,FR` file whose codes are written with their check digit, e.g. `03000000-1`."""
        entries: dict[str, _Entry] = {}
        with path.open(encoding="utf-8", newline="") as handle:
            for line, row in enumerate(csv.DictReader(handle), start=2):
                match = _SHAPE.match(row.get("CODE") or "")
                if not match or match.group(2) is None or len(match.group(1)) != 8:
                    raise ValueError(f"{path.name} line {line}: CODE {row.get('CODE')!r} is not like '03000000-1'")
                entries[match.group(1)] = _Entry(int(match.group(2)), (row.get("FR") or "").strip())
        return cls(entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, code: object) -> bool:
        return code in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def label_fr(self, code: str) -> str | None:
        entry = self._entries.get(code)
        return entry.label_fr if entry else None

    def published_check_digit(self, code: str) -> int | None:
        """The check digit the official list prints for `code`, or None for a code outside the list."""
        entry = self._entries.get(code)
        return entry.check_digit if entry else None

    def normalise(self, raw: str) -> str:
        """The 8-digit form of a CPV code written as '45000000', '45000000-7', ' 45000000 7 ', '3000000-1'…

        A check digit, when present, must be the published one or the computed one. A code outside CPV 2008 is
        kept when its division exists (older or newer vocabularies still say what the notice is about).
        """
        match = _SHAPE.match("".join(raw.split()))
        if not match:
            raise InvalidCpvCodeError(f"{raw!r} is not a CPV code; expected 8 digits with an optional check digit")
        digits, check = match.group(1), match.group(2)
        code = digits.zfill(8)
        if len(digits) == 7 and code not in self._entries:
            raise InvalidCpvCodeError(f"{raw!r} has 7 digits and {code} is not a CPV 2008 code; expected 8 digits")
        if code[:2] not in self._divisions:
            raise InvalidCpvCodeError(f"{raw!r} does not start with a CPV division such as 03, 45 or 72")
        if check is not None and int(check) not in (self.published_check_digit(code), cpv_check_digit(code)):
            expected = self.published_check_digit(code)
            expected = cpv_check_digit(code) if expected is None else expected
            raise InvalidCpvCodeError(f"{raw!r} has check digit {check} but {code} takes {expected}; check for a typo")
        return code
