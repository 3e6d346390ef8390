from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from services.platform.sinks import MailSink, WebhookReceiver
from services.platform.supervisor import Platform

OPERATOR_TOKEN = "operator-token-for-tests"


@dataclass
class RunningPlatform:
    platform: Platform
    mail: MailSink
    hooks: WebhookReceiver

    @property
    def api(self) -> str:
        return self.platform.url("api")


class OpendatasoftReplay:
    """A local stand-in for BOAMP's Opendatasoft API, serving real BOAMP notices shaped as its records."""

    def __init__(self, records: list[dict[str, Any]]) -> None:
        self.records = records
        self.requests = 0
        replay = self

        class _Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                replay.requests += 1
                query = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
                since = query["where"].split("date'")[1][:10]
                matching = [r for r in replay.records if r["dateparution"] >= since]
                offset, limit = int(query["offset"]), int(query["limit"])
                body = json.dumps({"total_count": len(matching), "results": matching[offset : offset + limit]})
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, *_args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/api/explore/v2.1/catalog/datasets/boamp/records"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture(scope="session")
def boamp_replay() -> Iterator[OpendatasoftReplay]:
    records = json.loads((Path(__file__).parents[1] / "fixtures" / "pollers" / "boamp" / "records.json").read_text())
    replay = OpendatasoftReplay(records)
    yield replay
    replay.stop()


@pytest.fixture(scope="session")
def running(
    stack_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory, boamp_replay: OpendatasoftReplay
) -> Iterator[RunningPlatform]:
    """The five services as separate processes on the test stack, a real SMTP server, a real HTTP receiver."""
    var: Path = tmp_path_factory.mktemp("platform")
    mail = MailSink(var / "mail")
    hooks = WebhookReceiver(var / "webhooks")
    mail.start()
    hooks.start()
    platform = Platform(
        var,
        environment={
            **stack_env,
            "SMTP_HOST": mail.host,
            "SMTP_PORT": str(mail.port),
            "WEBHOOK_ALLOW_PRIVATE": "true",
            "OPERATOR_TOKEN": OPERATOR_TOKEN,
            "BOAMP_RECORDS_URL": boamp_replay.url,
            "POLL_SINCE_DAYS": "4000",  # the replayed notices are from 2016 and 2017
            "LOG_FORMAT": "json",
        },
    )
    try:
        platform.start(timeout=180)
        yield RunningPlatform(platform, mail, hooks)
    finally:
        platform.stop()
        hooks.stop()
        mail.stop()
