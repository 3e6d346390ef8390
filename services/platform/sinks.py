"""Local stand-ins for the outside world, for `tenderwatch run` and the tests: both are real servers.

- `MailSink`: an SMTP server (aiosmtpd) on loopback that writes each message to `<dir>/<n>.eml`.
- `WebhookReceiver`: an HTTP server on loopback that writes each request (headers and body) to
  `<dir>/<n>.json` and answers 200 (or what `respond_with` says, to test retries).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from services.runtime.processes import free_port

_MAX_BODY = 1024 * 1024


@dataclass
class ReceivedMail:
    envelope_from: str
    recipients: list[str]
    data: bytes

    def message(self) -> EmailMessage:
        parsed: EmailMessage = message_from_bytes(self.data, policy=policy.default)
        return parsed


class MailSink:
    def __init__(self, directory: Path, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.directory = directory
        self.host = host
        self.port = port or free_port(host)
        self.received: list[ReceivedMail] = []
        self._lock = threading.Lock()
        self._controller: Any = None

    def start(self) -> None:
        from aiosmtpd.controller import Controller

        self.directory.mkdir(parents=True, exist_ok=True)
        sink = self

        class _Handler:
            async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:  # noqa: N802
                mail = ReceivedMail(envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.original_content))
                with sink._lock:
                    sink.received.append(mail)
                    number = len(sink.received)
                (sink.directory / f"{time.strftime('%Y%m%dT%H%M%S')}-{number:04d}.eml").write_bytes(mail.data)
                return "250 Message accepted for delivery"

        self._controller = Controller(_Handler(), hostname=self.host, port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def messages(self) -> list[ReceivedMail]:
        with self._lock:
            return list(self.received)


@dataclass
class ReceivedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.time)


class WebhookReceiver:
    def __init__(self, directory: Path, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.directory = directory
        self.host = host
        self.port = port or free_port(host)
        self.received: list[ReceivedRequest] = []
        self.respond_with: int = 200
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        receiver = self

        class _Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = min(int(self.headers.get("content-length") or 0), _MAX_BODY)
                body = self.rfile.read(length)
                request = ReceivedRequest("POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                with receiver._lock:
                    receiver.received.append(request)
                    number = len(receiver.received)
                    status = receiver.respond_with
                record = {"method": "POST", "path": self.path, "headers": request.headers, "status": status}
                try:
                    record["body"] = json.loads(body)
                except ValueError:
                    record["body_text"] = body.decode("utf-8", "replace")
                (receiver.directory / f"{time.strftime('%Y%m%dT%H%M%S')}-{number:04d}.json").write_text(
                    json.dumps(record, ensure_ascii=False, indent=2), encoding="utf-8"
                )
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer((self.host, self.port), _Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="webhook-receiver", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def requests(self) -> list[ReceivedRequest]:
        with self._lock:
            return list(self.received)
