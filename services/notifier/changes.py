"""Change alerts: what changed between the version of a notice a subscriber was sent and the new one, and whether
a call for tender is the one a planned purchase announced.

Pure: the queue finds the earlier deliveries, this module compares them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from schemas.alert import NoticeSummary
from schemas.filtering.text import tokens
from schemas.notice import NoticeKind

# Two titles name the same purchase when they share this much of their words (Jaccard over normalised tokens).
_CLOSE_TITLE = 0.5
_MIN_TITLE_TOKENS = 2


class ChangedField(StrEnum):
    CANCELLED = "cancelled"
    DEADLINE = "deadline"
    TITLE = "title"
    ESTIMATED_VALUE = "estimated_value"
    PLANNED_DATE = "planned_date"
    DESCRIPTION = "description"
    PLACE = "place"
    CHANGE_NOTE = "change_note"  # the buyer's own words about the change


@dataclass(frozen=True)
class Change:
    """One field that differs; `before` and `after` are machine values (ISO dates, '250000 EUR'), None when unset."""

    field: ChangedField
    before: str | None
    after: str | None


def what_changed(before: NoticeSummary, after: NoticeSummary) -> list[Change]:
    """The differences a subscriber cares about, most important first; [] when nothing they would see changed."""
    changes: list[Change] = []
    if after.cancelled and not before.cancelled:
        changes.append(Change(ChangedField.CANCELLED, None, "true"))
    for field, old, new in (
        (ChangedField.DEADLINE, _iso(before.deadline), _iso(after.deadline)),
        (ChangedField.TITLE, before.title, after.title),
        (ChangedField.ESTIMATED_VALUE, _money(before), _money(after)),
        (ChangedField.PLANNED_DATE, _iso(before.planned_date), _iso(after.planned_date)),
        (ChangedField.PLACE, _places(before), _places(after)),
        (ChangedField.DESCRIPTION, before.description, after.description),
    ):
        if old != new:
            changes.append(Change(field, old, new))
    if changes and after.change_description and after.change_description != before.change_description:
        changes.append(Change(ChangedField.CHANGE_NOTE, None, after.change_description))
    return changes


def changes_to_json(changes: Sequence[Change]) -> str | None:
    """How changes are stored with a delivery (None for none), so that every retry and replay shows the same."""
    if not changes:
        return None
    return json.dumps([{"field": c.field.value, "before": c.before, "after": c.after} for c in changes])


def changes_from_json(raw: str | None) -> tuple[Change, ...]:
    if not raw:
        return ()
    return tuple(Change(ChangedField(c["field"]), c["before"], c["after"]) for c in json.loads(raw))


def announced_by(planned: NoticeSummary, call: NoticeSummary) -> bool:
    """Whether `call` (a call for tender) is the purchase `planned` (a planning notice) announced: the same
    procedure (duplicate group), or the same buyer and a close title."""
    if planned.kind is not NoticeKind.PLANNING or call.kind is not NoticeKind.COMPETITION:
        return False
    if planned.duplicate_group and planned.duplicate_group == call.duplicate_group:
        return True
    if tokens(planned.buyer_name) != tokens(call.buyer_name):
        return False
    return _close_titles(planned.title, call.title)


def _close_titles(first: str, second: str) -> bool:
    one, other = set(tokens(first)), set(tokens(second))
    if len(one) < _MIN_TITLE_TOKENS or len(other) < _MIN_TITLE_TOKENS:
        return one == other and bool(one)
    return len(one & other) / len(one | other) >= _CLOSE_TITLE


def _iso(value: date | None) -> str | None:
    return None if value is None else value.isoformat()


def _money(notice: NoticeSummary) -> str | None:
    value = notice.estimated_value
    return None if value is None else f"{value.amount} {value.currency}"


def _places(notice: NoticeSummary) -> str | None:
    return ", ".join([*notice.departments, *notice.regions]) or None
