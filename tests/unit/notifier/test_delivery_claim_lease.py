"""How long a notifier instance holds its claimed deliveries: a setting, never shorter than two sends."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from services.runtime.settings import Settings


def test_claims_last_two_minutes_unless_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().delivery_claim_lease == timedelta(minutes=2)
    monkeypatch.setenv("DELIVERY_CLAIM_LEASE", "12s")
    monkeypatch.setenv("WEBHOOK_TIMEOUT", "5")
    monkeypatch.setenv("SMTP_TIMEOUT", "5")
    assert Settings().delivery_claim_lease == timedelta(seconds=12)


@pytest.mark.parametrize(
    ("settings", "longest"),
    [({"delivery_claim_lease": "20s"}, "30"), ({"delivery_claim_lease": "1m", "webhook_timeout": 45}, "45")],
)
def test_a_claim_shorter_than_two_sends_is_refused_at_start(settings: dict[str, object], longest: str) -> None:
    # Another instance would take over a delivery whose send is still going: it would be sent twice.
    with pytest.raises(ValidationError, match=f"at least twice the longest send .*: {longest} s"):
        Settings(**settings)  # type: ignore[arg-type]
