"""A rendered alert wrapped as a MIME message ready for SMTP."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import EmailPolicy
from email.utils import format_datetime

from services.notifier.email.render import RenderedEmail

_DOMAIN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$")
_URL = re.compile(r"^https?://[!#-;=?-~]+$")  # printable ASCII without spaces, quotes, < or >
# Headers written on one line whatever their length (under SMTP's 998): folding a long URL would turn it into
# RFC 2047 encoded words, which no mail client reads as a link, and a folded Message-ID reads back with a space.
_UNFOLDED = frozenset({"list-unsubscribe", "list-id", "message-id"})


class _MailPolicy(EmailPolicy):
    """The SMTP policy (CRLF, 78-column folding), except for the link headers in `_UNFOLDED`."""

    def fold(self, name: str, value: str) -> str:
        if name.lower() in _UNFOLDED:
            return f"{name}: {value}{self.linesep}"
        folded: str = super().fold(name, value)
        return folded

    def fold_binary(self, name: str, value: str) -> bytes:
        if name.lower() in _UNFOLDED:
            return self.fold(name, value).encode("ascii")
        return super().fold_binary(name, value)


_POLICY = _MailPolicy(linesep="\r\n", cte_type="7bit")  # 7-bit clean: any relay takes it, 8BITMIME or not


def message_id_for(match_id: str, recipient: str, domain: str) -> str:
    """`<match id.recipient hash@domain>`: the same alert to the same address always gets the same Message-ID,
    so a resend after a crash is recognisable as a duplicate, and the address itself is not exposed.

    A digest passes its digest id (one per subscriber, address and period) as `match_id`.
    """
    _check_domain(domain, "Message-ID")
    if not match_id or any(c in match_id for c in "<>@ \t\r\n"):
        raise ValueError(
            f"match id {match_id!r} cannot go into a Message-ID: it must be non-empty, without <>@ or spaces"
        )
    digest = hashlib.sha256(recipient.strip().lower().encode()).hexdigest()[:16]
    return f"<{match_id}.{digest}@{domain}>"


def list_id_for(subscriber_id: str, domain: str) -> str:
    """RFC 2919 `List-Id`: every alert of one account is one list, `<account.alerts.domain>`, so a mail client can
    filter them and a mailbox provider can tie the unsubscribe link to them."""
    _check_domain(domain, "List-Id")
    label = re.sub(r"[^a-z0-9-]+", "-", subscriber_id.lower()).strip("-")
    if not label:
        raise ValueError(f"subscriber id {subscriber_id!r} has nothing to make a List-Id label from")
    return f"tenderwatch <{label[:63]}.alerts.{domain}>"


def _check_domain(domain: str, header: str) -> None:
    if not _DOMAIN.match(domain):
        raise ValueError(f"{header} domain {domain!r} must be a plain host name such as 'alerts.example.org'")


def build_message(
    rendered: RenderedEmail,
    *,
    sender: str,
    recipient: str,
    message_id: str,
    unsubscribe_url: str | None,
    list_id: str | None = None,
    sent_at: datetime | None = None,
) -> EmailMessage:
    """multipart/alternative, plain text first then HTML (clients show the last part they support).

    With `unsubscribe_url`, adds `List-Unsubscribe` and the RFC 8058 one-click `List-Unsubscribe-Post`; RFC 8058
    requires an https URL there, and mailbox providers only honour it on DKIM-signed mail.
    """
    if unsubscribe_url is not None and not _URL.match(unsubscribe_url):
        raise ValueError(
            f"unsubscribe URL {unsubscribe_url!r} must be an https URL (http only for local testing), "
            "without spaces, quotes or angle brackets"
        )
    if list_id is not None and not list_id.isascii():
        raise ValueError(f"List-Id {list_id!r} must be ASCII")
    message = EmailMessage(policy=_POLICY)
    message["Subject"] = rendered.subject
    message["From"] = sender
    message["To"] = recipient
    message["Date"] = format_datetime(sent_at or datetime.now(UTC))
    message["Message-ID"] = message_id
    # RFC 3834: tells auto-responders (out-of-office replies) not to answer.
    message["Auto-Submitted"] = "auto-generated"
    if list_id is not None:
        message["List-Id"] = list_id
    if unsubscribe_url is not None:
        message["List-Unsubscribe"] = f"<{unsubscribe_url}>"
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message.set_content(rendered.text, subtype="plain", charset="utf-8")
    message.add_alternative(rendered.html, subtype="html", charset="utf-8")
    return message
