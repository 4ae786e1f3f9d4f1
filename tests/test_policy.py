"""The support policy: severities, response goals, the business calendar, and when a goal is due."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from intake.errors import ConfigError
from intake.policy import Policy, load_policy

UTC = dt.UTC
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
HOUR = dt.timedelta(hours=1)

# A desk in Berlin that closes for Christmas Day, and one in New York with its own goals.
BERLIN_TABLES: dict[str, Any] = {
    "calendar": {"timezone": "Europe/Berlin", "holidays": [dt.date(2026, 12, 25)]},
}
NEW_YORK_TABLES: dict[str, Any] = {
    "severity": {"3": {"days": 2}, "4": {"business_days": 10}},
    "calendar": {"timezone": "America/New_York", "business_days": ["Mon", "tue", "wed", "thu"]},
}


def at(
    zone: dt.tzinfo, year: int, month: int, day: int, hour: int = 0, minute: int = 0
) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=zone)


# --- the defaults -------------------------------------------------------------------------------


def test_default_levels() -> None:
    policy = load_policy({})
    assert [policy.level(n).name for n in (1, 2, 3, 4)] == [
        "Critical",
        "Serious",
        "Minor",
        "Information",
    ]
    assert [policy.level(n).describe_goal() for n in (1, 2, 3, 4)] == [
        "1 hour",
        "2 hours",
        "3 days",
        "5 business days",
    ]
    assert [policy.level(n).around_the_clock for n in (1, 2, 3, 4)] == [True, True, False, False]
    assert policy.default_severity == 3
    assert policy.calendar.timezone == ZoneInfo("UTC")
    assert policy.calendar.business_days == frozenset(range(5))


@pytest.mark.parametrize(
    ("severity", "goal"),
    [(1, dt.timedelta(hours=1)), (2, dt.timedelta(hours=2))],
)
def test_clock_goals_are_added_to_the_receipt_time(severity: int, goal: dt.timedelta) -> None:
    received = at(UTC, 2026, 11, 27, 22, 15)  # a Friday night: these goals run around the clock
    assert load_policy({}).response_due(severity, received) == received + goal


def test_severity_3_counts_its_days_on_the_business_calendar() -> None:
    # Friday 22:15: the rest of Friday, then Monday, Tuesday and most of Wednesday.
    received = at(UTC, 2026, 11, 27, 22, 15)
    assert load_policy({}).response_due(3, received) == at(UTC, 2026, 12, 2, 22, 15)


def test_severity_4_skips_the_weekend() -> None:
    friday = at(UTC, 2026, 11, 27, 10, 0)
    assert load_policy({}).response_due(4, friday) == at(UTC, 2026, 12, 4, 10, 0)


def test_severity_4_skips_a_weekend_and_a_holiday_in_the_calendars_timezone() -> None:
    # Wednesday 23 December, 10:00 in Berlin; Christmas Day and the weekend do not count:
    # Thu 24 (1), Mon 28 (2), Tue 29 (3), Wed 30 (4), Thu 31 (5), at 10:00 Berlin time.
    received = at(BERLIN, 2026, 12, 23, 10, 0)
    due = load_policy(BERLIN_TABLES).response_due(4, received)
    assert due == at(BERLIN, 2026, 12, 31, 10, 0)
    assert due.utcoffset() == dt.timedelta(0)  # given back in UTC: 09:00Z


def test_the_calendars_timezone_decides_which_day_a_receipt_falls_on() -> None:
    # Thursday 17 December 23:30 UTC is already Friday 18 December in Berlin.
    received = at(UTC, 2026, 12, 17, 23, 30)
    in_utc = load_policy({"calendar": {"holidays": [dt.date(2026, 12, 25)]}})
    # UTC: Fri 18, Mon 21, Tue 22, Wed 23, Thu 24.
    assert in_utc.response_due(4, received) == at(UTC, 2026, 12, 24, 23, 30)
    # Berlin: Mon 21, Tue 22, Wed 23, Thu 24, (Christmas), Mon 28 at 00:30 Berlin.
    assert load_policy(BERLIN_TABLES).response_due(4, received) == at(BERLIN, 2026, 12, 28, 0, 30)


def test_business_days_keep_the_local_time_across_a_clock_change() -> None:
    # Berlin leaves summer time on Sunday 25 October 2026: 10:00 CEST is 08:00Z, 10:00 CET 09:00Z.
    received = at(BERLIN, 2026, 10, 23, 10, 0)
    assert load_policy(BERLIN_TABLES).response_due(4, received) == at(UTC, 2026, 10, 30, 9, 0)


# --- overriding the defaults --------------------------------------------------------------------


def test_a_goal_unit_in_a_table_replaces_the_default_unit() -> None:
    policy = load_policy({"severity": {"3": {"hours": 8}, "4": {"days": 10}}})
    assert (policy.level(3).goal_amount, policy.level(3).goal_unit) == (8, "hours")
    assert policy.level(4).describe_goal() == "10 days"
    received = at(UTC, 2026, 11, 27, 10, 0)
    assert policy.response_due(3, received) == received + 8 * HOUR
    # Neither runs around the clock: ten days of the business calendar are two weeks.
    assert policy.response_due(4, received) == at(UTC, 2026, 12, 11, 10, 0)
    assert policy.level(3).name == "Minor"  # the rest of the default table stays


def test_a_table_without_a_goal_keeps_the_default_goal() -> None:
    policy = load_policy({"severity": {"1": {"name": "Urgent", "meaning": "down"}}})
    level = policy.level(1)
    assert (level.name, level.meaning, level.describe_goal()) == ("Urgent", "down", "1 hour")


def test_configured_business_days_and_default_severity() -> None:
    policy = load_policy(NEW_YORK_TABLES | {"default_severity": 4})
    assert policy.default_severity == 4
    assert policy.calendar.business_days == frozenset({0, 1, 2, 3})
    # Monday 10:00 in New York plus 10 four-day-week business days is Wednesday two weeks on.
    received = at(NEW_YORK, 2026, 11, 2, 10, 0)
    assert policy.response_due(4, received) == at(NEW_YORK, 2026, 11, 18, 10, 0)


@pytest.mark.parametrize(
    ("tables", "message"),
    [
        ({"severity": {"5": {"hours": 1}}}, r"\[severity\.5\]: severities are 1, 2, 3 and 4"),
        ({"severity": {"2": {"minutes": 30}}}, r"\[severity\.2\]: unknown key 'minutes'"),
        ({"severity": {"2": {"hours": 1, "days": 1}}}, r"\[severity\.2\] must give its response"),
        ({"severity": {"3": {"days": 0}}}, r"\[severity\.3\] days must be a whole number above 0"),
        ({"severity": {"3": {"days": -1}}}, r"whole number above 0, not -1"),
        ({"severity": {"1": {"hours": "1"}}}, r"\[severity\.1\] hours must be a whole number"),
        ({"severity": {"1": {"hours": 1.5}}}, r"\[severity\.1\] hours must be a whole number"),
        ({"severity": {"1": {"hours": True}}}, r"\[severity\.1\] hours must be a whole number"),
        ({"default_severity": 7}, r"'default_severity' must be 1, 2, 3 or 4, not 7"),
        ({"default_severity": "3"}, r"'default_severity' must be 1, 2, 3 or 4"),
        ({"calendar": {"timezone": "Mars/Olympus_Mons"}}, r"timezone 'Mars/Olympus_Mons'"),
        ({"calendar": {"weekend": ["sat"]}}, r"\[calendar\]: unknown key 'weekend'"),
        ({"calendar": {"business_days": ["mon", "funday"]}}, r"business_days must list"),
        ({"calendar": {"business_days": "mon"}}, r"business_days must list"),
        ({"calendar": {"holidays": ["2026-12-25"]}}, r"holidays must list dates"),
        ({"calendar": {"holidays": [dt.datetime(2026, 12, 25)]}}, r"holidays must list dates"),
        pytest.param({"severity": 3}, r"\[severity\.4\]"),
        pytest.param({"severity": {"1": "Critical"}}, r"\[severity\.4\]"),
        pytest.param({"calendar": "UTC"}, r"\[calendar\] must be a table"),
        pytest.param({"default_severity": True}, r"'default_severity'"),
    ],
)
def test_a_bad_table_is_refused_with_a_clear_message(tables: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_policy(tables)


# --- edge cases: weekends, clock changes, odd calendars -----------------------------------------


def test_a_weekend_receipt_is_due_after_a_friday_night_receipt() -> None:
    policy = load_policy({})
    friday_night = policy.response_due(4, at(UTC, 2026, 11, 27, 23, 59))
    saturday = policy.response_due(4, at(UTC, 2026, 11, 28, 0, 0))
    assert friday_night == at(UTC, 2026, 12, 4, 23, 59)
    # The clock starts on Monday 30 November: five whole business days end with Friday 4 December.
    assert saturday == at(UTC, 2026, 12, 7, 0, 0)


def test_an_hour_goal_is_an_hour_across_a_clock_change() -> None:
    # 02:30 CEST on 25 October 2026 (00:30Z); an hour later is 02:30 CET (01:30Z).
    received = at(BERLIN, 2026, 10, 25, 2, 30)
    due = load_policy({}).response_due(1, received)
    # (Aware datetimes in the same zone subtract as wall times, so compare in UTC.)
    assert due.astimezone(UTC) - received.astimezone(UTC) == HOUR


def test_a_calendar_without_business_days_is_refused() -> None:
    with pytest.raises(ConfigError, match="business_days must list one or more days"):
        load_policy({"calendar": {"business_days": []}})


def test_a_naive_receipt_time_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        load_policy({}).response_due(1, dt.datetime(2026, 11, 27, 10, 0))


# --- properties ---------------------------------------------------------------------------------

POLICIES: dict[str, Policy] = {
    "defaults (UTC)": load_policy({}),
    "Berlin, Christmas Day off": load_policy(BERLIN_TABLES),
    "New York, four-day week": load_policy(NEW_YORK_TABLES),
}
policy_names = st.sampled_from(sorted(POLICIES))
severities = st.sampled_from((1, 2, 3, 4))
# Receipt times that are real instants, written in any time zone (DST folds and gaps included).
aware_times = st.datetimes(
    min_value=dt.datetime(1990, 1, 1),
    max_value=dt.datetime(2100, 1, 1),
    timezones=st.timezones(),
    allow_imaginary=False,
)
a_little_later = st.timedeltas(min_value=dt.timedelta(0), max_value=dt.timedelta(days=4))

FRIDAY_NIGHT = at(UTC, 2026, 11, 27, 23, 59)
FALL_BACK_HOUR = at(BERLIN, 2026, 10, 25, 2, 30)  # 02:30 CEST, just before the clocks go back


@settings(deadline=None)
@given(name=policy_names, severity=severities, received=aware_times)
def test_a_goal_falls_due_after_the_receipt(
    name: str, severity: int, received: dt.datetime
) -> None:
    due = POLICIES[name].response_due(severity, received)
    assert due.utcoffset() is not None
    assert due.astimezone(UTC) > received.astimezone(UTC)


@pytest.mark.parametrize("severity", [1, 2, 3, 4])
@settings(deadline=None)
@given(name=policy_names, received=aware_times, later=a_little_later)
@example(name="defaults (UTC)", received=FRIDAY_NIGHT, later=dt.timedelta(minutes=1))
def test_a_later_receipt_is_never_due_earlier(
    severity: int, name: str, received: dt.datetime, later: dt.timedelta
) -> None:
    policy = POLICIES[name]
    # `later` is elapsed time; adding it in a zone with clock changes would add wall-clock time.
    afterwards = (received.astimezone(UTC) + later).astimezone(received.tzinfo)
    first = policy.response_due(severity, received).astimezone(UTC)
    assert first <= policy.response_due(severity, afterwards).astimezone(UTC)


@pytest.mark.parametrize("severity", [1, 2, 3, 4])
@settings(deadline=None)
@given(name=policy_names, received=aware_times)
@example(name="defaults (UTC)", received=FALL_BACK_HOUR)
def test_the_zone_a_receipt_time_is_written_in_does_not_matter(
    severity: int, name: str, received: dt.datetime
) -> None:
    policy = POLICIES[name]
    due = policy.response_due(severity, received).astimezone(UTC)
    assert due == policy.response_due(severity, received.astimezone(UTC)).astimezone(UTC)
