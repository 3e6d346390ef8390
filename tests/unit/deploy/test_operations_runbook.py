"""docs/operations.md stays true to the code: every setting with its default, the consumer groups, the schemas."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from pydantic import SecretStr

from services.runtime.settings import Settings

from .code_contract import REPO, consumptions, services_with_database, settings_from

_RUNBOOK = REPO / "docs" / "operations.md"
_NONE = "—"
_UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


def _section(title: str) -> str:
    text = _RUNBOOK.read_text(encoding="utf-8")
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def _rows(section: str) -> list[list[str]]:
    """The cells of every table row of a section, header and separator rows left out."""
    rows = []
    for line in section.splitlines():
        if line.startswith("| ") and not line.startswith("|---"):
            rows.append([cell.strip() for cell in line.strip().strip("|").split(" | ")])
    return [row for row in rows if row[0] not in ("variable", "consumer group")]


def _duration(delay: timedelta) -> str:
    seconds = int(delay.total_seconds())
    if seconds == 0:
        return "0s"
    unit, size = next((unit, size) for unit, size in _UNITS if seconds % size == 0 or size == 1)
    return f"{seconds // size}{unit}"


def _written(default: Any) -> str:
    """A default as the runbook writes it."""
    if default is None or default == "" or (isinstance(default, SecretStr) and not default.get_secret_value()):
        return _NONE
    if isinstance(default, bool):
        return str(default).lower()
    if isinstance(default, float):
        return f"{default:g}"
    if isinstance(default, timedelta):
        return _duration(default)
    if isinstance(default, tuple):
        return ",".join(_duration(delay) for delay in default)
    return str(default)


def _documented_settings() -> dict[str, str]:
    """Variable -> default cell, from the configuration reference's tables."""
    documented: dict[str, str] = {}
    for variable, default, *_ in _rows(_section("Configuration reference")):
        name = variable.strip("`")
        assert name not in documented, f"{name} is documented twice"
        documented[name] = default.strip("`")
    return documented


def test_every_setting_is_documented_with_its_default() -> None:
    documented = _documented_settings()
    expected = {name.upper(): _written(field.default) for name, field in Settings.model_fields.items()}
    assert set(documented) == set(expected), "add the new settings to docs/operations.md, remove the old ones"
    assert {name: documented[name] for name in expected} == expected


def test_the_documented_defaults_read_as_settings_are_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each default as written, set in the environment, gives the settings a service has with nothing set."""
    written = {name: default for name, default in _documented_settings().items() if default != _NONE}
    assert settings_from(written, monkeypatch) == settings_from({}, monkeypatch)
    assert _written((timedelta(0), timedelta(seconds=90), timedelta(hours=4))) == "0s,90s,4h"


def test_the_consumer_groups_table_is_the_one_the_code_has() -> None:
    documented = {(row[0].strip("`"), row[1].strip("`"), row[2]) for row in _rows(_section("Scaling"))}
    actual = {(c.group, c.topic.value, c.service) for c in consumptions() if c.group}
    assert documented == actual


def test_backup_covers_the_schema_of_every_service_that_owns_one() -> None:
    backup = _section("Backup and restore of PostgreSQL")
    assert {schema for schema in services_with_database() if f"--schema={schema}`" in backup} == (
        services_with_database()
    )
    loop = re.search(r"for schema in ([a-z ]+); do", backup)
    assert loop and loop[1].split() == sorted(services_with_database())


def test_the_runbook_names_the_commands_it_relies_on() -> None:
    text = _RUNBOOK.read_text(encoding="utf-8")
    for command in ("tenderwatch topics", "tenderwatch dlq replay", "pg_dump", "pg_restore", "rotate-secret"):
        assert command in text
