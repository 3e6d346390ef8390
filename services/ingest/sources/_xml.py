"""Safe XML loading shared by every XML source format.

Documents come from the outside world: no DTD, no entity expansion, no network access, bounded size.
"""

from __future__ import annotations

from lxml import etree

from services.ingest.sources._errors import DocumentError

MAX_DOCUMENT_BYTES = 5 * 1024 * 1024

_DOCTYPE = b"<!DOCTYPE"


def _new_parser() -> etree.XMLParser:
    # A parser object is not thread-safe, so each call gets its own; creating one is cheap.
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=False,
        remove_blank_text=False,
    )


def parse_xml(data: bytes, *, max_bytes: int = MAX_DOCUMENT_BYTES) -> etree._Element:
    """Parse an untrusted XML document and return its root element.

    Raises DocumentError with reason `too-large`, `malformed-xml` or `doctype-forbidden`.
    """
    if len(data) > max_bytes:
        raise DocumentError(
            "too-large",
            f"the document is {len(data)} bytes, over the limit of {max_bytes} bytes; "
            "split it into one notice per document",
        )
    # No procurement format needs a DTD, and a DTD is the vehicle of XXE and entity-expansion attacks: refuse it
    # before parsing (the parser would not expand entities anyway), and check again after parsing in case the
    # declaration was hidden from the byte scan by a non-ASCII-compatible encoding such as UTF-16.
    if _DOCTYPE in data:
        raise _doctype_forbidden()
    parser = _new_parser()
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        raise _malformed(exc, parser) from None
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:
        raise _doctype_forbidden()
    return root


def _doctype_forbidden() -> DocumentError:
    return DocumentError(
        "doctype-forbidden",
        "the document declares a DOCTYPE, which is refused for security (external and expanding entities); "
        "remove the DOCTYPE declaration",
    )


def _malformed(exc: etree.XMLSyntaxError, parser: etree.XMLParser) -> DocumentError:
    # The parser's first logged error is the cause; later ones are consequences of it.
    errors = [entry for entry in parser.error_log if entry.level_name in ("ERROR", "FATAL")]
    if errors:
        line, column, reason = errors[0].line, errors[0].column, errors[0].message
    else:
        (line, column), reason = exc.position, exc.msg
    return DocumentError(
        "malformed-xml",
        f"the document is not well-formed XML at line {line}, column {column}: {reason}; "
        "send the complete, unaltered document",
    )
