from __future__ import annotations

import json
import logging

import pytest

from services.runtime.logs import _JsonFormatter, redact
from services.runtime.settings import Settings


def test_credentials_in_urls_and_keys_are_redacted() -> None:
    assert redact("connect postgresql://app:s3cret@db:5432/x failed") == "connect postgresql://app:***@db:5432/x failed"
    assert redact("Authorization: Bearer tw_0123456789abcdef_SECRETSECRET") == "Authorization: Bearer ***"
    assert redact("key tw_0123456789abcdef_SECRETSECRET") == "key tw_01234567***"
    assert redact("secret whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw") == "secret whsec_***"


def test_json_log_lines_carry_the_service_and_extras_without_secrets() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "using %s", ("postgresql://u:pw@h/d",), None)
    record.subscriber = "acc_1"
    line = json.loads(_JsonFormatter("api").format(record))
    assert line["service"] == "api"
    assert line["msg"] == "using postgresql://u:***@h/d"
    assert line["subscriber"] == "acc_1"
    assert line["level"] == "info"


def test_settings_come_from_the_environment_and_hide_secrets(monkeypatch: object) -> None:
    import pytest

    mp = pytest.MonkeyPatch()
    try:
        mp.setenv("KAFKA_BOOTSTRAP_SERVERS", "k1:9092,k2:9092")
        mp.setenv("KAFKA_ENABLE_IDEMPOTENCE", "false")
        mp.setenv("DATABASE_URL", "postgresql://app:s3cret@db/tw")
        settings = Settings()
    finally:
        mp.undo()
    assert settings.kafka_bootstrap_servers == "k1:9092,k2:9092"
    assert settings.kafka_enable_idempotence is False
    assert settings.database_url.get_secret_value() == "postgresql://app:s3cret@db/tw"
    assert "s3cret" not in repr(settings)


def test_a_blank_secret_is_unset_never_an_empty_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UNSUBSCRIBE_SECRET", "a-current-unsubscribe-key")
    monkeypatch.setenv("UNSUBSCRIBE_PREVIOUS_SECRET", "")
    monkeypatch.setenv("OPERATOR_TOKEN", "   ")
    settings = Settings()
    assert settings.unsubscribe_previous_secret is None and settings.operator_token is None
    assert settings.unsubscribe_secret is not None
    assert settings.unsubscribe_secret.get_secret_value() == "a-current-unsubscribe-key"
