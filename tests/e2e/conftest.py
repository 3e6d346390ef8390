from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

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


@pytest.fixture(scope="session")
def running(stack_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPlatform]:
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
