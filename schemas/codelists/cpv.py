"""CPV 2008 codes: validation, normalisation, check digit, hierarchy, and French and English labels.

A CPV code is 8 digits plus a check digit (`45000000-7`). The hierarchy is read from trailing zeros: the first
two digits are the division (`45000000`), three the group (`45200000`), four the class, five the category, and
each further digit is a finer level.

The check digit is the weighted sum of the 8 digits with weights 3, 7, 1, 3, 7, 1, 3, 7, modulo 10. The official
CPV 2008 list publishes a different digit for 532 of its 9,454 codes (in blocks: all of groups 034, 091-093, 421):
the Commission confirmed these are errors of the 2008 revision that will not be corrected
(https://github.com/OP-TED/ePO/discussions/589). Notices carry the published digits, so both are accepted.

A code that cannot be used never fails a notice: `CpvVocabulary.check` returns the normalised code (or None) with
the warning the classifier adds to the notice.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from schemas.codelists.data import data_file

_WEIGHTS = (3, 7, 1, 3, 7, 1, 3, 7)
# Spreadsheets drop the leading zero of divisions 03 and 09, hence the 7-digit form.
_SHAPE = re.compile(r"^(\d{7,8})(?:-?(\d))?$")
_FRENCH_FILE = "cpv_2008_fr.csv"
_ENGLISH_FILE = "cpv_2008_en.csv"
_LANGUAGES = ("fr", "en")


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
    label_en: str


class CpvVocabulary:
    """The CPV 2008 main vocabulary with its French and English labels, loaded once."""

    def __init__(self, entries: dict[str, _Entry]) -> None:
        if not entries:
            raise ValueError("the CPV vocabulary is empty; check the CPV data files")
        self._entries = entries
        self._divisions = frozenset(code[:2] for code in entries)

    @classmethod
    def load(cls) -> CpvVocabulary:
        """The vocabulary shipped with the classifier (`data/cpv_2008_fr.csv` and `data/cpv_2008_en.csv`)."""
        return cls.from_csv(data_file(_FRENCH_FILE), data_file(_ENGLISH_FILE))

    @classmethod
    def from_csv(cls, french: Path, english: Path) -> CpvVocabulary:
        """Read the official list, a `CODE,FR` file with check digits (`03000000-1`), and its `code,label` English
        labels; every code of the list needs an English label."""
        english_labels = _english_labels(english)
        entries: dict[str, _Entry] = {}
        with french.open(encoding="utf-8", newline="") as handle:
            for line, row in enumerate(csv.DictReader(handle), start=2):
                match = _SHAPE.match(row.get("CODE") or "")
                if not match or match.group(2) is None or len(match.group(1)) != 8:
                    raise ValueError(f"{french.name} line {line}: CODE {row.get('CODE')!r} is not like '03000000-1'")
                code = match.group(1)
                if code not in english_labels:
                    raise ValueError(f"{english.name} has no label for {code}; derive it again with _derive_cpv_en.py")
                entries[code] = _Entry(int(match.group(2)), (row.get("FR") or "").strip(), english_labels[code])
        return cls(entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, code: object) -> bool:
        return code in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def label(self, code: str, language: str) -> str | None:
        """The label of a CPV 2008 code in `language` ('fr' or 'en'); None for a code outside the list."""
        if language not in _LANGUAGES:
            raise ValueError(f"CPV labels exist in {' and '.join(_LANGUAGES)} only; got language {language!r}")
        entry = self._entries.get(code)
        if entry is None:
            return None
        return entry.label_fr if language == "fr" else entry.label_en

    def label_fr(self, code: str) -> str | None:
        return self.label(code, "fr")

    def published_check_digit(self, code: str) -> int | None:
        """The check digit the official list prints for `code`, or None for a code outside the list."""
        entry = self._entries.get(code)
        return entry.check_digit if entry else None

    def check(self, raw: str) -> tuple[str | None, str | None]:
        """The 8-digit code of `raw` and a warning to attach to the notice, either of which may be None.

        - a CPV 2008 code, with or without its check digit: (code, None);
        - a well-formed code outside CPV 2008 in an existing division: (code, warning), kept because its division
          still says what the notice is about (older or newer vocabularies);
        - anything else (malformed, bad check digit, unknown division): (None, warning).
        """
        code, problem = self._read(raw)
        if problem is None:
            return code, None
        if code is None:
            return None, f"{problem}; the code was ignored"
        return code, problem

    def normalise(self, raw: str) -> str:
        """The 8-digit form of a CPV code written as '45000000', '45000000-7', ' 45000000 7 ', '3000000-1'…

        A check digit, when present, must be the published one or the computed one. A code outside CPV 2008 is
        kept when its division exists. Raises InvalidCpvCodeError for a value `check` would ignore.
        """
        code, problem = self._read(raw)
        if code is None:
            raise InvalidCpvCodeError(problem)
        return code

    def _read(self, raw: str) -> tuple[str | None, str | None]:
        """(code, None) for a CPV 2008 code; (code, why) for a kept unknown code; (None, why) for a rejected one."""
        match = _SHAPE.match("".join(raw.split()))
        if not match:
            return (
                None,
                f"CPV code {raw!r} is malformed: expected 8 digits and an optional check digit, like 45000000-7",
            )
        digits, check = match.group(1), match.group(2)
        code = digits.zfill(8)
        if len(digits) == 7 and code not in self._entries:
            return None, f"CPV code {raw!r} is malformed: it has 7 digits and {code} is not in CPV 2008"
        if code[:2] not in self._divisions:
            return None, f"CPV code {raw!r} is not in CPV 2008: no CPV division starts with {code[:2]}"
        published = self.published_check_digit(code)
        computed = cpv_check_digit(code)
        if check is not None and int(check) not in (published, computed):
            expected = computed if published is None else published
            return None, f"CPV code {raw!r} has a bad check digit: {code} takes {expected}; check it for a typo"
        if code not in self._entries:
            division = self.label(code[:2].ljust(8, "0"), "en")
            return code, f"CPV code {raw!r} is not in CPV 2008; kept as {code}, division {code[:2]} ({division})"
        return code, None


def _english_labels(path: Path) -> dict[str, str]:
    with path.open(encoding="utf-8", newline="") as handle:
        return {row["code"]: row["label"].strip() for row in csv.DictReader(handle)}
