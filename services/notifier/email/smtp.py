"""Sending email over a pool of SMTP connections that are kept open and reused, each reply sorted into an Outcome.

What a reply means for the delivery:
- accepted: SENT;
- 4xx, no connection, a connection lost or timed out, a refused login: RETRY later on the queue's schedule (a login
  refused is a configuration an operator fixes, not a reason to drop mail);
- 5xx to the recipient (RCPT TO), or to the message with a mailbox status (5.1.x, 5.2.x, or none given): SUPPRESSED,
  the address is refused for good and the caller puts it on the suppression list;
- any other 5xx (our sender refused, content or policy rejections): FAILED for this message, the address is kept.

A connection idle for a while is checked with NOOP before it is reused, and replaced when the server dropped it;
one that breaks during a transaction is closed and the message retried later, never resent at once (it may have
been accepted just before the break).
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import getaddresses

import aiosmtplib

from services.notifier.outcome import Outcome
from services.runtime.settings import Settings

_IDLE_CHECK_SECONDS = 5.0  # reuse a connection idle for longer only after a NOOP
_MESSAGES_PER_CONNECTION = 100  # then QUIT and reconnect: many servers cap a session
_MAILBOX_STATUS = re.compile(r"^\s*5\.[12]\.\d{1,3}\b")
_ENHANCED_STATUS = re.compile(r"^\s*[245]\.\d{1,3}\.\d{1,3}\b")


@dataclass
class _Connection:
    client: aiosmtplib.SMTP
    last_used: float
    messages: int = 0


class _ConnectionLostError(Exception):
    pass


class SmtpPool:
    """At most `size` connections to the SMTP server, opened when needed and reused for later messages."""

    def __init__(self, settings: Settings, *, size: int | None = None) -> None:
        self._settings = settings
        self._size = size or settings.smtp_pool_size
        self._slots = asyncio.Semaphore(self._size)
        self._idle: list[_Connection] = []  # most recently used last: the warmest is reused first
        self.connections_opened = 0
        self._closed = False

    @property
    def size(self) -> int:
        return self._size

    async def send(self, message: EmailMessage) -> Outcome:
        """Send `message` to its `To` addresses from its `From` address, on a pooled connection."""
        sender, recipients = _envelope(message)
        data = message.as_bytes()  # the message's own policy: see message.py for why it is not aiosmtplib's
        async with self._slots:
            if self._closed:
                return Outcome.retry("the notifier is stopping")
            connection = await self._reusable()
            if connection is None:
                try:
                    connection = await self._connect()
                except aiosmtplib.SMTPAuthenticationError as exc:
                    return Outcome.retry(f"SMTP login refused by {self._address}: {exc.code} {exc.message}")
                except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
                    return Outcome.retry(f"SMTP server unreachable at {self._address}: {_describe(exc)}")
            try:
                outcome = await _transact(connection.client, sender, recipients, data)
            except _ConnectionLostError as exc:
                connection.client.close()
                return Outcome.retry(f"SMTP connection to {self._address} lost: {exc}")
            connection.messages += 1
            connection.last_used = time.monotonic()
            await self._release(connection)
            return outcome

    async def close(self) -> None:
        """QUIT every idle connection; messages in flight finish on theirs, which are then closed."""
        self._closed = True
        idle, self._idle = self._idle, []
        await asyncio.gather(*(_quit(c.client) for c in idle))

    @property
    def _address(self) -> str:
        return f"{self._settings.smtp_host}:{self._settings.smtp_port}"

    async def _reusable(self) -> _Connection | None:
        while self._idle:
            connection = self._idle.pop()
            if not connection.client.is_connected:
                continue
            if time.monotonic() - connection.last_used < _IDLE_CHECK_SECONDS:
                return connection
            try:
                await connection.client.noop()
                return connection
            except (aiosmtplib.SMTPException, OSError, TimeoutError):
                connection.client.close()  # the server dropped it while idle: try the next one, or a new one
        return None

    async def _connect(self) -> _Connection:
        client = smtp_client(self._settings)
        await client.connect()
        self.connections_opened += 1
        return _Connection(client, time.monotonic())

    async def _release(self, connection: _Connection) -> None:
        if self._closed or connection.messages >= _MESSAGES_PER_CONNECTION or not connection.client.is_connected:
            await _quit(connection.client)
        else:
            self._idle.append(connection)


def smtp_client(settings: Settings) -> aiosmtplib.SMTP:
    """A client for the configured server: implicit TLS or required STARTTLS, login, certificate checks."""
    if settings.smtp_use_tls and settings.smtp_starttls:
        raise ValueError("SMTP_USE_TLS (implicit TLS) and SMTP_STARTTLS exclude each other: set one of them")
    password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
    return aiosmtplib.SMTP(
        hostname=settings.smtp_host,
        port=settings.smtp_port,
        username=settings.smtp_username or None,
        password=password if settings.smtp_username else None,
        use_tls=settings.smtp_use_tls,
        start_tls=settings.smtp_starttls,  # False means never, not aiosmtplib's opportunistic default (None)
        validate_certs=settings.smtp_validate_certs,
        cert_bundle=settings.smtp_ca_file,
        timeout=settings.smtp_timeout,
        local_hostname=settings.message_id_domain,  # no reverse lookup of this machine's name at each connection
    )


async def send_email(message: EmailMessage, settings: Settings) -> Outcome:
    """Send one message on a connection of its own, closed afterwards (the pool's baseline in the benchmark)."""
    sender, recipients = _envelope(message)
    client = smtp_client(settings)
    try:
        await client.connect()
    except aiosmtplib.SMTPAuthenticationError as exc:
        return Outcome.retry(f"SMTP login refused: {exc.code} {exc.message}")
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        return Outcome.retry(f"SMTP server unreachable at {settings.smtp_host}:{settings.smtp_port}: {_describe(exc)}")
    try:
        return await _transact(client, sender, recipients, message.as_bytes())
    except _ConnectionLostError as exc:
        return Outcome.retry(f"SMTP connection lost: {exc}")
    finally:
        await _quit(client)


async def _transact(client: aiosmtplib.SMTP, sender: str, recipients: list[str], data: bytes) -> Outcome:
    """One mail transaction; a refusal leaves the connection usable (aiosmtplib sends RSET)."""
    try:
        _refused, reply = await client.sendmail(sender, recipients, data)
    except aiosmtplib.SMTPRecipientsRefused as exc:
        first = exc.recipients[0]
        if all(r.code >= 500 for r in exc.recipients):
            return Outcome.suppressed(f"recipient refused: {first.code} {first.message}")
        return Outcome.retry(f"recipient deferred: {first.code} {first.message}")
    except aiosmtplib.SMTPSenderRefused as exc:
        if exc.code >= 500:
            return Outcome.failed(f"sender {exc.sender} refused: {exc.code} {exc.message}")
        return Outcome.retry(f"sender deferred: {exc.code} {exc.message}")
    except aiosmtplib.SMTPResponseException as exc:
        if exc.code == 421:  # the server is closing this connection
            raise _ConnectionLostError(f"{exc.code} {exc.message}") from exc
        if exc.code < 500:
            return Outcome.retry(f"SMTP {exc.code} {exc.message}")
        if _MAILBOX_STATUS.match(exc.message) or not _ENHANCED_STATUS.match(exc.message):
            return Outcome.suppressed(f"message refused for this address: {exc.code} {exc.message}")
        return Outcome.failed(f"message refused: {exc.code} {exc.message}")
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        raise _ConnectionLostError(_describe(exc)) from exc
    return Outcome.sent(reply)


def _envelope(message: EmailMessage) -> tuple[str, list[str]]:
    senders = [address for _name, address in getaddresses([str(message["From"] or "")]) if address]
    recipients = [address for _name, address in getaddresses([str(message["To"] or "")]) if address]
    if len(senders) != 1 or not recipients:
        raise ValueError("an alert email needs one From address and at least one To address")
    return senders[0], recipients


async def _quit(client: aiosmtplib.SMTP) -> None:
    try:
        if client.is_connected:
            await client.quit()
    except (aiosmtplib.SMTPException, OSError, TimeoutError):
        pass
    finally:
        client.close()


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__
