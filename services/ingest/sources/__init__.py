"""Source documents turned into canonical notices. Pure: no I/O beyond bundled data files.

One document may hold several notices (an OCDS package, a buyer's purchase plan): `parse_document` returns
them all. The content decides the format; the content type and file name only break ties and name the
family (XML, JSON, CSV) of a document too broken to recognise.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any, NamedTuple

from lxml import etree
from pydantic import ValidationError

from schemas.notice import Notice
from services.ingest.sources._errors import DocumentError
from services.ingest.sources._xml import MAX_DOCUMENT_BYTES, parse_xml
from services.ingest.sources.boamp import is_boamp_record, is_boamp_xml, parse_boamp_record, parse_boamp_xml
from services.ingest.sources.eforms import is_eforms, parse_eforms
from services.ingest.sources.ocds import is_ocds, parse_ocds
from services.ingest.sources.purchase_plan import looks_like_purchase_plan, parse_purchase_plan

__all__ = ["MAX_DOCUMENT_BYTES", "DocumentError", "accepted_formats", "parse_document", "source_format"]


class _XmlFormat(NamedTuple):
    name: str
    recognises: Callable[[etree._Element], bool]
    parse: Callable[[etree._Element], list[Notice]]


class _JsonFormat(NamedTuple):
    name: str
    recognises: Callable[[Any], bool]
    parse: Callable[[Any], list[Notice]]


# Every format, recognised from its content; the first that recognises a document parses it.
_XML_FORMATS: tuple[_XmlFormat, ...] = (
    _XmlFormat(
        "eForms UBL notice (root namespace urn:oasis:names:specification:ubl:schema:xsd:*Notice-2)",
        is_eforms,
        lambda root: [parse_eforms(root)],
    ),
    _XmlFormat("BOAMP notice (DILA XML v230)", is_boamp_xml, parse_boamp_xml),
)
_JSON_FORMATS: tuple[_JsonFormat, ...] = (
    _JsonFormat("OCDS release or record package, record or release", is_ocds, parse_ocds),
    _JsonFormat("BOAMP record (Opendatasoft export or record, DILA API record)", is_boamp_record, parse_boamp_record),
    _JsonFormat(
        "canonical notice (tenderwatch JSON, schema_version 1)", lambda v: _is_canonical(v), lambda v: [_canonical(v)]
    ),
)

_PURCHASE_PLAN = "buyer's purchase plan (CSV, docs/purchase-plan-format.md)"

_UTF8_BOM = b"\xef\xbb\xbf"


def parse_document(
    data: bytes,
    *,
    content_type: str | None = None,
    filename: str | None = None,
    max_bytes: int = MAX_DOCUMENT_BYTES,
) -> list[Notice]:
    """Detect the format of a source document and parse it into canonical notices (one or more).

    Notices whose source gives no revision get a content hash as `version`, so that the same content is
    always the same version and a changed one a new version. Raises DocumentError.
    """
    if len(data) > max_bytes:
        raise DocumentError("too-large", f"the document is {len(data)} bytes, over the limit of {max_bytes} bytes")
    family = _family(data, content_type, filename)
    if family == "xml":
        notices = _parse_xml(data, max_bytes)
    elif family == "json":
        notices = _parse_json(data)
    elif family == "csv":
        notices = parse_purchase_plan(data)
    else:
        raise DocumentError(
            "unknown-format", f"the document is neither XML, JSON nor a purchase plan; accepted: {accepted_formats()}"
        )
    if not notices:
        raise DocumentError("empty-document", "the document holds no notice")
    return [_with_version(notice) for notice in notices]


def accepted_formats() -> str:
    return "; ".join([*(f.name for f in _XML_FORMATS), *(f.name for f in _JSON_FORMATS), _PURCHASE_PLAN])


def _family(data: bytes, content_type: str | None, filename: str | None) -> str | None:
    start = data.removeprefix(_UTF8_BOM).lstrip()[:1]
    media = (content_type or "").split(";")[0].strip().lower()
    name = (filename or "").lower()
    if start == b"<" or media.endswith("xml") or name.endswith(".xml"):
        return "xml"
    if start in (b"{", b"[") or media.endswith("json") or name.endswith(".json"):
        return "json"
    if media in ("text/csv", "application/csv") or name.endswith(".csv") or looks_like_purchase_plan(data):
        return "csv"
    return None


def _parse_xml(data: bytes, max_bytes: int) -> list[Notice]:
    root = parse_xml(data, max_bytes=max_bytes)
    for xml_format in _XML_FORMATS:
        if xml_format.recognises(root):
            return xml_format.parse(root)
    raise DocumentError(
        "unknown-format",
        f"the XML root element {root.tag} is not a known notice format; accepted: {accepted_formats()}",
    )


def _parse_json(data: bytes) -> list[Notice]:
    try:
        value = json.loads(data.removeprefix(_UTF8_BOM))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        where = f" at line {exc.lineno}, column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else ""
        raise DocumentError("malformed-json", f"the document is not valid JSON{where}: {exc}") from None
    for json_format in _JSON_FORMATS:
        if json_format.recognises(value):
            return json_format.parse(value)
    raise DocumentError(
        "unknown-format", f"the JSON document is not a known notice format; accepted: {accepted_formats()}"
    )


def _is_canonical(value: Any) -> bool:
    return isinstance(value, dict) and value.get("schema_version") == 1 and "notice_id" in value and "buyer" in value


# Sources whose identifiers only their own parsers may mint: a canonical notice cannot claim them.
_RESERVED_SOURCES = frozenset({"eforms", "ocds", "boamp", "plan"})


def source_format(notice: Notice) -> str:
    """The format a notice was read from: a feed's own (`eforms`, `ocds`, `boamp`, `plan`), else `canonical`."""
    return notice.source if notice.source in _RESERVED_SOURCES else "canonical"


def _canonical(value: dict[str, Any]) -> Notice:
    try:
        notice = Notice.model_validate(value)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise DocumentError("invalid-value", f"canonical notice: {where}: {first['msg']}") from None
    if notice.source in _RESERVED_SOURCES:
        raise DocumentError(
            "invalid-value",
            f"canonical notice: source {notice.source!r} is reserved for documents in that format; send the "
            "original document, or name your own source",
        )
    if notice.notice_id != f"{notice.source}:{notice.source_id}":
        raise DocumentError(
            "invalid-value",
            f"canonical notice: notice_id must be '{notice.source}:{notice.source_id}' (source:source_id), "
            f"not {notice.notice_id!r}",
        )
    return notice


def _with_version(notice: Notice) -> Notice:
    if notice.version:
        return notice
    digest = hashlib.sha256(notice.model_dump_json(exclude={"version"}).encode()).hexdigest()
    return notice.model_copy(update={"version": f"h{digest[:16]}"})
