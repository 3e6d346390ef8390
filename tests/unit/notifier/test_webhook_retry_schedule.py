"""The webhook retry schedule comes from the settings, parsed once; Retry-After can only lengthen a wait."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from schemas import Channel
from services.notifier.queue import retry_delays
from services.runtime.settings import Settings


def test_the_default_schedule_is_attempt_one_at_once_then_seven_waits() -> None:
    settings = Settings()
    assert retry_delays(Channel.WEBHOOK, settings) == tuple(
        timedelta(seconds=s) for s in (5, 300, 1800, 7200, 18000, 36000, 36000)
    )


def test_the_schedule_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEBHOOK_RETRY_SCHEDULE", "0s, 200ms, 1.5s,2m,1h,1d")
    assert Settings().webhook_retry_schedule == (
        timedelta(0),
        timedelta(milliseconds=200),
        timedelta(seconds=1.5),
        timedelta(minutes=2),
        timedelta(hours=1),
        timedelta(days=1),
    )


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        ("5s,5m", "the first entry is the first attempt's wait and must be 0s"),
        ("", "the first entry is the first attempt's wait and must be 0s"),
        ("0s,soon", "Input should be a valid timedelta"),
    ],
)
def test_a_bad_schedule_is_refused_at_start(schedule: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Settings(webhook_retry_schedule=schedule)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("5d", timedelta(days=5)), ("36h", timedelta(hours=36)), ("90", timedelta(seconds=90)), ("P2D", timedelta(2))],
)
def test_durations_read_units_seconds_or_iso_8601(value: str, expected: timedelta) -> None:
    assert Settings(webhook_disable_after=value, webhook_secret_overlap=value).webhook_disable_after == expected
    assert Settings(webhook_secret_overlap=value).webhook_secret_overlap == expected
