"""What the deployment files must agree with, read from the code: settings, services, topics and consumer groups."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

from schemas import Topic
from services.runtime.settings import Settings

REPO = Path(__file__).resolve().parents[3]
DEPLOY = REPO / "deploy"

# Every service is a package with a `__main__`, run as `python -m services.<name>`.
SERVICES = tuple(sorted(path.parent.name for path in (REPO / "services").glob("*/__main__.py")))

SETTINGS_ENV_NAMES = frozenset(name.upper() for name in Settings.model_fields)

_GROUP_OPTIONS = ("group_suffix", "every_instance")


@dataclass(frozen=True)
class Consumption:
    """One `runtime.consume(...)` of a service: the topic and the consumer group (None: every instance reads all)."""

    service: str
    topic: Topic
    group: str | None


def consumptions() -> list[Consumption]:
    """Every `runtime.consume(Topic.X, ..., group_suffix=..., every_instance=...)` in services/<name>/app.py."""
    found = []
    for service in SERVICES:
        tree = ast.parse((REPO / "services" / service / "app.py").read_text(encoding="utf-8"))
        for call in ast.walk(tree):
            if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)):
                continue
            if call.func.attr != "consume" or not call.args or not isinstance(call.args[0], ast.Attribute):
                continue
            options = {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords if kw.arg in _GROUP_OPTIONS}
            group = None if options.get("every_instance") else f"tenderwatch-{service}{options.get('group_suffix', '')}"
            found.append(Consumption(service, Topic[call.args[0].attr], group))
    return found


def services_with_database() -> set[str]:
    """Services that own a PostgreSQL schema: those with SQL migrations."""
    return {service for service in SERVICES if any((REPO / "services" / service / "migrations").glob("*.sql"))}


def settings_from(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The settings a service builds from exactly this environment (validators included)."""
    for name in SETTINGS_ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings()


# Stand-ins for the values of secrets, which no deployment file holds.
SECRET_PLACEHOLDERS = {
    "DATABASE_URL": "postgresql://tenderwatch:placeholder@postgres:5432/tenderwatch",
    "UNSUBSCRIBE_SECRET": "placeholder-unsubscribe-secret-of-32-bytes",
    "UNSUBSCRIBE_PREVIOUS_SECRET": "placeholder-previous-unsubscribe-secret",
    "OPERATOR_TOKEN": "placeholder-operator-token",
    "SMTP_PASSWORD": "placeholder-smtp-password",
}
