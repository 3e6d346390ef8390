"""The matcher's last steps before it is ready: the index laid out anew, then the heap frozen and moved onto huge
pages, and what it logs of them."""

from __future__ import annotations

import gc
import logging
from collections.abc import Iterator

import pytest

from services.matcher import app as matcher_app
from services.matcher.app import Matcher, _move_onto_huge_pages
from services.runtime.huge_pages import Collapse
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


@pytest.mark.parametrize(
    ("collapse", "message", "fields"),
    [
        (Collapse(3 << 30, 4.567, 2), "subscription index moved onto huge pages",
         {"mebibytes": 3072, "seconds": 4.57, "refused_ranges": 2}),
        (Collapse(0, 0.0, 0, unsupported="MADV_COLLAPSE refused: Invalid argument"),
         "subscription index left on ordinary pages", {"reason": "MADV_COLLAPSE refused: Invalid argument"}),
    ],
)  # fmt: skip
def test_the_matcher_logs_what_the_kernel_did(
    collapse: Collapse,
    message: str,
    fields: dict[str, object],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What `collapse_heap` reports, in the matcher's log (the real collapse is tested in tests/unit/runtime)."""
    caplog.set_level(logging.INFO, logger="services.matcher.app")
    monkeypatch.setattr(matcher_app, "collapse_heap", lambda: collapse)

    _move_onto_huge_pages()

    (record,) = caplog.records
    assert record.getMessage() == message
    assert {name: getattr(record, name) for name in fields} == fields
