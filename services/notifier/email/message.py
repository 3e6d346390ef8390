"""A rendered alert wrapped as a MIME message ready for SMTP."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime

from services.notifier.email.render import RenderedEmail

_DOMAIN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$")


def message_id_for(match_id: str, recipient: str, domain: str) -> str:
    """`<match id.recipient hash@domain>`: the same alert to the same address always gets the same Message-ID,
    so a resend after a crash is recognisable as a duplicate, and the address itself is not exposed."""
    if not _DOMAIN.match(domain):
        raise ValueError(f"Message-ID domain {domain!r} must be a plain host name such as 'alerts.example.org'")
    if not match_id or any(c in match_id for c in "<>@ \t\r\n"):
        raise ValueError(
            f"match id {match_id!r} cannot go into a Message-ID: it must be non-empty, without <>@ or spaces"
        )
    digest = hashlib.sha256(recipient.strip().lower().encode()).hexdigest()[:16]
    return f"<{match_id}.{digest}@{domain}>"


def build_message(
    rendered: RenderedEmail,
    *,
    sender: str,
    recipient: str,
    message_id: str,
    unsubscribe_url: str | None,
    sent_at: datetime | None = None,
) -> EmailMessage:
    """multipart/alternative, plain text first then HTML (clients show the last part they support).

    With `unsubscribe_url`, adds `List-Unsubscribe` and the RFC 8058 one-click `List-Unsubscribe-Post`; RFC 8058
    requires an https URL there, and mailbox providers only honour it on DKIM-signed mail.
    """
    if unsubscribe_url is not None and not unsubscribe_url.startswith(("https://", "http://")):
        raise ValueError(f"unsubscribe URL {unsubscribe_url!r} must be an https URL (http only for local testing)")
    message = EmailMessage(policy=policy.SMTP)
    message["Subject"] = rendered.subject
    message["From"] = sender
    message["To"] = recipient
    message["Date"] = format_datetime(sent_at or datetime.now(UTC))
    message["Message-ID"] = message_id
    # RFC 3834: tells auto-responders (out-of-office replies) not to answer.
    message["Auto-Submitted"] = "auto-generated"
    if unsubscribe_url is not None:
        message["List-Unsubscribe"] = f"<{unsubscribe_url}>"
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message.set_content(rendered.text, subtype="plain", charset="utf-8")
    message.add_alternative(rendered.html, subtype="html", charset="utf-8")
    return message
