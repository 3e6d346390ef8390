"""When a daily or weekly digest is sent, in the subscriber's own time zone. No I/O.

A digest period ends at its send time: `digest_hour`:00 local time, every day (daily) or on `digest_weekday`
(weekly, ISO: 1 is Monday). A notice matched at `t` goes into the digest of the first send time strictly after `t`.
Wall-clock hours are kept across daylight-saving changes: a 07:00 digest in Paris is sent at 06:00 UTC in winter
and 05:00 UTC in summer. An hour the clocks skip (02:00 on the spring change in Paris) is sent when the gap ends
(03:00); an hour that occurs twice (on the autumn change) is sent at its first occurrence only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from schemas.alert import MatchedSubscription
from schemas.subscription import EmailFrequency

DEFAULT_TIMEZONE = "Europe/Paris"
# How far a search for the next send time looks: a weekly digest is at most 8 local dates away.
_SEARCH_DAYS = 9
# Instant first, then the most frequent: when several subscriptions email one address, the soonest wins.
_URGENCY = {EmailFrequency.INSTANT: 0, EmailFrequency.DAILY: 1, EmailFrequency.WEEKLY: 2}


@dataclass(frozen=True)
class DigestSchedule:
    """When one address's digest is sent: daily or weekly, at a local hour of a time zone."""

    frequency: EmailFrequency
    hour: int = 7
    weekday: int = 1  # ISO weekday, weekly digests only
    timezone: str = DEFAULT_TIMEZONE

    def __post_init__(self) -> None:
        if self.frequency is EmailFrequency.INSTANT:
            raise ValueError("an instant email has no digest schedule")
        if not 0 <= self.hour <= 23:
            raise ValueError(f"digest hour {self.hour} is not between 0 and 23")
        if not 1 <= self.weekday <= 7:
            raise ValueError(f"digest weekday {self.weekday} is not an ISO weekday (1 Monday … 7 Sunday)")

    @property
    def zone(self) -> ZoneInfo:
        try:
            return ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):  # the API checks zones; an old or foreign event may not
            return ZoneInfo(DEFAULT_TIMEZONE)


def schedule_for(subscriptions: Sequence[MatchedSubscription], email: str) -> DigestSchedule | None:
    """How a notice reaches `email`: None for an instant email, else the digest schedule.

    Several subscriptions of one account may email the same address; the address gets the notice once, as soon as
    the most urgent of them asks (instant before daily before weekly; the first listed among equals).
    """
    wanted = email.strip().lower()
    mine = [s for s in subscriptions if s.email is not None and s.email.strip().lower() == wanted]
    if not mine:
        raise ValueError(f"no subscription emails {email!r}")
    chosen = min(mine, key=lambda s: _URGENCY[s.email_frequency])  # min keeps the first among equals
    if chosen.email_frequency is EmailFrequency.INSTANT:
        return None
    return DigestSchedule(chosen.email_frequency, chosen.digest_hour, chosen.digest_weekday, chosen.timezone)


def next_send_time(schedule: DigestSchedule, after: datetime) -> datetime:
    """The first send time strictly after `after` (a naive datetime is taken as UTC), in UTC."""
    moment = _utc(after)
    local_day = moment.astimezone(schedule.zone).date()
    for offset in range(_SEARCH_DAYS):
        candidate = _send_time_on(schedule, local_day + timedelta(days=offset))
        if candidate is not None and candidate > moment:
            return candidate
    raise AssertionError(f"no send time found after {after} for {schedule}")  # pragma: no cover - see _SEARCH_DAYS


def previous_send_time(schedule: DigestSchedule, send_time: datetime) -> datetime:
    """The send time before `send_time`: the period `send_time` closes starts there."""
    moment = _utc(send_time)
    local_day = moment.astimezone(schedule.zone).date()
    for offset in range(0, -_SEARCH_DAYS - 1, -1):
        candidate = _send_time_on(schedule, local_day + timedelta(days=offset))
        if candidate is not None and candidate < moment:
            return candidate
    raise AssertionError(f"no send time found before {send_time} for {schedule}")  # pragma: no cover


def _send_time_on(schedule: DigestSchedule, day: date) -> datetime | None:
    """The send time on local date `day`, in UTC; None when the schedule sends nothing that day.

    `fold=0` reads a repeated hour as its first occurrence, and a skipped hour with the offset in force before the
    change, which lands as far past the gap's start as the hour was: 02:00 on the spring change is 03:00.
    """
    if schedule.frequency is EmailFrequency.WEEKLY and day.isoweekday() != schedule.weekday:
        return None
    return datetime.combine(day, time(schedule.hour), tzinfo=schedule.zone).astimezone(UTC)


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
