"""Sending one message over SMTP, with the reply sorted into sent / retry / failed."""

from __future__ import annotations

from email.message import EmailMessage

import aiosmtplib

from services.notifier.outcome import Outcome
from services.runtime.settings import Settings


async def send_email(message: EmailMessage, settings: Settings) -> Outcome:
    password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
    try:
        _errors, reply = await aiosmtplib.send(
            message,
            hostname=settings.smtp_host,
            port=settings.smtp_port,
            username=settings.smtp_username,
            password=password,
            start_tls=settings.smtp_starttls,
            use_tls=settings.smtp_use_tls,
            timeout=settings.smtp_timeout,
        )
    except aiosmtplib.SMTPRecipientsRefused as exc:
        codes = [r.code for r in exc.recipients]
        if all(code >= 500 for code in codes):
            return Outcome.failed(f"recipient refused: {exc.recipients[0].code} {exc.recipients[0].message}")
        return Outcome.retry(f"recipient deferred: {exc}")
    except aiosmtplib.SMTPResponseException as exc:
        if exc.code >= 500:
            return Outcome.failed(f"SMTP {exc.code} {exc.message}")
        return Outcome.retry(f"SMTP {exc.code} {exc.message}")
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        return Outcome.retry(f"SMTP server unreachable at {settings.smtp_host}:{settings.smtp_port}: {exc}")
    return Outcome.sent(reply)
