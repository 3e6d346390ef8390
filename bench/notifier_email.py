"""Emails per second to a local SMTP server: the notifier's pool of reused connections against one connection per email.

Both modes send the same rendered alerts (French, both parts, every header) to a local aiosmtpd server that writes
each message to disk, run in a process of its own; `_IN_FLIGHT` emails are in flight at once in both modes (the
pool's size), in the same run, in alternating rounds, and the best round of each counts. Two set-ups: plain SMTP,
and STARTTLS with a login as production relays require (skipped when the openssl command is missing to make the
server's certificate). On loopback a connection costs little; over a network each one adds several round trips and
a TLS handshake, so the ratios here are a floor. Results go to the "email" key of `bench/results/notifier.json`
(other keys are kept). `python -m bench.notifier_email` runs it alone.
"""

from __future__ import annotations

import asyncio
import json
import logging
import multiprocessing
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

from bench._table import Row, print_table, run_facts
from schemas import Criterion, Match, MatchedSubscription, MatchReason, NoticeKind, NoticeSummary, match_id_for
from services.notifier.email.message import build_message, list_id_for, message_id_for
from services.notifier.email.render import render_alert
from services.notifier.email.smtp import SmtpPool, send_email
from services.notifier.outcome import Outcome, OutcomeKind
from services.runtime.processes import free_port
from services.runtime.settings import Settings
from services.runtime.unsubscribe_tokens import make_token

RESULTS = Path(__file__).parent / "results" / "notifier.json"
_EMAILS_PER_ROUND = 300
_ROUNDS = 3
_POOL_SIZE = 4
_IN_FLIGHT = _POOL_SIZE
_BASE_URL = "https://tenderwatch.example"
_LOGIN = ("alerts", "bench-password")


def _progress(message: str) -> None:
    print(f"  [notifier email] {message}", file=sys.stderr, flush=True)


def _messages(count: int) -> list[EmailMessage]:
    """Rendered alerts as the notifier sends them, one per recipient."""
    notice = NoticeSummary(
        notice_id="eforms:a638ab6b-7005-48a9-a9c7-b91bfc6142f1",
        version="01",
        kind=NoticeKind.COMPETITION,
        title="Prestations de collecte des colonnes de verre et de papier pour la Communauté de Communes du Piémont "
        "Cévenol et transport vers les centres de traitement",
        description="Le présent marché porte sur la collecte des colonnes de verre et de papier pour la Communauté "
        "de Communes du Piémont Cévenol et leurs transports vers les centres de traitement.",
        language="fr",
        buyer_name="Communauté de Communes du Piémont Cévenol",
        cpv_main="90511100",
        departments=["30"],
        regions=["76"],
        countries=["FR"],
        deadline=datetime(2024, 2, 28, 11, 0, tzinfo=UTC),
        source_url="https://ted.europa.eu/en/notice/-/detail/47522-2024",
    )
    messages = []
    for number in range(count):
        recipient = f"veille{number}@example.fr"
        subscription = MatchedSubscription(
            subscription_id=f"sub_{number:020x}",
            name="Collecte des déchets — Gard",
            reasons=[MatchReason(criterion=Criterion.CPV, values=["90500000"], notice_values=["90511100"])],
            email=recipient,
        )
        match = Match(
            match_id=match_id_for(f"acc_{number}", notice.notice_id, notice.version),
            subscriber_id=f"acc_{number}",
            notice=notice,
            subscriptions=[subscription],
            matched_at=datetime(2024, 1, 24, 8, 15, tzinfo=UTC) + timedelta(seconds=number),
        )
        token = make_token("bench-unsubscribe-secret-0123456789", [subscription.subscription_id], recipient)
        unsubscribe_url = f"{_BASE_URL}/v1/unsubscribe/{token}"
        rendered = render_alert(
            match, language="fr", recipient_email=recipient, base_url=_BASE_URL, unsubscribe_url=unsubscribe_url
        )
        messages.append(
            build_message(
                rendered,
                sender="tenderwatch <alertes@tenderwatch.example>",
                recipient=recipient,
                message_id=message_id_for(match.match_id, recipient, "tenderwatch.example"),
                unsubscribe_url=unsubscribe_url,
                list_id=list_id_for(match.subscriber_id, "tenderwatch.example"),
            )
        )
    return messages


@dataclass(frozen=True)
class _Setup:
    name: str
    settings: Settings


class _DiskSink:
    """Writes each message to its own file, as the local sink of `tenderwatch run` does."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.count = 0

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:  # noqa: N802
        self.count += 1
        (self.folder / f"{self.count:06d}.eml").write_bytes(bytes(envelope.original_content))
        return "250 Message accepted for delivery"


def _serve(port: int, folder: str, certificate: tuple[str, str] | None, ready: Event, stop: Event) -> None:
    """The SMTP server, in a process of its own so that it does not share the sender's interpreter."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    logging.getLogger("mail.log").setLevel(logging.ERROR)  # aiosmtpd warns about its own deprecated attributes
    options: dict[str, Any] = {}
    if certificate is not None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(*certificate)

        def login(_server: Any, _session: Any, _envelope: Any, _mechanism: str, data: Any) -> AuthResult:
            ok = isinstance(data, LoginPassword) and (data.login.decode(), data.password.decode()) == _LOGIN
            return AuthResult(success=ok, handled=False)

        options = {"tls_context": context, "require_starttls": True, "authenticator": login}
    controller = Controller(_DiskSink(Path(folder)), hostname="127.0.0.1", port=port, **options)
    controller.start()
    ready.set()
    stop.wait()
    controller.stop()


def _certificate(folder: Path) -> tuple[str, str] | None:
    if shutil.which("openssl") is None:
        return None
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return str(cert), str(key)


async def _emails_per_second(send: Callable[[EmailMessage], Awaitable[Outcome]], messages: list[EmailMessage]) -> float:
    slots = asyncio.Semaphore(_IN_FLIGHT)

    async def one(message: EmailMessage) -> Outcome:
        async with slots:
            return await send(message)

    started = time.perf_counter()
    outcomes = await asyncio.gather(*(one(m) for m in messages))
    elapsed = time.perf_counter() - started
    failed = [o for o in outcomes if o.kind is not OutcomeKind.SENT]
    if failed:
        raise RuntimeError(f"{len(failed)} emails were not sent, e.g. {failed[0].detail}")
    return len(messages) / elapsed


async def _measure(setup: _Setup, messages: list[EmailMessage]) -> dict[str, Any]:
    settings = setup.settings
    pooled: list[float] = []
    single: list[float] = []
    connections = 0
    await _emails_per_second(lambda m: send_email(m, settings), messages[:20])  # warm-up
    for round_number in range(1, _ROUNDS + 1):
        pool = SmtpPool(settings, size=_POOL_SIZE)
        try:
            pooled.append(await _emails_per_second(pool.send, messages))
        finally:
            await pool.close()
        connections = max(connections, pool.connections_opened)
        single.append(await _emails_per_second(lambda m: send_email(m, settings), messages))
        _progress(
            f"{setup.name}, round {round_number}: pooled {pooled[-1]:,.0f}/s, one connection each {single[-1]:,.0f}/s"
        )
    best_pooled, best_single = max(pooled), max(single)
    return {
        "pooled": {"emails_per_second": round(best_pooled, 1), "connections_opened": connections,
                   "rounds": [round(v, 1) for v in pooled]},
        "one_connection_per_email": {"emails_per_second": round(best_single, 1),
                                     "rounds": [round(v, 1) for v in single]},
        "ratio": round(best_pooled / best_single, 2),
    }  # fmt: skip


def _run_setup(name: str, folder: Path, certificate: tuple[str, str] | None, messages: list[EmailMessage]) -> Any:
    port = free_port()
    context = multiprocessing.get_context("spawn")
    ready, stop = context.Event(), context.Event()
    mail = folder / name
    mail.mkdir()
    server = context.Process(target=_serve, args=(port, str(mail), certificate, ready, stop), daemon=True)
    server.start()
    try:
        if not ready.wait(60):
            raise RuntimeError("the SMTP server did not start")
        settings = Settings(smtp_host="127.0.0.1", smtp_port=port, smtp_timeout=30)
        if certificate is not None:
            settings = Settings(
                smtp_host="127.0.0.1", smtp_port=port, smtp_timeout=30, smtp_starttls=True, smtp_ca_file=certificate[0],
                smtp_username=_LOGIN[0], smtp_password=_LOGIN[1],
            )  # fmt: skip
        measured = asyncio.run(_measure(_Setup(name, settings), messages))
    finally:
        stop.set()
        server.join(30)
    expected = 20 + 2 * _ROUNDS * len(messages)
    received = len(list(mail.glob("*.eml")))
    if received != expected:
        raise RuntimeError(f"{name}: the SMTP server received {received} emails, {expected} were sent")
    return measured


def run() -> list[Row]:
    messages = _messages(_EMAILS_PER_ROUND)
    results: dict[str, Any] = {
        **run_facts(),
        "unit": "emails per second, best of the rounds",
        "emails_per_round": _EMAILS_PER_ROUND,
        "rounds": _ROUNDS,
        "pool_size": _POOL_SIZE,
        "in_flight": _IN_FLIGHT,
        "average_message_bytes": round(sum(len(m.as_bytes()) for m in messages) / len(messages)),
        "server": "local aiosmtpd in its own process, writing each message to disk",
    }
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="bench-mail-") as work:
        folder = Path(work)
        certificate = _certificate(folder)
        setups: list[tuple[str, str, tuple[str, str] | None]] = [("plain", "plain SMTP", None)]
        if certificate is None:
            results["starttls"] = "not measured: the openssl command, which makes the test certificate, is missing"
        else:
            setups.append(("starttls", "STARTTLS and login", certificate))
        for key, label, cert in setups:
            results[key] = _run_setup(key, folder, cert, messages)
            rows.append(
                Row(
                    name=f"email, {label}: pool of {_POOL_SIZE} connections",
                    value=results[key]["pooled"]["emails_per_second"],
                    unit="emails/s",
                    baseline_name="one connection per email",
                    baseline=results[key]["one_connection_per_email"]["emails_per_second"],
                )
            )
    _write(results)
    return rows


def _write(email: dict[str, Any]) -> None:
    """Replace the "email" key of the results file, keeping what the other notifier benchmarks wrote."""
    RESULTS.parent.mkdir(exist_ok=True)
    results: dict[str, Any] = json.loads(RESULTS.read_text(encoding="utf-8")) if RESULTS.exists() else {}
    results["email"] = email
    RESULTS.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    print_table(run())
