"""The webhook sender against real HTTP servers on loopback: pinning, redirects, bounded answers, time limit."""

from __future__ import annotations

import asyncio
import contextlib
import http
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
import standardwebhooks
import trustme

from services.notifier.outcome import OutcomeKind
from services.notifier.webhooks.deliver import WebhookSender
from services.notifier.webhooks.signing import generate_secret
from services.runtime.ssrf import Resolver

HOST = "hooks.example.test"  # .test never resolves on the internet: only the pinned address can be reached


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.monotonic)


@dataclass
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    hold: asyncio.Event | None = None  # answer only once it is set
    endless_body: bool = False  # stream a chunked body that never ends


class ScriptedReceiver:
    """A real HTTP/1.1 server on 127.0.0.1 (keep-alive, chunked answers, optional TLS) whose answers a test scripts."""

    def __init__(self, respond: Callable[[Received], Answer] | None = None, *, tls: ssl.SSLContext | None = None):
        self.respond = respond or (lambda _request: Answer())
        self.received: list[Received] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.connections = 0
        self._tls = tls
        self._server: asyncio.Server | None = None
        self._port = 0
        self._handlers: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        assert self._port, "the receiver has not started"
        return self._port

    @property
    def url(self) -> str:
        return f"{'https' if self._tls else 'http'}://127.0.0.1:{self.port}"

    async def __aenter__(self) -> ScriptedReceiver:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self._tls)
        self._port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *_exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._handlers):
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.wait_closed(), 2)

    def requests_to(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                request_line, *header_lines = head.decode("latin-1").split("\r\n")
                method, path, _version = request_line.split(" ", 2)
                headers = {}
                for line in header_lines:
                    if line:
                        name, _, value = line.partition(":")
                        headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                request = Received(method, path, headers, body)
                self.received.append(request)
                self.in_flight += 1
                self.max_in_flight = max(self.max_in_flight, self.in_flight)
                try:
                    answer = self.respond(request)
                    if answer.hold is not None:
                        await answer.hold.wait()
                    await self._answer(writer, answer)
                finally:
                    self.in_flight -= 1
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError, ssl.SSLError):
            pass
        finally:
            self._handlers.discard(task)
            writer.close()

    @staticmethod
    async def _answer(writer: asyncio.StreamWriter, answer: Answer) -> None:
        lines = [f"HTTP/1.1 {answer.status} {http.HTTPStatus(answer.status).phrase}"]
        lines += [f"{name}: {value}" for name, value in answer.headers.items()]
        if answer.endless_body:
            writer.write(("\r\n".join([*lines, "transfer-encoding: chunked"]) + "\r\n\r\n").encode())
            chunk = b"x" * 4096
            while True:  # until the client hangs up
                writer.write(b"1000\r\n" + chunk + b"\r\n")
                await writer.drain()
        writer.write(("\r\n".join([*lines, f"content-length: {len(answer.body)}"]) + "\r\n\r\n").encode())
        writer.write(answer.body)
        await writer.drain()


class PinnedResolver:
    """Answers `addresses` for HOST and counts the questions; any other name is an error."""

    def __init__(self, *addresses: str) -> None:
        self.addresses = list(addresses)
        self.questions: list[tuple[str, int]] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.questions.append((host, port))
        if host != HOST:
            raise socket.gaierror(socket.EAI_NONAME, f"{host} is not known here")
        return list(self.addresses)


def _sender(
    resolver: Resolver, *, allow_private: bool = True, timeout: float = 5.0, ssl_context: ssl.SSLContext | None = None
) -> WebhookSender:
    return WebhookSender(
        timeout=timeout,
        max_response_bytes=64 * 1024,
        allow_private=allow_private,
        max_retry_after=timedelta(hours=10),
        resolver=resolver,
        ssl_context=ssl_context,
    )


async def test_the_connection_goes_to_the_checked_address_while_host_and_signature_keep_the_name() -> None:
    secret = generate_secret()
    resolver = PinnedResolver("127.0.0.1")
    async with ScriptedReceiver() as receiver:
        sender = _sender(resolver)
        try:
            url = f"http://{HOST}:{receiver.port}/in?x=1"
            first = await sender.send(url, secret=secret, message_id="msg_1", body=b'{"n":1}')
            second = await sender.send(url, secret=secret, message_id="msg_2", body=b'{"n":2}')
        finally:
            await sender.aclose()
    assert (first.kind, first.detail, second.kind) == (OutcomeKind.SENT, "HTTP 200", OutcomeKind.SENT)
    assert [(r.method, r.path, r.headers["host"], r.body) for r in receiver.received] == [
        ("POST", "/in?x=1", f"{HOST}:{receiver.port}", b'{"n":1}'),
        ("POST", "/in?x=1", f"{HOST}:{receiver.port}", b'{"n":2}'),
    ]
    for request in receiver.received:
        assert standardwebhooks.Webhook(secret).verify(request.body, request.headers) in ({"n": 1}, {"n": 2})
        assert request.headers["user-agent"] == "tenderwatch-webhooks/1"
    # one connection, resolved once and checked once, kept alive for the second call
    assert resolver.questions == [(HOST, receiver.port)]
    assert receiver.connections == 1


@pytest.mark.parametrize(
    ("answers", "refusal"),
    [
        (("127.0.0.1",), "hooks.example.test resolves to 127.0.0.1, a loopback address"),
        (("93.184.216.34", "127.0.0.1"), "hooks.example.test resolves to 127.0.0.1, a loopback address"),
        (("::ffff:127.0.0.1",), "an IPv6 form of 127.0.0.1, a loopback address"),
        (("169.254.169.254",), "the cloud metadata service"),
    ],
)
async def test_a_name_resolving_to_any_private_address_is_never_connected_to(
    answers: tuple[str, ...], refusal: str
) -> None:
    async with ScriptedReceiver() as receiver:
        sender = _sender(PinnedResolver(*answers), allow_private=False)
        try:
            outcome = await sender.send(
                f"https://{HOST}:{receiver.port}/in", secret=generate_secret(), message_id="msg_1", body=b"{}"
            )
        finally:
            await sender.aclose()
    assert outcome.kind is OutcomeKind.FAILED
    assert outcome.detail.startswith("refused to call the endpoint: ")
    assert refusal in outcome.detail
    assert receiver.connections == 0


async def test_plain_http_is_refused_in_production_before_resolving() -> None:
    resolver = PinnedResolver("93.184.216.34")
    sender = _sender(resolver, allow_private=False)
    try:
        outcome = await sender.send(f"http://{HOST}/in", secret=generate_secret(), message_id="msg_1", body=b"{}")
    finally:
        await sender.aclose()
    assert outcome.kind is OutcomeKind.FAILED
    assert "must use https" in outcome.detail
    assert resolver.questions == []


async def test_redirects_are_not_followed() -> None:
    def redirect(request: Received) -> Answer:
        return Answer(302, {"location": "/elsewhere"}) if request.path == "/in" else Answer()

    async with ScriptedReceiver(redirect) as receiver:
        sender = _sender(PinnedResolver("127.0.0.1"))
        try:
            outcome = await sender.send(
                f"http://{HOST}:{receiver.port}/in", secret=generate_secret(), message_id="msg_1", body=b"{}"
            )
        finally:
            await sender.aclose()
    assert (outcome.kind, outcome.detail) == (
        OutcomeKind.FAILED,
        "HTTP 302: redirects are not followed; register the final URL",
    )
    assert [r.path for r in receiver.received] == ["/in"]


async def test_an_endless_answer_is_read_up_to_the_cap_only() -> None:
    async with ScriptedReceiver(lambda _request: Answer(200, endless_body=True)) as receiver:
        sender = _sender(PinnedResolver("127.0.0.1"))
        try:
            outcome = await sender.send(
                f"http://{HOST}:{receiver.port}/in", secret=generate_secret(), message_id="msg_1", body=b"{}"
            )
        finally:
            await sender.aclose()
    assert (outcome.kind, outcome.detail) == (OutcomeKind.SENT, "HTTP 200")


async def test_an_endpoint_that_does_not_answer_in_time_is_retried() -> None:
    never = asyncio.Event()
    async with ScriptedReceiver(lambda _request: Answer(hold=never)) as receiver:
        sender = _sender(PinnedResolver("127.0.0.1"), timeout=0.3)
        try:
            outcome = await sender.send(
                f"http://{HOST}:{receiver.port}/in", secret=generate_secret(), message_id="msg_1", body=b"{}"
            )
        finally:
            await sender.aclose()
    assert (outcome.kind, outcome.detail) == (OutcomeKind.RETRY, "the endpoint did not answer within 0.3 s")
    assert len(receiver.received) == 1


@pytest.mark.parametrize(
    ("status", "headers", "kind", "detail", "retry_after"),
    [
        (204, {}, OutcomeKind.SENT, "HTTP 204", None),
        (410, {}, OutcomeKind.SUPPRESSED, "HTTP 410 Gone: the endpoint asked to be disabled", None),
        (500, {}, OutcomeKind.RETRY, "HTTP 500", None),
        (404, {}, OutcomeKind.RETRY, "HTTP 404", None),
        (503, {"retry-after": "120"}, OutcomeKind.RETRY, "HTTP 503, Retry-After 120 s", timedelta(seconds=120)),
        (429, {"retry-after": "99999999"}, OutcomeKind.RETRY, "HTTP 429, Retry-After 36000 s", timedelta(hours=10)),
        (429, {"retry-after": "soon"}, OutcomeKind.RETRY, "HTTP 429", None),
        (
            503,
            {"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"},  # in the past: no wait beyond the schedule
            OutcomeKind.RETRY,
            "HTTP 503, Retry-After 0 s",
            timedelta(0),
        ),
    ],
)
async def test_answers_are_sorted_and_retry_after_is_kept_within_the_schedule(
    status: int, headers: dict[str, str], kind: OutcomeKind, detail: str, retry_after: timedelta | None
) -> None:
    async with ScriptedReceiver(lambda _request: Answer(status, headers)) as receiver:
        sender = _sender(PinnedResolver("127.0.0.1"))
        try:
            outcome = await sender.send(
                f"http://{HOST}:{receiver.port}/in", secret=generate_secret(), message_id="msg_1", body=b"{}"
            )
        finally:
            await sender.aclose()
    assert (outcome.kind, outcome.detail, outcome.retry_after) == (kind, detail, retry_after)


async def test_retry_after_as_an_http_date_counts_from_now() -> None:
    in_an_hour = format_datetime(datetime.now(UTC) + timedelta(hours=1), usegmt=True)
    async with ScriptedReceiver(lambda _request: Answer(503, {"retry-after": in_an_hour})) as receiver:
        sender = _sender(PinnedResolver("127.0.0.1"))
        try:
            outcome = await sender.send(
                f"http://{HOST}:{receiver.port}/in", secret=generate_secret(), message_id="msg_1", body=b"{}"
            )
        finally:
            await sender.aclose()
    assert outcome.retry_after is not None
    assert timedelta(minutes=50) < outcome.retry_after <= timedelta(hours=1)


async def test_unreachable_and_unresolvable_endpoints_are_retried() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    sender = _sender(PinnedResolver("127.0.0.1"))
    try:
        refused = await sender.send(
            f"http://{HOST}:{closed_port}/in", secret=generate_secret(), message_id="msg_1", body=b"{}"
        )
        unknown = await sender.send(
            f"http://nowhere.example.test:{closed_port}/in", secret=generate_secret(), message_id="msg_1", body=b"{}"
        )
    finally:
        await sender.aclose()
    assert refused.kind is OutcomeKind.RETRY
    assert refused.detail.startswith("could not reach the endpoint: ConnectError")
    assert unknown.kind is OutcomeKind.RETRY
    assert unknown.detail.startswith("could not resolve the endpoint's host")


def _certificate(directory: Path, name: str) -> tuple[Path, Path]:
    """(the server's key and certificate chain, the CA certificate that signed it) for `name`."""
    authority = trustme.CA()
    server, ca = directory / f"{name}.pem", directory / f"{name}-ca.pem"
    authority.issue_cert(name).private_key_and_cert_chain_pem.write_to_path(str(server))
    authority.cert_pem.write_to_path(str(ca))
    return server, ca


async def test_tls_verifies_the_host_name_over_the_pinned_connection(tmp_path: Path) -> None:
    server_pem, ca = _certificate(tmp_path, HOST)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(server_pem)
    seen_names: list[str | None] = []
    server_tls.sni_callback = lambda _socket, name, _context: seen_names.append(name)
    client_tls = ssl.create_default_context(cafile=str(ca))
    async with ScriptedReceiver(tls=server_tls) as receiver:
        sender = _sender(PinnedResolver("127.0.0.1"), ssl_context=client_tls)
        try:
            outcome = await sender.send(
                f"https://{HOST}:{receiver.port}/in", secret=generate_secret(), message_id="msg_1", body=b"{}"
            )
        finally:
            await sender.aclose()
    assert (outcome.kind, outcome.detail) == (OutcomeKind.SENT, "HTTP 200")
    assert seen_names == [HOST]  # SNI carries the name, not the address connected to
    assert [r.headers["host"] for r in receiver.received] == [f"{HOST}:{receiver.port}"]


async def test_tls_refuses_a_certificate_for_another_name(tmp_path: Path) -> None:
    server_pem, ca = _certificate(tmp_path, "other.example.test")
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(server_pem)
    client_tls = ssl.create_default_context(cafile=str(ca))
    async with ScriptedReceiver(tls=server_tls) as receiver:
        sender = _sender(PinnedResolver("127.0.0.1"), ssl_context=client_tls)
        try:
            outcome = await sender.send(
                f"https://{HOST}:{receiver.port}/in", secret=generate_secret(), message_id="msg_1", body=b"{}"
            )
        finally:
            await sender.aclose()
    assert outcome.kind is OutcomeKind.RETRY
    assert "CERTIFICATE_VERIFY_FAILED" in outcome.detail
    assert receiver.received == []
