"""Duplicate groups: one key shared by the notices that publish the same procedure, whatever their source.

The classifier is stateless, so the group is computed from one notice alone, and two publications of the same
procedure must compute the same key. In order:

1. `proc:<uuid>`: the eForms procedure identifier (BT-04, `cbc:ContractFolderID`, a UUID). TED and BOAMP both
   publish eForms notices since 2024 and the identifier is the same in both, and in every notice of the
   procedure (prior information, call, changes, award).
2. `ref:<source>:<identifier>`: the procedure identifier a source gives its own notices (an OCDS ocid, the
   BOAMP IDWEB of the procedure's first notice). It only names the procedure within that source, but it
   keeps the group stable across the versions of a notice, whatever they change.
3. `fuzzy:<20 hex digits>`: a SHA-256 of the buyer, the normalised title and the deadline day. The buyer is
   its SIREN when it gives a valid SIRET, SIREN or French VAT number (so that two establishments of one buyer
   agree), else its normalised name. The deadline day is taken in Paris time. Without a deadline, or with
   fewer than `_MIN_TITLE_WORDS` significant title words, the evidence is too weak to claim that two
   notices are one procedure: no group.

Titles are normalised so that two sources' spellings of one title agree: case, accents, ligatures, elisions,
punctuation, stop words, and leading notice-type phrases such as "Avis d'appel public à la concurrence -".
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime, time
from zoneinfo import ZoneInfo

from schemas.filtering.text import words
from schemas.notice import Notice

_MIN_TITLE_WORDS = 3
_FUZZY_DIGEST_CHARS = 20

_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_BOAMP = "boamp"

_PARIS = ZoneInfo("Europe/Paris")
# Parsers turn a deadline published as a bare date into the last second of that day.
_END_OF_DAY = time(23, 59, 59)

# SIRET (14 digits) or SIREN (9 digits), written with spaces, dots or dashes; or a French VAT number.
_SEPARATORS = re.compile(r"[\s.\-]")
_SIRET_OR_SIREN = re.compile(r"^(\d{9})(\d{5})?$")
_FRENCH_VAT = re.compile(r"^FR[0-9A-Z]{2}(\d{9})$")

_FRENCH_STOP_WORDS = (
    "a au aux avec ce ces cet cette dans de des du en et la le les leur leurs ou par pour sa sans ses son sur un une"
)
_ENGLISH_STOP_WORDS = "a an and at by for from in of on or the to with"
_STOP_WORDS = frozenset(_FRENCH_STOP_WORDS.split()) | frozenset(_ENGLISH_STOP_WORDS.split())
# Notice-type phrases some sources put before the title, as word sequences after normalisation.
_TITLE_PREFIXES = tuple(
    tuple(prefix.split())
    for prefix in (
        "avis appel public concurrence",
        "avis appel public candidatures",
        "avis appel offres",
        "avis marche",
        "avis concession",
        "avis preinformation",
        "aapc",
        "appel offres",
        "contract notice",
        "prior information notice",
    )
)


def duplicate_group(notice: Notice) -> str | None:
    """The key shared by every publication of the notice's procedure, or None when nothing identifies it.

    See the module docstring for the three kinds of key and the order they are tried in.
    """
    procedure_id = (notice.procedure_id or "").strip()
    if _UUID.match(procedure_id.lower()):
        return f"proc:{procedure_id.lower()}"
    # BOAMP publishes a correction under its own IDWEB, and its Opendatasoft records do not say what the
    # corrected notice was, so the parser may give the correction's own IDWEB as its procedure.
    if notice.source == _BOAMP and notice.is_change and notice.change_of:
        return f"ref:{_BOAMP}:{notice.change_of}"
    if procedure_id:
        return f"ref:{notice.source}:{procedure_id}"
    return _fuzzy_group(notice)


def _fuzzy_group(notice: Notice) -> str | None:
    if notice.deadline is None:
        return None
    title = _title_words(notice.title)
    if len(title) < _MIN_TITLE_WORDS:
        return None
    parts = (_buyer_identity(notice), " ".join(title), _deadline_day(notice.deadline))
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()
    return f"fuzzy:{digest[:_FUZZY_DIGEST_CHARS]}"


def _buyer_identity(notice: Notice) -> str:
    siren = _siren(notice.buyer.national_id)
    if siren is not None:
        return f"siren:{siren}"
    return "name:" + " ".join(_significant_words(notice.buyer.name))


def _siren(national_id: str | None) -> str | None:
    """The SIREN in a SIRET, SIREN or French VAT number; None for anything else, foreign identifiers included.

    Only a SIREN with a valid Luhn key is used: sources also publish placeholders ("n/a", "123 456 789").
    """
    if national_id is None:
        return None
    compact = _SEPARATORS.sub("", national_id).upper()
    match = _SIRET_OR_SIREN.match(compact) or _FRENCH_VAT.match(compact)
    if match is None or not _luhn_valid(match[1]):
        return None
    return match[1]


def _luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char) * (2 if position % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def _deadline_day(deadline: datetime) -> str:
    """The deadline's calendar day in Paris; a bare date (end of day) keeps the day it was published for."""
    # Without a zone, sources publish French local time.
    if deadline.tzinfo is None or deadline.time() == _END_OF_DAY:
        return deadline.date().isoformat()
    return deadline.astimezone(_PARIS).date().isoformat()


def _title_words(title: str) -> list[str]:
    found = _significant_words(title)
    stripped = True
    while stripped:
        stripped = False
        for prefix in _TITLE_PREFIXES:
            if tuple(found[: len(prefix)]) == prefix and len(found) > len(prefix):
                found = found[len(prefix) :]
                stripped = True
    return found


def _significant_words(text: str) -> list[str]:
    return [word for word in words(text) if word not in _STOP_WORDS]
