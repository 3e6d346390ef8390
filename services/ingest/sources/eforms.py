"""eForms UBL notices (TED, and BOAMP since 2024) turned into canonical notices.

Covers eForms SDK 1.x: every form type, change notices, lots and multilingual texts. The XPaths follow the
SDK field definitions (BT numbers in comments where they help).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal, InvalidOperation
from functools import cache
from importlib import resources
from typing import Any

from lxml import etree

from schemas.notice import Address, Buyer, ContractNature, Lot, Money, Notice, NoticeFlags, NoticeKind, Place
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
_CHANGED_NOTICE_VERSION = re.compile(r"^(?P<uuid>.+?)-\d{2}$")
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

    Raises DocumentError: `missing-field` when the notice identifier, title or buyer name is absent,
    `invalid-value` for unreadable dates or amounts, `unsupported-notice` for non-procurement notices.
    """
    notice_uuid = _required(root, _NOTICE_ID, "notice identifier (BT-701)")
    notice_language = _text(root, "cbc:NoticeLanguageCode")
    title, title_language = _localized_with_language(root, _TITLE, notice_language)
    if title is None:
        raise _missing(root, _TITLE, "title (BT-21)")
    language = title_language or notice_language
    if language is None:
        raise _missing(root, "cbc:NoticeLanguageCode", "notice language (BT-702)")
    extension = _first(root, _EXTENSION)
    changes = _first(extension, "efac:Changes") if extension is not None else None
    lots = [_lot(lot, language) for lot in _all(root, _LOTS)]
    return Notice(
        notice_id=f"{SOURCE}:{notice_uuid}",
        # BT-757; the eForms rules make it mandatory, and a first submission is version 01.
        version=_text(root, "cbc:VersionID") or "01",
        source=SOURCE,
        source_id=notice_uuid,
        source_url=_ted_url(extension),
        procedure_id=_text(root, "cbc:ContractFolderID"),
        kind=_kind(root, extension),
        notice_type=_text(root, "cbc:NoticeTypeCode"),
        is_change=changes is not None,
        cancelled=changes is not None and _text(changes, "efac:ChangeReason/cbc:ReasonCode") == "cancel",
        change_of=_changed_notice(changes) if changes is not None else None,
        change_description=_change_description(changes, language) if changes is not None else None,
        title=title,
        description=_localized(root, "cac:ProcurementProject/cbc:Description", language),
        language=_ISO_639_1.get(language.upper(), language.lower()),
        buyer=_buyer(root, language),
        contract_nature=_contract_nature(_first(root, "cac:ProcurementProject")),
        procedure=_text(root, "cac:TenderingProcess/cbc:ProcedureCode"),
        cpv_main=_cpv_main(root, "cac:ProcurementProject"),
        cpv_additional=_cpv_additional(root, "cac:ProcurementProject"),
        places=_places(root, "cac:ProcurementProject", language),
        estimated_value=_money(
            root, "cac:ProcurementProject/cac:RequestedTenderTotal/cbc:EstimatedOverallContractAmount"
        ),
        published_at=_published_at(root, extension),
        deadline=_deadline(root),
        planned_date=_date_only(root, "cbc:PlannedDate"),  # BT-127, only in prior information notices
        lots=lots,
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


def _changed_notice(changes: etree._Element) -> str | None:
    # BT-758 is "<notice UUID>-<2-digit version>"; the canonical identity is the UUID alone.
    identifier = _text(changes, "efbc:ChangedNoticeIdentifier")
    if identifier is None:
        return None
    match = _CHANGED_NOTICE_VERSION.match(identifier)
    return match["uuid"] if match else identifier


def _change_description(changes: etree._Element, language: str) -> str | None:
    descriptions = [
        text
        for change in _all(changes, "efac:Change")
        if (text := _localized(change, "efbc:ChangeDescription", language)) is not None
    ]
    if descriptions:
        return "; ".join(descriptions)
    return _localized(changes, "efac:ChangeReason/efbc:ReasonDescription", language)


def _ted_url(extension: etree._Element | None) -> str | None:
    if extension is None:
        return None
    publication_id = _text(extension, "efac:Publication/efbc:NoticePublicationID")  # e.g. 00047522-2024
    if publication_id is None:
        return None
    return _TED_NOTICE_URL.format(publication_id.lstrip("0"))


# --- buyer ---


def _buyer(root: etree._Element, language: str) -> Buyer:
    reference = _required(root, _BUYER_REFERENCE, "buyer reference (OPT-300)")
    company = _first(root, f"{_ORGANIZATION}[cac:PartyIdentification/cbc:ID = $reference]", reference=reference)
    company_path = f"{_ORGANIZATION}[cac:PartyIdentification/cbc:ID = '{reference}']"  # for error messages
    if company is None:
        raise _missing(root, company_path, f"buyer organization {reference}")
    name = _localized(company, "cac:PartyName/cbc:Name", language)
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


def _places(node: etree._Element, project: str, language: str) -> list[Place]:
    places = []
    for location in _all(node, f"{project}/cac:RealizedLocation"):
        address = _first(location, "cac:Address")
        place = Place(
            nuts=_text(address, "cbc:CountrySubentityCode") if address is not None else None,
            postal_code=_text(address, "cbc:PostalZone") if address is not None else None,
            city=_text(address, "cbc:CityName") if address is not None else None,
            country=_text(address, "cac:Country/cbc:IdentificationCode") if address is not None else None,
            description=_localized(location, "cbc:Description", language),
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


def _lot(lot: etree._Element, language: str) -> Lot:
    return Lot(
        lot_id=_text(lot, "cbc:ID") or "",
        title=_localized(lot, "cac:ProcurementProject/cbc:Name", language),
        description=_localized(lot, "cac:ProcurementProject/cbc:Description", language),
        cpv_main=_cpv_main(lot, "cac:ProcurementProject"),
        cpv_additional=_cpv_additional(lot, "cac:ProcurementProject"),
        places=_places(lot, "cac:ProcurementProject", language),
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


def _localized_with_language(node: etree._Element, path: str, language: str | None) -> tuple[str | None, str | None]:
    """The text in `language` among a multilingual field's variants, else the first; with its languageID."""
    variants = [
        (text, element.get("languageID")) for element in _all(node, path) if (text := (element.text or "").strip())
    ]
    if not variants:
        return None, None
    for text, variant_language in variants:
        if language is not None and variant_language is not None and variant_language.upper() == language.upper():
            return text, variant_language
    return variants[0]


def _localized(node: etree._Element, path: str, language: str) -> str | None:
    return _localized_with_language(node, path, language)[0]


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
