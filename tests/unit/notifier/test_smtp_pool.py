"""The SMTP pool against a real SMTP server (aiosmtpd) on loopback: reuse, replies, TLS and login."""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from pydantic import SecretStr

from services.notifier.email import smtp
from services.notifier.email.smtp import SmtpPool, send_email
from services.notifier.outcome import OutcomeKind
from services.runtime.processes import free_port
from services.runtime.settings import Settings

SENDER = "alertes@tenderwatch.example"


@dataclass
class Received:
    peer: tuple[str, int]
    mail_from: str
    recipients: list[str]
    data: bytes
    tls: bool
    login: str | None


@dataclass
class ScriptedSmtp:
    """An aiosmtpd server whose replies per recipient are scripted: `replies[address]` is a list of replies for the
    RCPT TO of its successive messages (a missing entry accepts), `data_replies` the same for the end of DATA."""

    replies: dict[str, list[str]] = field(default_factory=dict)
    data_replies: dict[str, list[str]] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    peers: set[tuple[str, int]] = field(default_factory=set)  # connections that started a transaction
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        with self.lock:
            self.peers.add(session.peer)
            script = self.replies.get(address.lower())
            reply = script.pop(0) if script else "250 OK"
        if reply.startswith("250"):
            envelope.rcpt_tos.append(address)
        return reply

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            script = self.data_replies.get(envelope.rcpt_tos[0].lower())
            reply = script.pop(0) if script else "250 Message accepted"
            if reply.startswith("250"):
                auth = session.auth_data
                login = auth.login.decode() if isinstance(auth, LoginPassword) else None
                self.received.append(
                    Received(
                        session.peer, envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.original_content),
                        server.transport.get_extra_info("ssl_object") is not None, login,
                    )
                )  # fmt: skip
        return reply


@dataclass
class Server:
    script: ScriptedSmtp
    port: int
    controller: Controller

    def settings(self, **changes: Any) -> Settings:
        return Settings(smtp_host="127.0.0.1", smtp_port=self.port, smtp_timeout=10, **changes)


def _start(script: ScriptedSmtp, **options: Any) -> Server:
    port = free_port()
    controller = Controller(script, hostname="127.0.0.1", port=port, **options)
    controller.start()
    return Server(script, port, controller)


@pytest.fixture
def server() -> Iterator[Server]:
    started = _start(ScriptedSmtp())
    yield started
    started.controller.stop()


def _message(recipient: str, subject: str = "Alerte") -> EmailMessage:
    message = EmailMessage()
    message["From"] = f"tenderwatch <{SENDER}>"
    message["To"] = recipient
    message["Subject"] = subject
    message["Message-ID"] = f"<{subject}.{recipient}@tenderwatch.example>"
    message.set_content("Bonjour")
    return message


async def test_messages_share_a_few_connections(server: Server) -> None:
    pool = SmtpPool(server.settings(smtp_pool_size=2))
    try:
        outcomes = await asyncio.gather(*(pool.send(_message(f"a{n}@example.fr", f"s{n}")) for n in range(12)))
        assert {o.kind for o in outcomes} == {OutcomeKind.SENT}
        for n in range(3):  # one after the other: the same warm connection
            assert (await pool.send(_message("seq@example.fr", f"seq{n}"))).kind is OutcomeKind.SENT
    finally:
        await pool.close()
    assert sorted(r.recipients[0] for r in server.script.received) == sorted(
        [f"a{n}@example.fr" for n in range(12)] + ["seq@example.fr"] * 3
    )
    assert pool.connections_opened <= 2
    assert len(server.script.peers) == pool.connections_opened
    assert b"Subject: s0" in next(r.data for r in server.script.received if r.recipients == ["a0@example.fr"])
    assert {r.mail_from for r in server.script.received} == {SENDER}


async def test_one_connection_per_email_without_the_pool(server: Server) -> None:
    for n in range(3):
        assert (await send_email(_message("once@example.fr", f"o{n}"), server.settings())).kind is OutcomeKind.SENT
    assert len(server.script.peers) == 3


async def test_a_4xx_reply_is_retried_later_and_the_connection_stays_in_use(server: Server) -> None:
    server.script.replies["busy@example.fr"] = ["450 4.2.1 Mailbox busy, try later"]
    server.script.data_replies["slow@example.fr"] = ["451 4.3.0 Temporary failure"]
    pool = SmtpPool(server.settings(smtp_pool_size=1))
    try:
        deferred = await pool.send(_message("busy@example.fr"))
        data_deferred = await pool.send(_message("slow@example.fr"))
        later = await pool.send(_message("busy@example.fr", "again"))
    finally:
        await pool.close()
    assert (deferred.kind, deferred.detail) == (
        OutcomeKind.RETRY,
        "recipient deferred: 450 4.2.1 Mailbox busy, try later",
    )
    assert (data_deferred.kind, data_deferred.detail) == (OutcomeKind.RETRY, "SMTP 451 4.3.0 Temporary failure")
    assert later.kind is OutcomeKind.SENT
    assert pool.connections_opened == 1


async def test_a_5xx_for_the_address_suppresses_it_and_a_policy_5xx_fails_the_message(server: Server) -> None:
    server.script.replies["gone@example.fr"] = ["550 5.1.1 No such user"]
    server.script.data_replies["full@example.fr"] = ["552 5.2.2 Mailbox full"]
    server.script.data_replies["spam@example.fr"] = ["554 5.7.1 Message rejected as spam"]
    pool = SmtpPool(server.settings())
    try:
        gone = await pool.send(_message("gone@example.fr"))
        full = await pool.send(_message("full@example.fr"))
        spam = await pool.send(_message("spam@example.fr"))
    finally:
        await pool.close()
    assert (gone.kind, gone.detail) == (OutcomeKind.SUPPRESSED, "recipient refused: 550 5.1.1 No such user")
    assert (full.kind, full.detail) == (
        OutcomeKind.SUPPRESSED,
        "message refused for this address: 552 5.2.2 Mailbox full",
    )
    assert (spam.kind, spam.detail) == (OutcomeKind.FAILED, "message refused: 554 5.7.1 Message rejected as spam")
    assert server.script.received == []


async def test_no_server_is_a_retry() -> None:
    pool = SmtpPool(Settings(smtp_host="127.0.0.1", smtp_port=free_port(), smtp_timeout=5))
    outcome = await pool.send(_message("a@example.fr"))
    assert outcome.kind is OutcomeKind.RETRY
    assert outcome.detail.startswith("SMTP server unreachable at 127.0.0.1:")


async def test_a_connection_the_server_dropped_while_idle_is_replaced(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(smtp, "_IDLE_CHECK_SECONDS", 0.0)  # check every idle connection before reuse
    pool = SmtpPool(server.settings(smtp_pool_size=1))
    try:
        assert (await pool.send(_message("a@example.fr", "first"))).kind is OutcomeKind.SENT
        server.controller.stop()  # the server goes away, and the pooled connection with it
        server.controller = Controller(server.script, hostname="127.0.0.1", port=server.port)
        server.controller.start()
        assert (await pool.send(_message("a@example.fr", "second"))).kind is OutcomeKind.SENT
    finally:
        await pool.close()
    assert pool.connections_opened == 2
    assert [r.recipients for r in server.script.received] == [["a@example.fr"], ["a@example.fr"]]


# --- TLS and login -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the CA certificate, the server's key and chain for 127.0.0.1 and localhost signed by it)."""
    authority = trustme.CA()
    folder = tmp_path_factory.mktemp("tls")
    ca, server = folder / "ca.pem", folder / "server.pem"
    authority.cert_pem.write_to_path(str(ca))
    authority.issue_cert("127.0.0.1", "localhost").private_key_and_cert_chain_pem.write_to_path(str(server))
    return ca, server


def _server_tls(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificate[1])
    return context


def _authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (b"alerts", b"s3cret")
    return AuthResult(success=ok, handled=False, auth_data=auth_data)


async def test_starttls_and_login_are_honoured(certificate: tuple[Path, Path]) -> None:
    started = _start(
        ScriptedSmtp(),
        tls_context=_server_tls(certificate),
        require_starttls=True,
        authenticator=_authenticator,
        auth_require_tls=True,
    )
    try:
        settings = started.settings(
            smtp_starttls=True, smtp_username="alerts", smtp_password="s3cret", smtp_ca_file=str(certificate[0])
        )
        pool = SmtpPool(settings)
        try:
            outcome = await pool.send(_message("tls@example.fr"))
        finally:
            await pool.close()
        wrong_password = settings.model_copy(update={"smtp_password": SecretStr("nope")})
        wrong = await send_email(_message("tls@example.fr"), wrong_password)
        plain = await send_email(_message("tls@example.fr"), started.settings())  # no STARTTLS: refused by server
    finally:
        started.controller.stop()
    assert outcome.kind is OutcomeKind.SENT
    assert [(r.tls, r.login) for r in started.script.received] == [(True, "alerts")]
    assert wrong.kind is OutcomeKind.RETRY and wrong.detail.startswith("SMTP login refused: 535")
    assert plain.kind is not OutcomeKind.SENT


async def test_required_starttls_never_falls_back_to_plain_text(server: Server) -> None:
    outcome = await send_email(_message("a@example.fr"), server.settings(smtp_starttls=True))  # server offers none
    assert outcome.kind is OutcomeKind.RETRY
    assert server.script.received == []


async def test_implicit_tls_checks_the_certificate(certificate: tuple[Path, Path]) -> None:
    started = _start(ScriptedSmtp(), ssl_context=_server_tls(certificate))
    try:
        trusted = await send_email(
            _message("a@example.fr"), started.settings(smtp_use_tls=True, smtp_ca_file=str(certificate[0]))
        )
        unknown_ca = await send_email(_message("b@example.fr"), started.settings(smtp_use_tls=True))
        unchecked = await send_email(
            _message("c@example.fr"), started.settings(smtp_use_tls=True, smtp_validate_certs=False)
        )
    finally:
        started.controller.stop()
    assert trusted.kind is OutcomeKind.SENT
    assert unknown_ca.kind is OutcomeKind.RETRY and "CERTIFICATE_VERIFY_FAILED" in unknown_ca.detail
    assert unchecked.kind is OutcomeKind.SENT
    assert [(r.recipients, r.tls) for r in started.script.received] == [
        (["a@example.fr"], True),
        (["c@example.fr"], True),
    ]


def test_implicit_tls_and_starttls_exclude_each_other() -> None:
    with pytest.raises(ValueError, match="exclude each other"):
        smtp.smtp_client(Settings(smtp_use_tls=True, smtp_starttls=True))
