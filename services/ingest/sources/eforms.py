"""eForms UBL notices (TED, and BOAMP since 2024) turned into canonical notices.

Covers eForms SDK 1.x: every form type, change notices, lots (and the parts of prior information notices) and
multilingual texts. The XPaths follow the SDK field definitions (BT numbers in comments where they help).

Identity and version:

- An original notice is `eforms:<its UUID>` (BT-701) at version `<its VersionID>` (BT-757, e.g. `01`).
- A change notice (`efac:Changes`) is a new version of the notice it changes, so that downstream it replaces
  it: `notice_id` is `eforms:<UUID of the changed notice>` (BT-758 without its `-NN` version suffix) and
  `version` is `<the change notice's own UUID>-<its VersionID>`, which no version of the original can equal
  and which is the same every time the same document is read. `source_id` stays the change notice's own
  UUID; `change_of` is BT-758 as published (`<UUID>-<NN>`); a `cancel` or `cancel-intent` reason (BT-140)
  marks the notice cancelled.

Languages: title and description are taken in French when the notice has a French title, else in the notice
language (BT-702), else in the first language given; the title and description in every other language go to
`translations`, keyed by ISO 639-1 code. Lots, the buyer name and the change description follow the same
choice.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal, InvalidOperation
from functools import cache
from importlib import resources
from typing import Any

from lxml import etree

from schemas.notice import (
    Address,
    Buyer,
    ContractNature,
    Lot,
    Money,
    Notice,
    NoticeFlags,
    NoticeKind,
    NoticeText,
    Place,
)
from services.ingest.sources._errors import DocumentError

SOURCE = "eforms"

_NS = {
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
    "ext": "urn:oasis:names:specification:ubl:schema:xsd:CommonExtensionComponents-2",
    "efext": "http://data.europa.eu/p27/eforms-ubl-extensions/1",
    "efac": "http://data.europa.eu/p27/eforms-ubl-extension-aggregate-components/1",
    "efbc": "http://data.europa.eu/p27/eforms-ubl-extension-basic-components/1",
}
_ROOT_NAMESPACE = re.compile(r"^urn:oasis:names:specification:ubl:schema:xsd:[A-Za-z]*Notice-2$")

_EXTENSION = "ext:UBLExtensions/ext:UBLExtension/ext:ExtensionContent/efext:EformsExtension"
# BT-701: the SDK writes schemeName="notice-id"; "notice" is accepted for producers that shorten it.
_NOTICE_ID = "cbc:ID[@schemeName='notice-id' or @schemeName='notice']"
_TITLE = "cac:ProcurementProject/cbc:Name"
_BUYER_REFERENCE = "cac:ContractingParty/cac:Party/cac:PartyIdentification/cbc:ID"
_ORGANIZATION = f"{_EXTENSION}/efac:Organizations/efac:Organization/efac:Company"
_LOTS = "cac:ProcurementProjectLot[cbc:ID/@schemeName='Lot']"
# Prior information notices split the purchase into parts (BT-137 "Part") rather than lots: same content.
_LOTS_AND_PARTS = "cac:ProcurementProjectLot[cbc:ID/@schemeName='Lot' or cbc:ID/@schemeName='Part']"
_DESCRIPTION = "cac:ProcurementProject/cbc:Description"
_CHANGED_NOTICE_VERSION = re.compile(r"^(?P<uuid>.+?)-\d{2}$")
_CANCELLING_REASONS = frozenset({"cancel", "cancel-intent"})  # change-corrig-justification codelist
_PREFERRED_LANGUAGE = "FRA"
_CPV = re.compile(r"^(?P<code>\d{8})(-\d)?$")
_TED_NOTICE_URL = "https://ted.europa.eu/en/notice/-/detail/{}"

# eForms form types (notice-types.json `formType`) as the three stages of the canonical notice.
_KIND_BY_FORM_TYPE = {
    "planning": NoticeKind.PLANNING,
    "consultation": NoticeKind.PLANNING,  # preliminary market consultation: announces a purchase to come
    "competition": NoticeKind.COMPETITION,
    "result": NoticeKind.RESULT,
    "dir-awa-pre": NoticeKind.RESULT,  # voluntary ex-ante transparency: the contract is already chosen
    "cont-modif": NoticeKind.RESULT,
    "completion": NoticeKind.RESULT,
}

# The 24 official EU languages as eForms writes them (EU "language" authority table), plus the EEA languages
# that TED also publishes in, to ISO 639-1.
_ISO_639_1 = {
    "BUL": "bg",
    "CES": "cs",
    "DAN": "da",
    "DEU": "de",
    "ELL": "el",
    "ENG": "en",
    "EST": "et",
    "FIN": "fi",
    "FRA": "fr",
    "GLE": "ga",
    "HRV": "hr",
    "HUN": "hu",
    "ITA": "it",
    "LAV": "lv",
    "LIT": "lt",
    "MLT": "mt",
    "NLD": "nl",
    "POL": "pl",
    "POR": "pt",
    "RON": "ro",
    "SLK": "sk",
    "SLV": "sl",
    "SPA": "es",
    "SWE": "sv",
    "ISL": "is",
    "NOR": "no",
}

_DATE = re.compile(r"^(?P<date>\d{4}-\d{2}-\d{2})(?P<tz>Z|[+-]\d{2}:\d{2})?$")
_TIME = re.compile(r"^(?P<time>\d{2}:\d{2}(:\d{2}(\.\d+)?)?)(?P<tz>Z|[+-]\d{2}:\d{2})?$")


def is_eforms(root: etree._Element) -> bool:
    """Whether a parsed XML document is an eForms UBL notice (ContractNotice, PriorInformationNotice, ...)."""
    namespace = etree.QName(root).namespace
    return namespace is not None and bool(_ROOT_NAMESPACE.match(namespace))


def parse_eforms(root: etree._Element) -> Notice:
    """Map an eForms UBL notice (root element of a document read by `parse_xml`) to a canonical notice.

    Raises DocumentError: `missing-field` when the notice identifier, title, buyer name or (in a change
    notice) the changed notice identifier is absent, `invalid-value` for unreadable dates, amounts or CPV
    codes, `unsupported-notice` for non-procurement notices.
    """
    notice_uuid = _required(root, _NOTICE_ID, "notice identifier (BT-701)")
    # BT-757; the eForms rules make it mandatory, and a first submission is version 01.
    version_id = _text(root, "cbc:VersionID") or "01"
    notice_language = _text(root, "cbc:NoticeLanguageCode")
    title, title_language = _localized_with_language(root, _TITLE, (_PREFERRED_LANGUAGE, notice_language))
    if title is None:
        raise _missing(root, _TITLE, "title (BT-21)")
    language = title_language or notice_language
    if language is None:
        raise _missing(root, "cbc:NoticeLanguageCode", "notice language (BT-702)")
    # Every other text follows the title's language, then the notice language, then the first one given.
    languages = (language, notice_language)
    extension = _first(root, _EXTENSION)
    changes = _first(extension, "efac:Changes") if extension is not None else None
    changed_notice = _changed_notice(root, changes) if changes is not None else None
    kind = _kind(root, extension)
    return Notice(
        notice_id=f"{SOURCE}:{_uuid_of(changed_notice) if changed_notice else notice_uuid}",
        version=f"{notice_uuid}-{version_id}" if changed_notice else version_id,
        source=SOURCE,
        source_id=notice_uuid,
        source_url=_ted_url(extension),
        procedure_id=_text(root, "cbc:ContractFolderID"),
        kind=kind,
        notice_type=_text(root, "cbc:NoticeTypeCode"),
        is_change=changes is not None,
        cancelled=changes is not None and not _CANCELLING_REASONS.isdisjoint(_change_reasons(changes)),
        change_of=changed_notice,
        change_description=_change_description(changes, languages) if changes is not None else None,
        title=title,
        description=_localized(root, _DESCRIPTION, languages),
        language=_iso_639_1(language),
        translations=_translations(root, language),
        buyer=_buyer(root, languages),
        contract_nature=_contract_nature(_first(root, "cac:ProcurementProject")),
        procedure=_text(root, "cac:TenderingProcess/cbc:ProcedureCode"),
        cpv_main=_cpv_main(root, "cac:ProcurementProject"),
        cpv_additional=_cpv_additional(root, "cac:ProcurementProject"),
        places=_places(root, "cac:ProcurementProject", languages),
        estimated_value=_money(
            root, "cac:ProcurementProject/cac:RequestedTenderTotal/cbc:EstimatedOverallContractAmount"
        ),
        published_at=_published_at(root, extension),
        deadline=_deadline(root),
        # BT-127 (/*/cbc:PlannedDate): when the buyer plans to publish the call for tenders of a planned purchase.
        planned_date=_date_only(root, "cbc:PlannedDate") if kind is NoticeKind.PLANNING else None,
        lots=[_lot(lot, languages) for lot in _all(root, _LOTS_AND_PARTS)],
        flags=_flags(root),
        links=_links(root),
    )


# --- identity, kind and changes ---


def _kind(root: etree._Element, extension: etree._Element | None) -> NoticeKind:
    subtype = _text(extension, "efac:NoticeSubType/cbc:SubTypeCode") if extension is not None else None
    form_type = _form_types_by_subtype().get(subtype) if subtype else None
    if form_type is None:
        # The NoticeTypeCode's listName is the form type, e.g. listName="competition".
        type_code = _first(root, "cbc:NoticeTypeCode")
        form_type = type_code.get("listName") if type_code is not None else None
    if form_type is None:
        raise _missing(root, f"{_EXTENSION}/efac:NoticeSubType/cbc:SubTypeCode", "notice subtype (OPP-070)")
    kind = _KIND_BY_FORM_TYPE.get(form_type)
    if kind is None:
        raise DocumentError(
            "unsupported-notice",
            f"notice subtype {subtype!r} has form type {form_type!r}, which is not a procurement notice "
            f"(accepted form types: {', '.join(sorted(_KIND_BY_FORM_TYPE))})",
        )
    return kind


@cache
def _form_types_by_subtype() -> dict[str, str]:
    """Subtype id -> form type, from the eForms SDK's notice-types.json (see data/PROVENANCE.md)."""
    text = resources.files(__package__).joinpath("data", "notice-types.json").read_text(encoding="utf-8")
    return {entry["subTypeId"]: entry["formType"] for entry in json.loads(text)["noticeSubTypes"]}


def _changed_notice(root: etree._Element, changes: etree._Element) -> str:
    # BT-758 is mandatory in a change notice: without it, the change could not be tied to the notice it changes.
    identifier = _text(changes, "efbc:ChangedNoticeIdentifier")
    if identifier is None:
        path = f"{_EXTENSION}/efac:Changes/efbc:ChangedNoticeIdentifier"
        raise _missing(root, path, "identifier of the changed notice (BT-758)")
    return identifier


def _uuid_of(changed_notice: str) -> str:
    # BT-758 is "<notice UUID>-<2-digit version>"; the notice's identity is the UUID alone.
    match = _CHANGED_NOTICE_VERSION.match(changed_notice)
    return match["uuid"] if match else changed_notice


def _change_reasons(changes: etree._Element) -> list[str]:
    return _texts(changes, "efac:ChangeReason/cbc:ReasonCode")  # BT-140


def _change_description(changes: etree._Element, languages: Sequence[str | None]) -> str | None:
    """What changed (BT-141 of every change) then why: "<change>; <change>; reason <code>: <description>"."""
    parts = [
        text
        for change in _all(changes, "efac:Change")
        if (text := _localized(change, "efbc:ChangeDescription", languages)) is not None
    ]
    for reason in _all(changes, "efac:ChangeReason"):
        code = _text(reason, "cbc:ReasonCode")
        explanation = _localized(reason, "efbc:ReasonDescription", languages)  # BT-762
        if code is not None:
            parts.append(f"reason {code}: {explanation}" if explanation else f"reason {code}")
        elif explanation is not None:
            parts.append(f"reason: {explanation}")
    return "; ".join(parts) or None


def _ted_url(extension: etree._Element | None) -> str | None:
    if extension is None:
        return None
    publication_id = _text(extension, "efac:Publication/efbc:NoticePublicationID")  # e.g. 00047522-2024
    if publication_id is None:
        return None
    return _TED_NOTICE_URL.format(publication_id.lstrip("0"))


# --- buyer ---


def _buyer(root: etree._Element, languages: Sequence[str | None]) -> Buyer:
    reference = _required(root, _BUYER_REFERENCE, "buyer reference (OPT-300)")
    company = _first(root, f"{_ORGANIZATION}[cac:PartyIdentification/cbc:ID = $reference]", reference=reference)
    company_path = f"{_ORGANIZATION}[cac:PartyIdentification/cbc:ID = '{reference}']"  # for error messages
    if company is None:
        raise _missing(root, company_path, f"buyer organization {reference}")
    name = _localized(company, "cac:PartyName/cbc:Name", languages)
    if name is None:
        raise _missing(root, f"{company_path}/cac:PartyName/cbc:Name", "buyer name (BT-500)")
    return Buyer(
        name=name,
        national_id=_text(company, "cac:PartyLegalEntity/cbc:CompanyID"),
        buyer_type=_text(
            root, "cac:ContractingParty/cac:ContractingPartyType/cbc:PartyTypeCode[@listName='buyer-legal-type']"
        ),
        main_activity=_text(root, "cac:ContractingParty/cac:ContractingActivity/cbc:ActivityTypeCode"),
        address=_address(_first(company, "cac:PostalAddress")),
        email=_text(company, "cac:Contact/cbc:ElectronicMail"),
        url=_text(company, "cbc:WebsiteURI"),
    )


def _address(postal: etree._Element | None) -> Address | None:
    if postal is None:
        return None
    street = ", ".join(_texts(postal, "cbc:StreetName | cbc:AdditionalStreetName")) or None
    address = Address(
        street=street,
        city=_text(postal, "cbc:CityName"),
        postal_code=_text(postal, "cbc:PostalZone"),
        nuts=_text(postal, "cbc:CountrySubentityCode"),
        country=_text(postal, "cac:Country/cbc:IdentificationCode"),
    )
    return address if address.model_dump(exclude_none=True) else None


# --- what is bought, where, for how much ---


def _contract_nature(project: etree._Element | None) -> ContractNature | None:
    if project is None:
        return None
    code = _text(project, "cbc:ProcurementTypeCode[@listName='contract-nature']")
    return ContractNature(code) if code is not None and code in ContractNature._value2member_map_ else None


def _cpv_main(node: etree._Element, project: str) -> str | None:
    codes = _cpv_codes(node, f"{project}/cac:MainCommodityClassification")
    return codes[0] if codes else None


def _cpv_additional(node: etree._Element, project: str) -> list[str]:
    main = _cpv_main(node, project)
    codes = _cpv_codes(node, f"{project}/cac:AdditionalCommodityClassification")
    return [code for code in dict.fromkeys(codes) if code != main]


def _cpv_codes(node: etree._Element, classification: str) -> list[str]:
    codes = []
    for raw in _texts(node, f"{classification}/cbc:ItemClassificationCode[@listName='cpv']"):
        match = _CPV.match(raw)
        if match is None:
            raise DocumentError("invalid-value", f"CPV code {raw!r} at {classification} is not 8 digits")
        codes.append(match["code"])
    return codes


def _places(node: etree._Element, project: str, languages: Sequence[str | None]) -> list[Place]:
    places = []
    for location in _all(node, f"{project}/cac:RealizedLocation"):
        address = _first(location, "cac:Address")
        place = Place(
            nuts=_text(address, "cbc:CountrySubentityCode") if address is not None else None,
            postal_code=_text(address, "cbc:PostalZone") if address is not None else None,
            city=_text(address, "cbc:CityName") if address is not None else None,
            country=_text(address, "cac:Country/cbc:IdentificationCode") if address is not None else None,
            description=_localized(location, "cbc:Description", languages),
        )
        if place.model_dump(exclude_none=True):
            places.append(place)
    return places


def _money(node: etree._Element, path: str) -> Money | None:
    amount = _first(node, path)
    if amount is None or not (amount.text or "").strip():
        return None
    currency = amount.get("currencyID")
    try:
        value = Decimal(amount.text.strip())
    except InvalidOperation:
        value = Decimal(-1)
    if currency is None or len(currency) != 3 or not value.is_finite() or value < 0:
        raise DocumentError(
            "invalid-value",
            f"amount {amount.text.strip()!r} (currencyID={currency!r}) at {path} is not a non-negative number "
            "with a 3-letter currency",
        )
    return Money(amount=value, currency=currency)


def _lot(lot: etree._Element, languages: Sequence[str | None]) -> Lot:
    return Lot(
        lot_id=_text(lot, "cbc:ID") or "",
        title=_localized(lot, _TITLE, languages),
        description=_localized(lot, _DESCRIPTION, languages),
        cpv_main=_cpv_main(lot, "cac:ProcurementProject"),
        cpv_additional=_cpv_additional(lot, "cac:ProcurementProject"),
        places=_places(lot, "cac:ProcurementProject", languages),
        estimated_value=_money(
            lot, "cac:ProcurementProject/cac:RequestedTenderTotal/cbc:EstimatedOverallContractAmount"
        ),
    )


# --- dates ---


def _published_at(root: etree._Element, extension: etree._Element | None) -> datetime | None:
    if extension is not None:
        # BT-05 is the sending date; the publication date is only known once TED has published the notice.
        published = _first(extension, "efac:Publication/efbc:PublicationDate")
        if published is not None:
            return _datetime(published, None)
    return _datetime(_first(root, "cbc:IssueDate"), _first(root, "cbc:IssueTime"))


def _deadline(root: etree._Element) -> datetime | None:
    """The first lot's time limit for tenders (BT-131), else for requests to participate (BT-1311), else for
    expressions of interest (BT-630).

    Lots usually share one deadline. Restricted procedures and design contests often only state requests to
    participate, and calls for competition by prior information only expressions of interest: that is then the
    date a company must act by.
    """
    periods = (
        "cac:TenderSubmissionDeadlinePeriod",
        "cac:ParticipationRequestReceptionPeriod",
        f"{_EXTENSION}/efac:InterestExpressionReceptionPeriod",
    )
    for period in periods:
        for end in _all(root, f"{_LOTS}/cac:TenderingProcess/{period}"):
            deadline = _datetime(_first(end, "cbc:EndDate"), _first(end, "cbc:EndTime"), end_of_day=True)
            if deadline is not None:
                return deadline
    return None


def _date_only(node: etree._Element, path: str) -> date | None:
    value = _datetime(_first(node, path), None)
    return value.date() if value is not None else None


def _datetime(
    date_node: etree._Element | None, time_node: etree._Element | None, *, end_of_day: bool = False
) -> datetime | None:
    """Combine an xs:date and an optional xs:time, both possibly zoned ("2024-01-25+01:00", "12:00:00Z").

    The time's zone wins over the date's; with neither, UTC is assumed so that the result is always aware.
    Without a time, the day starts at midnight, or ends at 23:59:59 for a deadline.
    """
    if date_node is None or not (date_node.text or "").strip():
        return None
    raw_date = date_node.text.strip()
    date_match = _DATE.match(raw_date)
    if date_match is None:
        raise _invalid_date(date_node, raw_date)
    day = date.fromisoformat(date_match["date"])
    zone = date_match["tz"]
    clock = time(23, 59, 59) if end_of_day else time(0, 0)
    if time_node is not None and (time_node.text or "").strip():
        raw_time = time_node.text.strip()
        time_match = _TIME.match(raw_time)
        if time_match is None:
            raise _invalid_date(time_node, raw_time)
        clock = time.fromisoformat(time_match["time"])
        zone = time_match["tz"] or zone
    return datetime.combine(day, clock, tzinfo=_timezone(zone))


def _timezone(zone: str | None) -> timezone:
    if zone is None or zone == "Z":
        return UTC
    sign = 1 if zone[0] == "+" else -1
    hours, minutes = int(zone[1:3]), int(zone[4:6])
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def _invalid_date(node: etree._Element, raw: str) -> DocumentError:
    return DocumentError(
        "invalid-value",
        f"{etree.QName(node).localname} {raw!r} at line {node.sourceline} is not an xs:date / xs:time "
        "such as 2024-01-25+01:00 or 12:00:00Z",
    )


# --- flags and links ---


def _flags(root: etree._Element) -> NoticeFlags:
    sme = _texts(root, ".//cbc:SMESuitableIndicator")
    # BT-71 codes are res-ws / res-pub-ser / none; BT-736 is yes / no / not-known.
    reserved_procurement = _texts(root, ".//cbc:TendererRequirementTypeCode[@listName='reserved-procurement']")
    reserved_execution = _texts(root, ".//cbc:ExecutionRequirementCode[@listName='reserved-execution']")
    strategic = set(_texts(root, ".//cbc:ProcurementTypeCode[@listName='strategic-procurement']"))  # BT-06
    return NoticeFlags(
        sme_suitable=("true" in sme) if sme else None,
        reserved=any(code != "none" for code in reserved_procurement) or "yes" in reserved_execution,
        social_criteria="soc-obj" in strategic or _any_code(root, "social-objective"),  # BT-775
        environmental_criteria="env-imp" in strategic
        or _any_code(root, "environmental-impact")  # BT-774
        or _any_code(root, "gpp-criteria"),  # BT-805
    )


def _any_code(root: etree._Element, list_name: str) -> bool:
    codes = _texts(root, f".//cbc:ProcurementTypeCode[@listName='{list_name}']")
    return any(code != "none" for code in codes)


def _links(root: etree._Element) -> list[str]:
    documents = _texts(
        root, ".//cac:CallForTendersDocumentReference/cac:Attachment/cac:ExternalReference/cbc:URI"
    )  # BT-15
    buyer_profiles = _texts(root, "cac:ContractingParty/cbc:BuyerProfileURI")  # BT-508
    return list(dict.fromkeys([*documents, *buyer_profiles]))


# --- XPath reading ---


def _all(node: etree._Element, path: str, **variables: Any) -> list[etree._Element]:
    return list(node.xpath(path, namespaces=_NS, **variables))


def _first(node: etree._Element, path: str, **variables: Any) -> etree._Element | None:
    found = _all(node, path, **variables)
    return found[0] if found else None


def _texts(node: etree._Element, path: str) -> list[str]:
    return [text for element in _all(node, path) if (text := (element.text or "").strip())]


def _text(node: etree._Element, path: str) -> str | None:
    texts = _texts(node, path)
    return texts[0] if texts else None


def _localized_with_language(
    node: etree._Element, path: str, languages: Sequence[str | None]
) -> tuple[str | None, str | None]:
    """A multilingual field's text in the first of `languages` it is given in, else its first variant; with the
    variant's languageID (eForms writes "FRA", "ENG", ...)."""
    variants = _variants(node, path)
    if not variants:
        return None, None
    for language in languages:
        for text, variant_language in variants:
            if language is not None and variant_language is not None and variant_language.upper() == language.upper():
                return text, variant_language
    return variants[0]


def _localized(node: etree._Element, path: str, languages: Sequence[str | None]) -> str | None:
    return _localized_with_language(node, path, languages)[0]


def _variants(node: etree._Element, path: str) -> list[tuple[str, str | None]]:
    return [(text, element.get("languageID")) for element in _all(node, path) if (text := (element.text or "").strip())]


def _translations(root: etree._Element, chosen_language: str) -> dict[str, NoticeText]:
    """The notice's title and description in every language but the chosen one, by ISO 639-1 code."""
    translations: dict[str, NoticeText] = {}
    for title, variant_language in _variants(root, _TITLE):
        if variant_language is None or variant_language.upper() == chosen_language.upper():
            continue
        descriptions = [
            text
            for text, language in _variants(root, _DESCRIPTION)
            if language is not None and language.upper() == variant_language.upper()
        ]
        translations.setdefault(
            _iso_639_1(variant_language), NoticeText(title=title, description=descriptions[0] if descriptions else None)
        )
    return translations


def _iso_639_1(language: str) -> str:
    return _ISO_639_1.get(language.upper(), language.lower())


def _required(root: etree._Element, path: str, what: str) -> str:
    value = _text(root, path)
    if value is None:
        raise _missing(root, path, what)
    return value


def _missing(root: etree._Element, path: str, what: str) -> DocumentError:
    return DocumentError(
        "missing-field",
        f"the {what} is missing: nothing at /{etree.QName(root).localname}/{path}; "
        "the notice must carry it to be published",
    )
