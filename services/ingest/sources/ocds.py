"""OCDS (Open Contracting Data Standard 1.0 and 1.1) documents turned into canonical notices.

Four shapes are accepted, because publishers serve all four:

- a release package: an object with a `releases` array (Armenia, the OCP examples);
- a record package: an object with a `records` array;
- a single record: an object with a `compiledRelease` (Moldova's MTender, Montréal's record endpoint);
- a single release, outside any package: an object with `ocid` and `tag` (UK Contracts Finder, Montréal, Nigeria).

A contracting process (one `ocid`) is one notice; its releases are versions of it (`version` = release `id`).
A package that carries several releases of one process gives one notice, versioned, tagged and dated by the latest
release by `date` (the later one in the package on a tie): one document must not alert N times for one process.
Its content is the releases merged in date order, as OCDS compiles a record, because a release only carries what
changed. A record gives one notice, from its `compiledRelease` (the merged current state), versioned by its latest
release.

One unusable release rejects the whole document, and the error names its position and ocid: nothing is imported
halfway without anyone noticing, and the publisher's next document is expected to be fixed.

Publisher data is messy: numbers come as strings, empty strings stand for "unknown", dates lack a time zone (UTC
is then assumed), tags come as a string instead of an array, extensions move fields around. Those are read
leniently; only a missing title or buyer, or a date or amount that cannot be read, rejects a release.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple, TypeGuard

from schemas.notice import (
    Address,
    Buyer,
    ContractNature,
    Lot,
    Money,
    Notice,
    NoticeKind,
    NoticeText,
    Place,
)
from services.ingest.sources._errors import DocumentError

SOURCE = "ocds"

# releaseTag codelist (OCDS 1.1) as the three stages of the canonical notice.
_KIND_BY_TAG = {
    "planning": NoticeKind.PLANNING,
    "planningUpdate": NoticeKind.PLANNING,
    "tender": NoticeKind.COMPETITION,
    "tenderAmendment": NoticeKind.COMPETITION,
    "tenderUpdate": NoticeKind.COMPETITION,
    "tenderCancellation": NoticeKind.COMPETITION,
    "award": NoticeKind.RESULT,
    "awardUpdate": NoticeKind.RESULT,
    "awardCancellation": NoticeKind.RESULT,
    "contract": NoticeKind.RESULT,
    "contractUpdate": NoticeKind.RESULT,
    "contractAmendment": NoticeKind.RESULT,
    "implementation": NoticeKind.RESULT,
    "implementationUpdate": NoticeKind.RESULT,
    "contractTermination": NoticeKind.RESULT,
}
_STAGE_ORDER = (NoticeKind.PLANNING, NoticeKind.COMPETITION, NoticeKind.RESULT)
_CHANGE_TAG = re.compile(r"(Amendment|Update|Cancellation)$")
_COMPILED_TAG = "compiled"

_NATURE_BY_CATEGORY = {
    "goods": ContractNature.SUPPLIES,
    "works": ContractNature.WORKS,
    "services": ContractNature.SERVICES,
}
_METHODS = frozenset({"open", "selective", "limited", "direct"})  # the closed `method` codelist

# Only the CPV scheme: CPVS (supplementary codes) and national variants such as CPV-AM are other vocabularies.
_CPV_SCHEME = "CPV"
# "45000000-7" (with check digit), "45000000", and "45233130.0" written by publishers that went through floats.
_CPV = re.compile(r"^(?P<code>\d{8})(\.0+)?(-\d)?$")

_DEFAULT_LANGUAGE = "en"  # the language OCDS assumes when a release states none
# Publishers' language tags that are not ISO 639-1: MTender writes "md" for the state language of Moldova, which
# is Romanian ("mo" was withdrawn from ISO 639 in 2008).
_LANGUAGE_ALIASES = {"md": "ro", "mo": "ro"}
_ISO_639_1 = re.compile(r"^[a-z]{2}$")
# OCDS 1.1 multilingual fields: `title_fr`, `description_es`, ... beside `title` and `description`.
_LANGUAGE_SUFFIX = re.compile(r"^[A-Za-z]{2}([-_][A-Za-z]{2})?$")

_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_END_OF_DAY = time(23, 59, 59)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class _Version(NamedTuple):
    """One contracting process as a document states it: the release to read and what identifies it."""

    ocid: str
    release: dict[str, Any]  # a release, or a record's compiled release
    version: str
    tags: list[str]
    published_at: datetime | None
    package_language: str | None
    where: str  # the release's position in the document, for error messages


def is_ocds(value: Any) -> bool:
    """Whether a parsed JSON document is an OCDS release package, record package, record, or bare release."""
    if not isinstance(value, dict):
        return False
    if isinstance(value.get("records"), list) or isinstance(value.get("compiledRelease"), dict):
        return True
    releases = value.get("releases")
    if isinstance(releases, list):
        # An empty page of a feed is still a package; otherwise its releases name their process.
        return not releases or any(isinstance(release, dict) and "ocid" in release for release in releases)
    return isinstance(value.get("ocid"), str) and "tag" in value


def parse_ocds(value: Any) -> list[Notice]:
    """Map an OCDS document (any shape `is_ocds` accepts) to one canonical notice per contracting process.

    Raises DocumentError: `missing-field` when a release has no ocid, no title or no buyer; `invalid-value` for
    dates and amounts that cannot be read; `unsupported-notice` for a release that states no procurement stage.
    The message names the release's position and ocid.
    """
    processes: dict[str, list[_Version]] = {}
    for version in _versions(value):
        processes.setdefault(version.ocid, []).append(version)
    notices = []
    for versions in processes.values():
        current = _current_state(versions)
        with _located(current.where, current.ocid):
            notices.append(_notice(current))
    return notices


def _current_state(versions: list[_Version]) -> _Version:
    """The latest version of a process, reading its releases merged in date order.

    OCDS releases are increments: an implementation release carries no tender, so the title, CPV codes and
    deadline announced earlier would be lost. Merging them the way OCDS compiles a record keeps them.
    """
    ordered = _chronological(versions)
    latest = ordered[-1]
    if len(ordered) == 1:
        return latest
    merged: dict[str, Any] = {}
    for version in ordered:
        merged = _merged(merged, version.release)
    return latest._replace(release=merged)


def _chronological(versions: list[_Version]) -> list[_Version]:
    # Undated releases count as the oldest; the sort is stable, so a tie keeps the document's order.
    return sorted(versions, key=lambda version: (version.published_at is not None, version.published_at or _EPOCH))


def _merged(earlier: dict[str, Any], later: dict[str, Any]) -> dict[str, Any]:
    """OCDS merge: objects field by field, arrays of objects with `id` by id, anything else replaced; a null
    removes the field."""
    merged = dict(earlier)
    for key, value in later.items():
        previous = merged.get(key)
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(previous, dict):
            merged[key] = _merged(previous, value)
        elif _is_identified(value) and _is_identified(previous):
            by_id = {entry["id"]: entry for entry in previous}
            for entry in value:
                by_id[entry["id"]] = _merged(by_id[entry["id"]], entry) if entry["id"] in by_id else entry
            merged[key] = list(by_id.values())
        else:
            merged[key] = value
    return merged


def _is_identified(value: Any) -> TypeGuard[list[dict[str, Any]]]:
    return isinstance(value, list) and all(
        isinstance(entry, dict) and isinstance(entry.get("id"), str | int) for entry in value
    )


# --- document shapes ---


def _versions(value: Any) -> Iterator[_Version]:
    if not isinstance(value, dict):
        raise DocumentError("unknown-format", "an OCDS document is a JSON object (a package, a record or a release)")
    package_language = _text(value, "language")
    if isinstance(value.get("records"), list):
        for position, record in enumerate(value["records"]):
            yield _record_version(record, f"records[{position}]", package_language)
    elif isinstance(value.get("compiledRelease"), dict):
        yield _record_version(value, "the record", package_language)
    elif isinstance(value.get("releases"), list):
        for position, release in enumerate(value["releases"]):
            yield _release_version(release, f"releases[{position}]", package_language)
    else:
        yield _release_version(value, "the release", package_language)


def _release_version(release: Any, where: str, package_language: str | None) -> _Version:
    if not isinstance(release, dict):
        raise DocumentError("invalid-value", f"{where} is not a JSON object; each release must be one")
    ocid = _ocid(release, where)
    with _located(where, ocid):
        return _Version(
            ocid=ocid,
            release=release,
            version=_text(release, "id") or "",
            tags=_tags(release),
            published_at=_datetime(release, "date", "date"),
            package_language=package_language,
            where=where,
        )


def _record_version(record: Any, where: str, package_language: str | None) -> _Version:
    """A record's compiled release, versioned by the record's latest release.

    Without a compiled release, the latest embedded release stands for the record; linked releases (only `url`,
    `date` and `tag`) still give the version and the tags.
    """
    if not isinstance(record, dict):
        raise DocumentError("invalid-value", f"{where} is not a JSON object; each record must be one")
    compiled = record.get("compiledRelease")
    releases = [
        _release_version(release, f"{where}.releases[{position}]", package_language)
        if "ocid" in release
        else _linked_release(release, record, f"{where}.releases[{position}]", package_language)
        for position, release in enumerate(_objects(record, "releases"))
    ]
    latest = _chronological(releases)[-1] if releases else None
    if isinstance(compiled, dict):
        ocid = _ocid(compiled, f"{where}.compiledRelease") if "ocid" in compiled else _ocid(record, where)
        with _located(where, ocid):
            compiled_tags = [tag for tag in _tags(compiled) if tag != _COMPILED_TAG]
            return _Version(
                ocid=ocid,
                release=compiled,
                version=(latest.version if latest is not None else "") or _text(compiled, "id") or "",
                tags=compiled_tags or (latest.tags if latest is not None else []),
                published_at=_datetime(compiled, "date", "compiledRelease.date")
                or (latest.published_at if latest is not None else None),
                package_language=package_language,
                where=where,
            )
    if latest is None or "ocid" not in latest.release:
        raise DocumentError(
            "missing-field",
            f"{where}: the record has no compiledRelease and no embedded release to read; "
            "publish the compiledRelease or the full releases in the record",
        )
    return latest


def _linked_release(release: dict[str, Any], record: dict[str, Any], where: str, language: str | None) -> _Version:
    ocid = _ocid(record, where) if "ocid" in record else ""
    with _located(where, ocid):
        published_at = _datetime(release, "date", "date")
    return _Version(ocid, release, _text(release, "id") or "", _tags(release), published_at, language, where)


def _ocid(release: dict[str, Any], where: str) -> str:
    ocid = _text(release, "ocid")
    if ocid is None:
        raise DocumentError(
            "missing-field",
            f"{where}: the ocid is missing; every OCDS release names its contracting process with an ocid",
        )
    return ocid


@contextmanager
def _located(where: str, ocid: str) -> Iterator[None]:
    """Prefix the errors raised inside with the release's position and ocid."""
    try:
        yield
    except DocumentError as exc:
        label = f"{where} (ocid {ocid})" if ocid else where
        raise DocumentError(exc.reason, f"{label}: {exc.message}") from None


# --- the notice ---


def _notice(version: _Version) -> Notice:
    release = version.release
    tender = _object(release, "tender")
    planning = _planning(release)
    language = _language(_text(release, "language") or version.package_language)
    items = _items(release, tender, planning)
    title, title_owner, title_field = _title(release, tender, planning, items)
    kind = _kind(version.tags, release, tender, planning)
    is_change = any(_CHANGE_TAG.search(tag) for tag in version.tags)
    cpv = _cpv_codes(items)
    return Notice(
        notice_id=f"{SOURCE}:{version.ocid}",
        version=version.version,
        source=SOURCE,
        source_id=version.ocid,
        procedure_id=version.ocid,  # the ocid is the contracting process's identifier
        kind=kind,
        notice_type=",".join(version.tags) or None,
        is_change=is_change,
        cancelled=(_text(tender, "status") or "").lower() == "cancelled" or "tenderCancellation" in version.tags,
        change_of=version.ocid if is_change else None,
        change_description=_change_description(tender) if is_change else None,
        title=title,
        description=_text(tender, "description"),
        language=language,
        translations=_translations(title_owner, title_field, tender, language, title),
        buyer=_buyer(release, tender),
        contract_nature=_NATURE_BY_CATEGORY.get((_text(tender, "mainProcurementCategory") or "").lower()),
        procedure=_procedure(tender, planning),
        cpv_main=cpv[0] if cpv else None,
        cpv_additional=cpv[1:],
        places=_places(tender, items),
        estimated_value=_estimated_value(release, tender, planning),
        published_at=version.published_at,
        deadline=_datetime(_object(tender, "tenderPeriod"), "endDate", "tender.tenderPeriod.endDate", end_of_day=True),
        planned_date=_planned_date(tender, planning) if kind is NoticeKind.PLANNING else None,
        lots=_lots(tender, items),
        links=_links(release, tender, planning),
    )


def _kind(tags: list[str], release: dict[str, Any], tender: dict[str, Any], planning: dict[str, Any]) -> NoticeKind:
    """The furthest stage the tags announce and the release carries data for.

    Some publishers tag every release with every stage (MTender writes tender, award and contract on a tender that
    is still receiving offers, with no award in it): the tags alone would hide an open call for tenders among
    results. When the tags name a single stage they are trusted; with no known tag, the content decides.
    """
    stages = {_KIND_BY_TAG[tag] for tag in tags if tag in _KIND_BY_TAG}
    if len(stages) == 1:
        return stages.pop()
    carried = _carried_stages(release, tender, planning)
    for stage in reversed(_STAGE_ORDER):
        if stage in carried and (stage in stages or not stages):
            return stage
    if stages:
        return max(stages, key=_STAGE_ORDER.index)
    raise DocumentError(
        "unsupported-notice",
        f"the release has no known tag (tag = {tags!r}) and neither planning, tender, awards nor contracts; "
        f"tag it with one of {', '.join(_KIND_BY_TAG)}",
    )


def _carried_stages(release: dict[str, Any], tender: dict[str, Any], planning: dict[str, Any]) -> set[NoticeKind]:
    carried = set()
    if _objects(release, "awards") or _objects(release, "contracts"):
        carried.add(NoticeKind.RESULT)
    if tender and (_text(tender, "status") or "").lower() != "planned":
        carried.add(NoticeKind.COMPETITION)
    if planning or tender:
        carried.add(NoticeKind.PLANNING)
    return carried


def _change_description(tender: dict[str, Any]) -> str | None:
    # 1.1 lists amendments, the latest last; 1.0 had a single `amendment`.
    amendments = _objects(tender, "amendments") or [_object(tender, "amendment")]
    latest = amendments[-1]
    return _text(latest, "description") or _text(latest, "rationale")


# --- texts ---


def _title(
    release: dict[str, Any], tender: dict[str, Any], planning: dict[str, Any], items: list[dict[str, Any]]
) -> tuple[str, dict[str, Any], str]:
    """The title, and the object and field it was read from (for its translations).

    A planning release may only describe its budget, and Montréal's award releases only their items: the first
    text that names the purchase is taken, and an ocid alone is not a title anyone could act on.
    """
    budget = _object(planning, "budget")
    awards = _objects(release, "awards")
    contracts = _objects(release, "contracts")
    candidates = [
        (tender, "title"),
        (budget, "description"),
        (budget, "project"),
        *((award, "title") for award in awards[:1]),
        *((award, "description") for award in awards[:1]),
        *((contract, "title") for contract in contracts[:1]),
        *((item, "description") for item in items[:1]),
    ]
    for owner, field in candidates:
        title = _text(owner, field)
        if title is not None:
            return title, owner, field
    raise DocumentError(
        "missing-field",
        "the title is missing: none of tender.title, planning.budget.description, planning.budget.project, "
        "awards[0].title, awards[0].description, contracts[0].title or items[0].description has text; "
        "publish tender.title",
    )


def _translations(
    owner: dict[str, Any], field: str, tender: dict[str, Any], language: str, title: str
) -> dict[str, NoticeText]:
    translations: dict[str, NoticeText] = {}
    for key in owner:
        prefix, _, suffix = key.rpartition("_")
        if prefix != field or not _LANGUAGE_SUFFIX.match(suffix):
            continue
        other_language = _language(suffix)
        text = _text(owner, key)
        # Publishers copy the main text into its own language's field, or into every field.
        if text is None or other_language == language or text == title:
            continue
        translations[other_language] = NoticeText(title=text, description=_text(tender, f"description_{suffix}"))
    return translations


def _language(tag: str | None) -> str:
    """ISO 639-1 code from a release's language tag ("fr", "en-GB", "HY", "md"); English when absent or unknown."""
    if tag is None:
        return _DEFAULT_LANGUAGE
    primary = re.split(r"[-_]", tag.strip().lower())[0]
    primary = _LANGUAGE_ALIASES.get(primary, primary)
    return primary if _ISO_639_1.match(primary) else _DEFAULT_LANGUAGE


# --- buyer ---


def _buyer(release: dict[str, Any], tender: dict[str, Any]) -> Buyer:
    """The buyer named by the release's `buyer` reference, else the party with role buyer, else the procuring
    entity.

    The reference comes first because OCDS makes it the buyer's identity; a procuring entity may be a delegate
    (Montréal names "Fonctionnaires" as procuring entity of its departments' purchases).
    """
    parties = _objects(release, "parties")
    reference = _object(release, "buyer")
    procuring_entity = _object(tender, "procuringEntity")
    candidates = [
        *_parties_with_id(parties, _text(reference, "id")),
        reference,
        *(party for party in parties if "buyer" in _roles(party)),
        *(party for party in parties if "procuringEntity" in _roles(party)),
        *_parties_with_id(parties, _text(procuring_entity, "id")),
        procuring_entity,
    ]
    for organization in candidates:
        name = _text(organization, "name") or _text(_object(organization, "identifier"), "legalName")
        if name is not None:
            contact = _object(organization, "contactPoint")
            return Buyer(
                name=name,
                national_id=_organization_id(_object(organization, "identifier")),
                address=_address(_object(organization, "address")),
                email=_text(contact, "email"),
                url=_text(contact, "url") or _text(_object(organization, "identifier"), "uri"),
            )
    raise DocumentError(
        "missing-field",
        "the buyer is missing: neither the release's buyer, a party with role 'buyer' or 'procuringEntity', "
        "nor tender.procuringEntity has a name; publish the buyer in parties[] with role 'buyer'",
    )


def _parties_with_id(parties: list[dict[str, Any]], party_id: str | None) -> list[dict[str, Any]]:
    return [party for party in parties if party_id is not None and _text(party, "id") == party_id]


def _roles(party: dict[str, Any]) -> list[str]:
    roles = party.get("roles")
    return [role for role in roles if isinstance(role, str)] if isinstance(roles, list) else []


def _organization_id(identifier: dict[str, Any]) -> str | None:
    # org-id.guide form: "<scheme>-<id>", e.g. GB-LAC-E09000003.
    scheme, number = _text(identifier, "scheme"), _text(identifier, "id")
    if number is None:
        return None
    return f"{scheme}-{number}" if scheme else number


def _address(address: dict[str, Any]) -> Address | None:
    result = Address(
        street=_text(address, "streetAddress"),
        city=_text(address, "locality"),
        postal_code=_text(address, "postalCode"),
        country=_text(address, "countryName"),  # as published: a name ("Canada") or a code ("AM")
    )
    return result if result.model_dump(exclude_none=True) else None


# --- what is bought, where, for how much ---


def _items(release: dict[str, Any], tender: dict[str, Any], planning: dict[str, Any]) -> list[dict[str, Any]]:
    """The items of the tender; else of the planned tender (Armenia's planning releases carry it under
    `planning.tender`); else of the awards and contracts (award-only releases)."""
    for owner in (tender, _object(planning, "tender")):
        items = _objects(owner, "items")
        if items:
            return items
    entries = [*_objects(release, "awards"), *_objects(release, "contracts")]
    return [item for entry in entries for item in _objects(entry, "items")]


def _cpv_codes(items: list[dict[str, Any]]) -> list[str]:
    """CPV codes of the items, the first item's classification first, without repeats.

    Identifiers that are not CPV-shaped (publishers fill the field with internal codes) are left out rather than
    rejecting the release: the classifier infers a code from the title when none is left.
    """
    classifications = [_object(item, "classification") for item in items]
    classifications += [extra for item in items for extra in _objects(item, "additionalClassifications")]
    codes = [code for classification in classifications if (code := _cpv(classification)) is not None]
    return list(dict.fromkeys(codes))


def _cpv(classification: dict[str, Any]) -> str | None:
    if (_text(classification, "scheme") or "").upper() != _CPV_SCHEME:
        return None
    raw = classification.get("id")
    if isinstance(raw, int | float) and not isinstance(raw, bool) and float(raw).is_integer():
        # A number lost the code's leading zero (03000000 became 3000000).
        raw = str(int(raw)).zfill(8)
    match = _CPV.match(raw.strip()) if isinstance(raw, str) else None
    return match["code"] if match else None


def _places(tender: dict[str, Any], items: list[dict[str, Any]]) -> list[Place]:
    """Delivery places from the location and address extensions, on the items and on the tender."""
    places: list[Place] = []
    for owner in (tender, *items):
        for address in [*_objects(owner, "deliveryAddresses"), _object(owner, "deliveryAddress")]:
            places.append(
                Place(
                    city=_text(address, "locality"),
                    postal_code=_text(address, "postalCode"),
                    country=_text(address, "countryName"),
                    description=_text(address, "region"),
                )
            )
        for location in [*_objects(owner, "deliveryLocations"), _object(owner, "deliveryLocation")]:
            gazetteer = _object(location, "gazetteer")
            nuts = _strings(gazetteer, "identifiers") if (_text(gazetteer, "scheme") or "").upper() == "NUTS" else []
            places.append(Place(nuts=nuts[0] if nuts else None, description=_text(location, "description")))
    unique = {place.model_dump_json(): place for place in places if place.model_dump(exclude_none=True)}
    return list(unique.values())


def _estimated_value(release: dict[str, Any], tender: dict[str, Any], planning: dict[str, Any]) -> Money | None:
    """The tender's value; else the planning budget; else, for an award release, the total of its awards."""
    value = _money(_object(tender, "value"), "tender.value")
    if value is not None:
        return value
    budget = _object(planning, "budget")
    # OCDS 1.1 names the budget's value `amount`; some publishers write `value`.
    value = _money(_object(budget, "amount"), "planning.budget.amount") or _money(
        _object(budget, "value"), "planning.budget.value"
    )
    if value is not None:
        return value
    awarded = [
        money
        for position, award in enumerate(_objects(release, "awards"))
        if (money := _money(_object(award, "value"), f"awards[{position}].value")) is not None
    ]
    currencies = {money.currency for money in awarded}
    if len(currencies) != 1:
        return None  # no award value, or amounts in several currencies that cannot be added
    return Money(amount=sum((money.amount for money in awarded), Decimal(0)), currency=currencies.pop())


def _money(value: dict[str, Any], path: str) -> Money | None:
    """An OCDS Value, or None when the amount or the currency is not stated (an empty string means unknown)."""
    raw_amount, currency = value.get("amount"), _text(value, "currency")
    if raw_amount is None or isinstance(raw_amount, bool) or raw_amount == "" or currency is None:
        return None
    try:
        amount = Decimal(str(raw_amount).strip())
    except InvalidOperation:
        amount = Decimal("NaN")
    if not amount.is_finite() or not re.fullmatch(r"[A-Za-z]{3}", currency):
        raise DocumentError(
            "invalid-value", f"{path} {raw_amount!r} {currency!r} is not an amount with a 3-letter ISO 4217 currency"
        )
    if amount < 0:
        return None  # OCDS allows negative values (Armenia's budget cuts); an estimate cannot be one
    return Money(amount=amount, currency=currency.upper())


def _procedure(tender: dict[str, Any], planning: dict[str, Any]) -> str | None:
    """The `method` code (open, selective, limited, direct); publishers' free texts (procurementMethodDetails,
    "Licitaţie publică") are not codes a subscriber could filter on."""
    for owner in (tender, _object(planning, "tender")):
        method = (_text(owner, "procurementMethod") or "").lower()
        if method in _METHODS:
            return method
    return None


def _planned_date(tender: dict[str, Any], planning: dict[str, Any]) -> date | None:
    """When the planned tender should open: the start of its tender period."""
    for owner in (tender, _object(planning, "tender")):
        start = _datetime(_object(owner, "tenderPeriod"), "startDate", "tender.tenderPeriod.startDate")
        if start is not None:
            return start.date()
    return None


def _lots(tender: dict[str, Any], items: list[dict[str, Any]]) -> list[Lot]:
    """Lots of the lots extension, with the CPV codes and places of their items (`relatedLot`)."""
    lots = []
    for position, lot in enumerate(_objects(tender, "lots")):
        lot_id = _text(lot, "id")
        if lot_id is None:
            continue
        lot_items = [item for item in items if _text(item, "relatedLot") == lot_id]
        codes = _cpv_codes(lot_items)
        lots.append(
            Lot(
                lot_id=lot_id,
                title=_text(lot, "title"),
                description=_text(lot, "description"),
                cpv_main=codes[0] if codes else None,
                cpv_additional=codes[1:],
                places=_places({}, lot_items),
                estimated_value=_money(_object(lot, "value"), f"tender.lots[{position}].value"),
            )
        )
    return lots


def _links(release: dict[str, Any], tender: dict[str, Any], planning: dict[str, Any]) -> list[str]:
    owners = [tender, planning, *_objects(release, "awards"), *_objects(release, "contracts")]
    urls = [url for owner in owners for document in _objects(owner, "documents") if (url := _text(document, "url"))]
    return list(dict.fromkeys(urls))


# --- dates ---


def _datetime(owner: dict[str, Any], key: str, path: str, *, end_of_day: bool = False) -> datetime | None:
    """An ISO 8601 date-time; UTC when it has no offset; a bare date starts its day, or ends it for a deadline."""
    raw = _text(owner, key)
    if raw is None:
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise DocumentError(
            "invalid-value", f"{path} {raw!r} is not an ISO 8601 date-time such as 2017-06-13T10:00:00Z"
        ) from None
    if end_of_day and _DATE_ONLY.match(raw):
        value = datetime.combine(value.date(), _END_OF_DAY)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


# --- JSON reading: wrong types read as absent ---


def _planning(release: dict[str, Any]) -> dict[str, Any]:
    # Armenia publishes `planning` as an array of plans on tender releases; the first plan stands for them.
    planning = release.get("planning")
    if isinstance(planning, list):
        planning = next((plan for plan in planning if isinstance(plan, dict)), {})
    return planning if isinstance(planning, dict) else {}


def _tags(release: dict[str, Any]) -> list[str]:
    tag = release.get("tag")
    if isinstance(tag, str):  # Montréal writes a single tag as a string
        tag = [tag]
    return [value.strip() for value in tag if isinstance(value, str) and value.strip()] if isinstance(tag, list) else []


def _object(owner: dict[str, Any], key: str) -> dict[str, Any]:
    value = owner.get(key)
    return value if isinstance(value, dict) else {}


def _objects(owner: dict[str, Any], key: str) -> list[dict[str, Any]]:
    values = owner.get(key)
    return [value for value in values if isinstance(value, dict)] if isinstance(values, list) else []


def _strings(owner: dict[str, Any], key: str) -> list[str]:
    values = owner.get(key)
    if not isinstance(values, list):
        return []
    return [text for value in values if isinstance(value, str) and (text := value.strip())]


def _text(owner: dict[str, Any], key: str) -> str | None:
    """A field's text, stripped; numbers as their text; None for absent, null, empty or non-scalar values."""
    value = owner.get(key)
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        value = str(value)
    if not isinstance(value, str):
        return None
    return value.strip() or None
