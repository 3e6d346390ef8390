"""The email that tells an endpoint's owner the notifier disabled it: plain text, French then English."""

from __future__ import annotations

from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime

from services.notifier.webhooks.endpoints import Endpoint


def disabled_notice(endpoint: Endpoint, *, sender: str, message_id_domain: str, api_base_url: str) -> EmailMessage:
    """One message per disabling: its Message-ID names the endpoint and the moment, so a resend is the same mail."""
    if endpoint.owner_email is None or endpoint.disabled_at is None:
        raise ValueError(f"endpoint {endpoint.endpoint_id} has no owner email or is not disabled")
    disabled_at = endpoint.disabled_at.astimezone(UTC)
    reason = endpoint.disabled_reason or "disabled"
    rotate = f"{api_base_url.rstrip('/')}/v1/webhook-endpoints/{endpoint.endpoint_id}/rotate-secret"
    message = EmailMessage(policy=policy.SMTP)
    message["Subject"] = f"tenderwatch : webhook désactivé / webhook disabled ({endpoint.endpoint_id})"
    message["From"] = sender
    message["To"] = endpoint.owner_email
    message["Date"] = format_datetime(datetime.now(UTC))
    stamp = int(disabled_at.timestamp())
    message["Message-ID"] = f"<webhook-disabled.{endpoint.endpoint_id}.{stamp}@{message_id_domain}>"
    message["Auto-Submitted"] = "auto-generated"
    when = disabled_at.strftime("%Y-%m-%d %H:%M UTC")
    message.set_content(
        f"""Bonjour,

tenderwatch a cessé d'appeler votre webhook {endpoint.url} ({endpoint.endpoint_id}) le {when}.
Motif : {reason}.
Les alertes qui lui étaient destinées ne lui sont plus envoyées. Quand le point de terminaison répond de nouveau,
réactivez-le en renouvelant son secret : POST {rotate}
(ou enregistrez un nouveau point de terminaison).

Hello,

tenderwatch stopped calling your webhook {endpoint.url} ({endpoint.endpoint_id}) on {when}.
Reason: {reason}.
Alerts for it are no longer sent. Once the endpoint answers again, turn it back on by rotating its secret:
POST {rotate}
(or register a new endpoint).
""",
        subtype="plain",
        charset="utf-8",
    )
    return message
