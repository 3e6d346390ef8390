import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from schemas.alert import Criterion, MatchedSubscription, MatchReason
from schemas.subscription import EmailFrequency
from services.notifier.digests import DigestSchedule, next_send_time, previous_send_time, schedule_for

PARIS = ZoneInfo("Europe/Paris")
DAILY_7 = DigestSchedule(EmailFrequency.DAILY, hour=7, timezone="Europe/Paris")


def _utc(year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def test_a_daily_digest_goes_at_seven_paris_time_winter_and_summer() -> None:
    assert next_send_time(DAILY_7, _utc(2024, 1, 15, 12, 0)) == _utc(2024, 1, 16, 6, 0)  # UTC+1
    assert next_send_time(DAILY_7, _utc(2024, 7, 15, 12, 0)) == _utc(2024, 7, 16, 5, 0)  # UTC+2
    assert next_send_time(DAILY_7, _utc(2024, 1, 15, 5, 59)) == _utc(2024, 1, 15, 6, 0)  # the same morning


def test_a_match_at_the_send_time_itself_goes_into_the_next_digest() -> None:
    assert next_send_time(DAILY_7, _utc(2024, 1, 15, 6, 0)) == _utc(2024, 1, 16, 6, 0)


def test_the_spring_change_in_paris_keeps_seven_oclock_local() -> None:
    # 31 March 2024: clocks go from 02:00 to 03:00. Saturday's 07:00 is 06:00 UTC, Sunday's is 05:00 UTC.
    saturday = next_send_time(DAILY_7, _utc(2024, 3, 29, 12, 0))
    sunday = next_send_time(DAILY_7, saturday)
    assert (saturday, sunday) == (_utc(2024, 3, 30, 6, 0), _utc(2024, 3, 31, 5, 0))
    assert sunday.astimezone(PARIS).hour == 7
    assert sunday - saturday == timedelta(hours=23)  # that day's period is an hour short
    assert previous_send_time(DAILY_7, sunday) == saturday


def test_the_autumn_change_in_paris_keeps_seven_oclock_local() -> None:
    # 27 October 2024: clocks go from 03:00 back to 02:00.
    saturday = next_send_time(DAILY_7, _utc(2024, 10, 25, 12, 0))
    sunday = next_send_time(DAILY_7, saturday)
    assert (saturday, sunday) == (_utc(2024, 10, 26, 5, 0), _utc(2024, 10, 27, 6, 0))
    assert sunday - saturday == timedelta(hours=25)
    assert previous_send_time(DAILY_7, sunday) == saturday


def test_an_hour_the_clocks_skip_is_sent_when_the_gap_ends() -> None:
    two = DigestSchedule(EmailFrequency.DAILY, hour=2, timezone="Europe/Paris")
    sent = next_send_time(two, _utc(2024, 3, 30, 12, 0))
    assert sent == _utc(2024, 3, 31, 1, 0)
    assert sent.astimezone(PARIS).strftime("%H:%M") == "03:00"
    assert next_send_time(two, sent) == _utc(2024, 4, 1, 0, 0)  # 02:00 CEST the next day


def test_an_hour_that_happens_twice_is_sent_once_at_its_first_occurrence() -> None:
    two = DigestSchedule(EmailFrequency.DAILY, hour=2, timezone="Europe/Paris")
    first = next_send_time(two, _utc(2024, 10, 26, 12, 0))
    assert first == _utc(2024, 10, 27, 0, 0)  # 02:00 CEST
    # from the first 02:00, and from inside the repeated hour, the next send is the next day's
    assert next_send_time(two, first) == _utc(2024, 10, 28, 1, 0)
    assert next_send_time(two, _utc(2024, 10, 27, 1, 30)) == _utc(2024, 10, 28, 1, 0)  # 02:30 CET, second time round


def test_a_weekly_digest_goes_on_its_weekday() -> None:
    monday_8 = DigestSchedule(EmailFrequency.WEEKLY, hour=8, weekday=1, timezone="Europe/Paris")
    # Wednesday 17 January 2024 → Monday 22 January, 08:00 CET
    assert next_send_time(monday_8, _utc(2024, 1, 17, 10, 0)) == _utc(2024, 1, 22, 7, 0)
    # Monday before 08:00 → the same day; at or after → a week later
    assert next_send_time(monday_8, _utc(2024, 1, 22, 6, 59)) == _utc(2024, 1, 22, 7, 0)
    assert next_send_time(monday_8, _utc(2024, 1, 22, 7, 0)) == _utc(2024, 1, 29, 7, 0)
    friday_17 = DigestSchedule(EmailFrequency.WEEKLY, hour=17, weekday=5, timezone="Europe/Paris")
    sent = next_send_time(friday_17, _utc(2024, 1, 20, 10, 0))  # a Saturday
    assert sent == _utc(2024, 1, 26, 16, 0)
    assert sent.astimezone(PARIS).isoweekday() == 5
    assert previous_send_time(friday_17, sent) == _utc(2024, 1, 19, 16, 0)


def test_a_weekly_digest_across_the_spring_change_is_a_week_less_an_hour() -> None:
    sunday_7 = DigestSchedule(EmailFrequency.WEEKLY, hour=7, weekday=7, timezone="Europe/Paris")
    before = next_send_time(sunday_7, _utc(2024, 3, 20, 12, 0))
    after = next_send_time(sunday_7, before)
    assert (before, after) == (_utc(2024, 3, 24, 6, 0), _utc(2024, 3, 31, 5, 0))
    assert after - before == timedelta(days=7, hours=-1)


def test_a_subscriber_in_french_guiana_gets_seven_oclock_cayenne_time() -> None:
    cayenne = DigestSchedule(EmailFrequency.DAILY, hour=7, timezone="America/Cayenne")  # UTC-3, no summer time
    # 09:00 UTC is 06:00 in Cayenne but already 10:00 in Paris: the digest is still ahead, at 10:00 UTC
    assert next_send_time(cayenne, _utc(2024, 3, 30, 9, 0)) == _utc(2024, 3, 30, 10, 0)
    # Paris changing its clocks changes nothing in Cayenne
    assert next_send_time(cayenne, _utc(2024, 3, 30, 10, 0)) == _utc(2024, 3, 31, 10, 0)
    weekly = DigestSchedule(EmailFrequency.WEEKLY, hour=23, weekday=7, timezone="America/Cayenne")
    # Sunday 23:00 in Cayenne is Monday 02:00 UTC
    assert next_send_time(weekly, _utc(2024, 3, 31, 12, 0)) == _utc(2024, 4, 1, 2, 0)


def test_naive_datetimes_are_utc_and_an_unknown_zone_falls_back_to_paris() -> None:
    assert next_send_time(DAILY_7, datetime(2024, 1, 15, 12, 0)) == _utc(2024, 1, 16, 6, 0)
    unknown = DigestSchedule(EmailFrequency.DAILY, hour=7, timezone="Mars/Olympus_Mons")
    assert next_send_time(unknown, _utc(2024, 1, 15, 12, 0)) == _utc(2024, 1, 16, 6, 0)


def test_a_schedule_needs_a_real_hour_and_weekday() -> None:
    with pytest.raises(ValueError, match="between 0 and 23"):
        DigestSchedule(EmailFrequency.DAILY, hour=24)
    with pytest.raises(ValueError, match="ISO weekday"):
        DigestSchedule(EmailFrequency.WEEKLY, weekday=0)
    with pytest.raises(ValueError, match="no digest schedule"):
        DigestSchedule(EmailFrequency.INSTANT)


def _subscription(sid: str, email: str, frequency: str, **more: object) -> MatchedSubscription:
    return MatchedSubscription(
        subscription_id=sid,
        name=sid,
        reasons=[MatchReason(criterion=Criterion.EVERYTHING)],
        email=email,
        email_frequency=EmailFrequency(frequency),
        **more,
    )


def test_the_most_urgent_subscription_of_an_address_decides() -> None:
    weekly = _subscription("s1", "a@example.fr", "weekly", digest_weekday=5, digest_hour=9)
    daily = _subscription("s2", "A@Example.fr", "daily", digest_hour=18, timezone="America/Cayenne")
    instant = _subscription("s3", "a@example.fr", "instant")
    other = _subscription("s4", "b@example.fr", "instant")
    assert schedule_for([weekly, other], "a@example.fr") == DigestSchedule(EmailFrequency.WEEKLY, 9, 5)
    assert schedule_for([weekly, daily, other], "a@example.fr") == DigestSchedule(
        EmailFrequency.DAILY, 18, 1, "America/Cayenne"
    )
    assert schedule_for([weekly, daily, instant], "a@example.fr") is None
    assert schedule_for([weekly, other], "b@example.fr") is None
    with pytest.raises(ValueError, match=re.escape("no subscription emails 'c@example.fr'")):
        schedule_for([weekly], "c@example.fr")
