import email
import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from email import policy

import pytest

from schemas.alert import Match
from services.notifier.email.message import build_message, message_id_for
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
