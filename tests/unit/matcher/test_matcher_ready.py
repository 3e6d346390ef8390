"""The matcher's last steps before it is ready: the index laid out anew, then the heap frozen and moved."""

from __future__ import annotations

import gc
import logging
from collections.abc import Iterator

import pytest

from services.matcher.app import Matcher
from services.runtime.settings import Settings

from .factories import make_subscription


@pytest.fixture
def matcher() -> Iterator[Matcher]:
    yield Matcher(Settings(matcher_huge_pages=False))
    gc.unfreeze()  # the matcher freezes the heap once ready; this test process goes on collecting


def test_once_caught_up_the_matcher_compacts_its_index_then_is_ready(
    matcher: Matcher, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="services.matcher.app")
    matcher.index.upsert(make_subscription("sub-1", departments=["31"]))
    as_built = matcher.index._dimensions["department"].postings["31"]

    matcher._check_caught_up()  # nothing left to read: caught up

    assert matcher._caught_up.is_set()
    copied = matcher.index._dimensions["department"].postings["31"]
    assert copied is not as_built and list(copied) == list(as_built)
    (ready,) = [record for record in caplog.records if record.getMessage() == "subscription index ready"]
    assert ready.subscriptions == 1 and ready.compacted_seconds >= 0  # type: ignore[attr-defined]
