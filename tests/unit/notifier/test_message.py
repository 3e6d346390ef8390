import email
import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from email import policy

import pytest

from schemas.alert import Match
from services.notifier.email.message import build_message, list_id_for, message_id_for
from services.notifier.email.render import RenderedEmail, render_alert

MatchFactory = Callable[..., Match]
SENT_AT = datetime(2024, 1, 24, 8, 16, 30, tzinfo=UTC)


def _rendered(make_match: MatchFactory) -> RenderedEmail:
    return render_alert(
        make_match(), language="fr", recipient_email="achats@example.fr", base_url="https://tenderwatch.example"
    )


def test_message_id_is_stable_per_match_and_recipient_and_hides_the_address() -> None:
    recipient_hash = hashlib.sha256(b"achats@example.fr").hexdigest()[:16]
    message_id = message_id_for("m_0123abcd", "achats@example.fr", "alerts.tenderwatch.example")
    assert message_id == f"<m_0123abcd.{recipient_hash}@alerts.tenderwatch.example>"
    assert message_id_for("m_0123abcd", " Achats@Example.FR", "alerts.tenderwatch.example") == message_id
    assert message_id_for("m_0123abcd", "other@example.fr", "alerts.tenderwatch.example") != message_id
    assert "achats" not in message_id


@pytest.mark.parametrize("domain", ["", "bad domain", "<x>", "a@b"])
def test_message_id_refuses_a_bad_domain(domain: str) -> None:
    with pytest.raises(ValueError, match="must be a plain host name"):
        message_id_for("m_1", "a@example.fr", domain)


def test_message_is_multipart_alternative_text_then_html(make_match: MatchFactory) -> None:
    rendered = _rendered(make_match)
    message = build_message(
        rendered,
        sender="tenderwatch <alertes@tenderwatch.example>",
        recipient="achats@example.fr",
        message_id="<m_1.abc@tenderwatch.example>",
        unsubscribe_url="https://tenderwatch.example/v1/unsubscribe/tok123",
        sent_at=SENT_AT,
    )
    # what the SMTP server receives, parsed back
    parsed = email.message_from_bytes(message.as_bytes(), policy=policy.default)
    assert parsed.get_content_type() == "multipart/alternative"
    text_part, html_part = parsed.iter_parts()
    assert text_part.get_content_type() == "text/plain"
    assert html_part.get_content_type() == "text/html"
    assert text_part.get_content_charset() == "utf-8"
    assert html_part.get_content_charset() == "utf-8"
    # SMTP lines end with CRLF on the wire
    assert text_part.get_content().replace("\r\n", "\n") == rendered.text
    assert html_part.get_content().replace("\r\n", "\n") == rendered.html
    assert parsed["Subject"] == rendered.subject
    assert parsed["From"] == "tenderwatch <alertes@tenderwatch.example>"
    assert parsed["To"] == "achats@example.fr"
    assert parsed["Message-ID"] == "<m_1.abc@tenderwatch.example>"
    assert parsed["Date"] == "Wed, 24 Jan 2024 08:16:30 +0000"
    assert parsed["Auto-Submitted"] == "auto-generated"
    assert parsed["List-Unsubscribe"] == "<https://tenderwatch.example/v1/unsubscribe/tok123>"
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_wire_format_is_crlf_and_seven_bit(make_match: MatchFactory) -> None:
    message = build_message(
        _rendered(make_match),
        sender="alertes@tenderwatch.example",
        recipient="achats@example.fr",
        message_id="<m_1.abc@tenderwatch.example>",
        unsubscribe_url=None,
        sent_at=SENT_AT,
    )
    wire = message.as_bytes()
    assert b"\r\n" in wire
    assert b"\n" not in wire.replace(b"\r\n", b"")
    assert b"Appel d'offres =?utf-8?b?4oCU?= Prestations" in wire  # the dash as an RFC 2047 encoded word
    assert all(len(line) <= 998 for line in wire.split(b"\r\n"))
    wire.decode("ascii")  # 7-bit clean: any relay accepts it


def test_no_unsubscribe_headers_without_url(make_match: MatchFactory) -> None:
    message = build_message(
        _rendered(make_match),
        sender="alertes@tenderwatch.example",
        recipient="achats@example.fr",
        message_id="<m_1.abc@tenderwatch.example>",
        unsubscribe_url=None,
    )
    assert message["List-Unsubscribe"] is None
    assert message["List-Unsubscribe-Post"] is None
    assert message["Date"] is not None


def test_unsubscribe_url_must_be_a_web_url(make_match: MatchFactory) -> None:
    with pytest.raises(ValueError, match="must be an https URL"):
        build_message(
            _rendered(make_match),
            sender="alertes@tenderwatch.example",
            recipient="achats@example.fr",
            message_id="<m_1.abc@tenderwatch.example>",
            unsubscribe_url="mailto:unsubscribe@tenderwatch.example",
        )


def test_a_long_unsubscribe_link_stays_on_one_line_and_readable(make_match: MatchFactory) -> None:
    url = "https://tenderwatch.example/v1/unsubscribe/" + "c3ViX2FiY2RlZjAxMjM0NTY3ODlhYmNk" * 4 + "." + "A" * 43
    message = build_message(
        _rendered(make_match),
        sender="alertes@tenderwatch.example",
        recipient="achats@example.fr",
        message_id=message_id_for("m_" + "0" * 32, "achats@example.fr", "alerts.tenderwatch.example"),
        unsubscribe_url=url,
        list_id=list_id_for("acc_0123456789abcdef", "tenderwatch.example"),
    )
    wire = message.as_bytes()
    # a folded Message-ID reads back with a leading space
    assert b"\r\nMessage-ID: <m_00000000000000000000000000000000." in wire
    # folding would turn the URL into RFC 2047 encoded words, which no client reads as a link
    assert f"\r\nList-Unsubscribe: <{url}>\r\n".encode() in wire
    assert b"\r\nList-Id: tenderwatch <acc-0123456789abcdef.alerts.tenderwatch.example>\r\n" in wire
    parsed = email.message_from_bytes(wire, policy=policy.default)
    assert parsed["List-Unsubscribe"] == f"<{url}>"
    assert parsed["List-Id"] == "tenderwatch <acc-0123456789abcdef.alerts.tenderwatch.example>"
    assert all(len(line) <= 998 for line in wire.split(b"\r\n"))
    wire.decode("ascii")


def test_list_id_is_one_list_per_account() -> None:
    assert list_id_for("acc_7f3a", "alerts.example.org") == "tenderwatch <acc-7f3a.alerts.alerts.example.org>"
    assert list_id_for("ACC 7F3A", "alerts.example.org") == list_id_for("acc_7f3a", "alerts.example.org")
    with pytest.raises(ValueError, match="List-Id domain"):
        list_id_for("acc_1", "not a domain")
    with pytest.raises(ValueError, match="nothing to make a List-Id label from"):
        list_id_for("__", "alerts.example.org")


@pytest.mark.parametrize(
    "url",
    [
        "https://tenderwatch.example/v1/unsubscribe/a b",
        "https://tenderwatch.example/v1/unsubscribe/a>\r\nBcc: victim@example.org",
        'https://tenderwatch.example/v1/unsubscribe/"x"',
    ],
)
def test_an_unsubscribe_url_cannot_inject_headers(make_match: MatchFactory, url: str) -> None:
    with pytest.raises(ValueError, match="without spaces, quotes or angle brackets"):
        build_message(
            _rendered(make_match),
            sender="alertes@tenderwatch.example",
            recipient="achats@example.fr",
            message_id="<m_1.abc@tenderwatch.example>",
            unsubscribe_url=url,
        )


def test_a_digest_message_id_is_stable_per_digest_and_address() -> None:
    first = message_id_for("g_0f1e2d3c", "achats@example.fr", "tenderwatch.example")
    assert first == message_id_for("g_0f1e2d3c", "ACHATS@example.fr ", "tenderwatch.example")
    assert first != message_id_for("g_0f1e2d3d", "achats@example.fr", "tenderwatch.example")
    assert first.startswith("<g_0f1e2d3c.") and first.endswith("@tenderwatch.example>")
