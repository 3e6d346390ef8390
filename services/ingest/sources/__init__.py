"""Source documents (eForms XML, ...) turned into canonical notices. Pure: no I/O beyond bundled data files."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from lxml import etree

from schemas.notice import Notice
from services.ingest.sources._errors import DocumentError
from services.ingest.sources._xml import MAX_DOCUMENT_BYTES, parse_xml
from services.ingest.sources.eforms import is_eforms, parse_eforms

__all__ = ["MAX_DOCUMENT_BYTES", "DocumentError", "parse_document"]


class _XmlFormat(NamedTuple):
    name: str
    recognises: Callable[[etree._Element], bool]
    parse: Callable[[etree._Element], Notice]


# Every XML format, recognised from its root element; the first that recognises a document parses it.
_XML_FORMATS: tuple[_XmlFormat, ...] = (
    _XmlFormat(
        "eForms UBL notice (root namespace urn:oasis:names:specification:ubl:schema:xsd:*Notice-2)",
        is_eforms,
        parse_eforms,
    ),
)

_UTF8_BOM = b"\xef\xbb\xbf"


def parse_document(
    data: bytes,
    *,
    content_type: str | None = None,
    filename: str | None = None,
    max_bytes: int = MAX_DOCUMENT_BYTES,
) -> Notice:
    """Detect the format of a source document and parse it into a canonical notice.

    The content decides the format; `content_type` and `filename` are hints, used to report a broken document
    as malformed XML rather than as an unknown format. Raises DocumentError.
    """
    if len(data) > max_bytes:
        raise DocumentError("too-large", f"the document is {len(data)} bytes, over the limit of {max_bytes} bytes")
    if _looks_like_xml(data, content_type, filename):
        root = parse_xml(data, max_bytes=max_bytes)
        for xml_format in _XML_FORMATS:
            if xml_format.recognises(root):
                return xml_format.parse(root)
        raise DocumentError(
            "unknown-format",
            f"the XML root element {root.tag} is not a known notice format; accepted: {_accepted_formats()}",
        )
    raise DocumentError("unknown-format", f"the document is not XML; accepted: {_accepted_formats()}")


def _looks_like_xml(data: bytes, content_type: str | None, filename: str | None) -> bool:
    start = data.removeprefix(_UTF8_BOM).lstrip()
    return (
        start.startswith(b"<")
        or (content_type is not None and "xml" in content_type.lower())
        or (filename is not None and filename.lower().endswith(".xml"))
    )


def _accepted_formats() -> str:
    return "; ".join(xml_format.name for xml_format in _XML_FORMATS)
