#!/usr/bin/env python3
"""Generate preview_cases.json: next run times of cron schedules, computed independently
of the Rust code, as the oracle for crates/domain/tests/preview_cases.rs.

Standard library only (Python 3.9+: zoneinfo, datetime, calendar). The time zone rules
come from the system tz database (zoneinfo.TZPATH); check that it is the same tzdata
release as the chrono-tz crate the Rust side compiles in (both 2025b when this was
written), or transitions in zones that changed their rules recently may differ.

Regenerate (from the repository root):

    python3 crates/domain/tests/data/generate_preview_cases.py \
        > crates/domain/tests/data/preview_cases.json

How the oracle works, deliberately without looking at the Rust implementation:

* A small cron parser of its own for the grammar documented on CronSchedule: 5 fields,
  or 6 with leading seconds; numbers, JAN-DEC / SUN-SAT names (case-insensitive),
  ranges a-b, steps */s a/s a-b/s, lists, ? as * in the day fields, L (last day of the
  month) in day-of-month, a#n and aL in day-of-week, 0 and 7 both Sunday, a range
  ending in SUN ends at 7, and the aliases @yearly @annually @monthly @weekly @daily
  @midnight @hourly. When both day fields are restricted (neither exactly * or ?), a
  day matches if either matches.
* next_after(after) walks the LOCAL WALL CLOCK forward from after's local time, day by
  day, then hour, minute and second in order, and for each wall-clock time the
  expression matches asks zoneinfo which instants it denotes (trying fold=0 and fold=1
  and keeping those that round-trip):
    - none (a spring-forward gap): skipped;
    - one: that instant;
    - two (a fall-back repeat): the earlier one only.
  The first such instant strictly later than `after` is the answer. This is the
  documented daylight-saving rule: a non-existent local time is skipped, a repeated one
  runs once, at its first instant.
* expected = the chain next_after(after), next_after(that), ... of the requested length.
"""

from __future__ import annotations

import calendar
import json
import sys
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

UTC = timezone.utc
MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
WEEKDAYS = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]
ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
HORIZON_DAYS = 60 * 366  # far enough for 29 February across 2100


# ---------------------------------------------------------------- the cron parser


@dataclass
class Cron:
    seconds: set[int]
    minutes: set[int]
    hours: set[int]
    days: set[int]
    last_day: bool
    months: set[int]
    weekdays: set[int]  # 0 = Sunday .. 6 = Saturday
    nth_weekdays: set[tuple[int, int]] = field(default_factory=set)  # (weekday, n)
    last_weekdays: set[int] = field(default_factory=set)
    star_days: bool = False
    star_weekdays: bool = False


def value(text: str, lo: int, hi: int, names: list[str] | None, offset: int) -> int:
    if text.isdigit():
        v = int(text)
    elif names and text.upper() in names:
        v = names.index(text.upper()) + offset
    else:
        raise ValueError(f"bad value {text!r}")
    if not lo <= v <= hi:
        raise ValueError(f"{v} out of {lo}-{hi}")
    return v


def plain_items(text: str, lo: int, hi: int, names=None, offset=0, weekday=False) -> set[int]:
    """One list element made of numbers, names, ranges and steps."""
    if "/" in text:
        base, step_text = text.split("/")
        step = int(step_text)
        assert step >= 1
    else:
        base, step = text, None
    if base == "*":
        assert step is not None
        first, last = lo, hi
    elif "-" in base:
        a, b = base.split("-")
        first = value(a, lo, hi, names, offset)
        last = value(b, lo, hi, names, offset)
        if weekday and b.upper() == "SUN" and first > 0:
            last = 7
        assert first <= last, text
    else:
        first = value(base, lo, hi, names, offset)
        last = hi if step is not None else first
    return set(range(first, last + 1, step or 1))


def parse_cron(expression: str) -> Cron:
    expression = expression.strip()
    if expression.startswith("@"):
        expression = ALIASES[expression.lower()]
    parts = expression.split()
    if len(parts) == 5:
        parts = ["0"] + parts
    assert len(parts) == 6, expression
    sec, minute, hour, dom, month, dow = parts

    def simple(text, lo, hi, names=None, offset=0):
        if text == "*":
            return set(range(lo, hi + 1))
        out = set()
        for item in text.split(","):
            out |= plain_items(item, lo, hi, names, offset)
        return out

    cron = Cron(
        seconds=simple(sec, 0, 59),
        minutes=simple(minute, 0, 59),
        hours=simple(hour, 0, 23),
        days=set(),
        last_day=False,
        months=simple(month, 1, 12, MONTHS, 1),
        weekdays=set(),
    )
    if dom in ("*", "?"):
        cron.star_days = True
        cron.days = set(range(1, 32))
    else:
        for item in dom.split(","):
            if item.upper() == "L":
                cron.last_day = True
            else:
                cron.days |= plain_items(item, 1, 31)
    if dow in ("*", "?"):
        cron.star_weekdays = True
        cron.weekdays = set(range(7))
    else:
        for item in dow.split(","):
            if "#" in item:
                day, n = item.split("#")
                cron.nth_weekdays.add((value(day, 0, 7, WEEKDAYS, 0) % 7, int(n)))
            elif item.upper().endswith("L"):
                cron.last_weekdays.add(value(item[:-1], 0, 7, WEEKDAYS, 0) % 7)
            else:
                cron.weekdays |= {d % 7 for d in plain_items(item, 0, 7, WEEKDAYS, 0, weekday=True)}
    return cron


def day_matches(cron: Cron, d: date) -> bool:
    if d.month not in cron.months:
        return False
    days_in_month = calendar.monthrange(d.year, d.month)[1]
    by_day = d.day in cron.days or (cron.last_day and d.day == days_in_month)
    weekday = (d.weekday() + 1) % 7  # Python: Monday = 0; cron: Sunday = 0
    nth = (d.day - 1) // 7 + 1
    by_weekday = (
        weekday in cron.weekdays
        or (weekday, nth) in cron.nth_weekdays
        or (weekday in cron.last_weekdays and d.day + 7 > days_in_month)
    )
    if cron.star_days and cron.star_weekdays:
        return True
    if cron.star_weekdays:
        return by_day
    if cron.star_days:
        return by_weekday
    return by_day or by_weekday


# ---------------------------------------------------------------- wall clock to instants


def instants(naive: datetime, zone: ZoneInfo) -> list[datetime]:
    """The UTC instants at which the local wall clock of `zone` shows `naive`."""
    found = set()
    for fold in (0, 1):
        instant = naive.replace(tzinfo=zone, fold=fold).astimezone(UTC)
        if instant.astimezone(zone).replace(tzinfo=None) == naive:
            found.add(instant)
    return sorted(found)


def next_after(cron: Cron, zone: ZoneInfo, after: datetime) -> datetime | None:
    local = after.astimezone(zone).replace(tzinfo=None, microsecond=0)
    start = local + timedelta(seconds=1)
    day = start.date()
    for _ in range(HORIZON_DAYS):
        if day_matches(cron, day):
            for h in sorted(cron.hours):
                for m in sorted(cron.minutes):
                    for s in sorted(cron.seconds):
                        naive = datetime(day.year, day.month, day.day, h, m, s)
                        if naive < start:
                            continue
                        at = instants(naive, zone)
                        if not at:
                            continue  # skipped by a spring-forward gap
                        if at[0] > after:  # a repeated time counts at its first instant
                            return at[0]
        day += timedelta(days=1)
    return None


def upcoming(expression: str, zone_name: str, after: datetime, count: int) -> list[datetime]:
    cron, zone = parse_cron(expression), ZoneInfo(zone_name)
    runs, cursor = [], after
    while len(runs) < count:
        nxt = next_after(cron, zone, cursor)
        if nxt is None:
            break
        runs.append(nxt)
        cursor = nxt
    return runs


def rfc3339(instant: datetime) -> str:
    instant = instant.astimezone(UTC)
    text = instant.strftime("%Y-%m-%dT%H:%M:%S")
    if instant.microsecond:
        text += f".{instant.microsecond:06d}".rstrip("0")
    return text + "Z"


def parse_rfc3339(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


# ---------------------------------------------------------------- known facts, as a check


def check_tzdata() -> None:
    facts = [
        # (zone, UTC instant of a transition, local wall time just before, just after)
        ("Europe/Oslo", "2026-03-29T01:00:00Z", "2026-03-29T01:59:59", "2026-03-29T03:00:00"),
        ("Europe/Oslo", "2026-10-25T01:00:00Z", "2026-10-25T02:59:59", "2026-10-25T02:00:00"),
        ("America/New_York", "2026-03-08T07:00:00Z", "2026-03-08T01:59:59", "2026-03-08T03:00:00"),
        ("America/New_York", "2026-11-01T06:00:00Z", "2026-11-01T01:59:59", "2026-11-01T01:00:00"),
        ("Australia/Sydney", "2026-04-04T16:00:00Z", "2026-04-05T02:59:59", "2026-04-05T02:00:00"),
        ("Australia/Sydney", "2026-10-03T16:00:00Z", "2026-10-04T01:59:59", "2026-10-04T03:00:00"),
    ]
    for zone_name, at, before, after in facts:
        zone = ZoneInfo(zone_name)
        instant = parse_rfc3339(at)
        got_before = (instant - timedelta(seconds=1)).astimezone(zone).replace(tzinfo=None)
        got_after = instant.astimezone(zone).replace(tzinfo=None)
        assert got_before.isoformat() == before, (zone_name, at, got_before)
        assert got_after.isoformat() == after, (zone_name, at, got_after)
    assert instants(datetime(2026, 3, 29, 2, 30), ZoneInfo("Europe/Oslo")) == []
    assert len(instants(datetime(2026, 10, 25, 2, 30), ZoneInfo("Europe/Oslo"))) == 2


# ---------------------------------------------------------------- the cases


def local_to_utc(zone_name: str, text: str, fold: int = 0) -> datetime:
    naive = datetime.fromisoformat(text)
    return naive.replace(tzinfo=ZoneInfo(zone_name), fold=fold).astimezone(UTC)


CASES: list[dict] = []


def case(name: str, cron: str, zone: str, after: datetime | str, count: int) -> None:
    if isinstance(after, str):
        after = parse_rfc3339(after)
    if any(c["cron"] == cron and c["timezone"] == zone and c["after"] == rfc3339(after)
           for c in CASES):
        return  # the same question asked twice (e.g. "30 {h}" when h is 2)
    expected = upcoming(cron, zone, after, count)
    assert len(expected) == count, (name, cron, zone, after, expected)
    CASES.append(
        {
            "name": name,
            "cron": cron,
            "timezone": zone,
            "after": rfc3339(after),
            "expected": [rfc3339(t) for t in expected],
        }
    )


# Daylight-saving days: (zone, local date, kind, the hour that is skipped or repeated).
DST_DAYS = [
    ("Europe/Oslo", "2026-03-29", "spring", 2),
    ("Europe/Oslo", "2026-10-25", "fall", 2),
    ("Europe/Oslo", "2027-03-28", "spring", 2),
    ("Europe/Oslo", "2027-10-31", "fall", 2),
    ("America/New_York", "2026-03-08", "spring", 2),
    ("America/New_York", "2026-11-01", "fall", 1),
    ("America/New_York", "2027-03-14", "spring", 2),
    ("America/New_York", "2027-11-07", "fall", 1),
    ("Australia/Sydney", "2026-04-05", "fall", 2),
    ("Australia/Sydney", "2026-10-04", "spring", 2),
    ("Australia/Sydney", "2027-04-04", "fall", 2),
    ("Australia/Sydney", "2027-10-03", "spring", 2),
]


def dst_cases() -> None:
    for zone, day, kind, h in DST_DAYS:
        eve = (date.fromisoformat(day) - timedelta(days=1)).isoformat()
        evening = local_to_utc(zone, f"{eve}T22:00:00")
        early = local_to_utc(zone, f"{day}T00:00:00")
        tag = f"{zone} {kind} {day}"
        for cron, count, after in [
            (f"30 {h} * * *", 3, evening),
            (f"0 {h} * * *", 3, evening),
            (f"15 {h} * * *", 3, evening),
            (f"59 {h - 1} * * *", 3, evening),
            ("30 2 * * *", 3, evening),
            ("15 1 * * *", 3, evening),
            ("0 3 * * *", 3, evening),
            ("0 3 * * 0", 2, evening),
            ("0 0 * * *", 3, evening),
            ("0 * * * *", 8, evening),
            ("@hourly", 6, early),
            ("*/30 * * * *", 12, evening),
            (f"*/15 {h - 1}-{h + 1} * * *", 10, evening),
            (f"0 30 {h} * * *", 2, evening),
            ("0 0 1,2,3 * * *", 6, early),
        ]:
            case(f"{tag}: {cron}", cron, zone, after, count)
        # Right at the change.
        if kind == "spring":
            gap = local_to_utc(zone, f"{day}T{h - 1:02d}:59:30")
            case(f"{tag}: every 20 s across the gap", "*/20 * * * * *", zone, gap, 5)
            case(f"{tag}: every minute across the gap", "* * * * *", zone, gap, 3)
            case(f"{tag}: every 10 min across the gap", "*/10 * * * *", zone,
                 local_to_utc(zone, f"{day}T{h - 1:02d}:35:00"), 4)
        else:
            first = local_to_utc(zone, f"{day}T{h:02d}:10:00", fold=0)
            second = local_to_utc(zone, f"{day}T{h:02d}:10:00", fold=1)
            for cron, count in [
                ("*/30 * * * *", 4),
                ("0 * * * *", 3),
                (f"30 {h} * * *", 2),
                ("*/10 * * * *", 8),
                ("* * * * *", 3),
                ("*/20 * * * * *", 4),
                (f"0 {h} * * *", 2),
            ]:
                case(f"{tag}: {cron} after {h:02d}:10 first pass", cron, zone, first, count)
                case(f"{tag}: {cron} after {h:02d}:10 second pass", cron, zone, second, count)
            exact = local_to_utc(zone, f"{day}T{h:02d}:30:00", fold=0)
            case(f"{tag}: after the first {h:02d}:30 exactly", f"30 {h} * * *", zone, exact, 2)
            last_second = local_to_utc(zone, f"{day}T{h:02d}:59:59", fold=0)
            case(f"{tag}: last second of the first pass", "*/15 * * * *", zone, last_second, 4)


def other_zone_cases() -> None:
    # Zones with unusual offsets or unusual transitions.
    for cron, zone, after, count in [
        ("30 9 * * *", "Asia/Kolkata", "2026-06-01T00:00:00Z", 3),
        ("*/45 * * * *", "Asia/Kolkata", "2026-06-01T00:00:00Z", 5),
        ("0 0 * * *", "Asia/Kolkata", "2026-12-31T12:00:00Z", 3),
        ("0 0 * * *", "Asia/Kathmandu", "2026-06-01T00:00:00Z", 3),
        ("15 */6 * * *", "Asia/Kathmandu", "2026-06-01T00:00:00Z", 6),
        ("0 9 * * MON-FRI", "Asia/Kathmandu", "2026-06-05T00:00:00Z", 5),
        # Chatham: +12:45 / +13:45; 2026-04-05 03:45 -> 02:45, 2026-09-27 02:45 -> 03:45.
        ("0 3 * * *", "Pacific/Chatham", "2026-04-03T00:00:00Z", 3),
        ("*/30 * * * *", "Pacific/Chatham", "2026-04-04T12:30:00Z", 6),
        ("50 2 * * *", "Pacific/Chatham", "2026-09-25T00:00:00Z", 3),
        ("0 3 * * *", "Pacific/Chatham", "2026-09-25T00:00:00Z", 3),
        ("0 * * * *", "Pacific/Chatham", "2026-09-26T12:00:00Z", 4),
        ("0 * * * *", "Pacific/Chatham", "2026-04-04T12:00:00Z", 4),
        # Lord Howe: half-hour changes; 2026-04-05 02:00 -> 01:30, 2026-10-04 02:00 -> 02:30.
        ("45 1 * * *", "Australia/Lord_Howe", "2026-04-03T12:00:00Z", 3),
        ("*/15 * * * *", "Australia/Lord_Howe", "2026-04-04T14:00:00Z", 8),
        ("15 2 * * *", "Australia/Lord_Howe", "2026-10-02T12:00:00Z", 3),
        ("*/15 * * * *", "Australia/Lord_Howe", "2026-10-03T14:30:00Z", 6),
        # Santiago changes at midnight: 2026-04-05 00:00 -> 04-04 23:00, 2026-09-06 00:00 -> 01:00.
        ("0 0 * * *", "America/Santiago", "2026-04-02T12:00:00Z", 4),
        ("30 23 * * *", "America/Santiago", "2026-04-02T12:00:00Z", 4),
        ("0 0 * * *", "America/Santiago", "2026-09-04T12:00:00Z", 3),
        ("0 * * * *", "America/Santiago", "2026-09-06T02:00:00Z", 4),
        # Havana changes at midnight too (00:00 -> 01:00 on 2026-03-08).
        ("0 0 * * *", "America/Havana", "2026-03-06T12:00:00Z", 3),
        ("30 0 * * *", "America/Havana", "2026-10-30T12:00:00Z", 3),
        # Half-hour standard offset with DST.
        ("30 1 * * *", "America/St_Johns", "2026-03-07T12:00:00Z", 3),
        ("30 1 * * *", "America/St_Johns", "2026-10-31T12:00:00Z", 3),
        ("0 1 * * *", "Europe/London", "2026-03-28T12:00:00Z", 3),
        ("30 1 * * *", "Europe/London", "2026-10-24T12:00:00Z", 3),
        ("0 12 * * *", "Asia/Tokyo", "2026-06-01T00:00:00Z", 3),
        ("0 0 1 1 *", "Pacific/Kiritimati", "2026-06-01T00:00:00Z", 2),
        ("0 0 * * *", "Pacific/Apia", "2026-06-01T00:00:00Z", 2),
        ("0 9 * * *", "America/Sao_Paulo", "2026-06-01T00:00:00Z", 2),
        ("30 2 * * *", "Africa/Casablanca", "2026-02-13T12:00:00Z", 4),
        ("30 2 * * *", "Africa/Casablanca", "2026-03-20T12:00:00Z", 4),
        ("0 2 * * *", "America/Adak", "2026-03-07T12:00:00Z", 3),
    ]:
        case(f"{zone}: {cron}", cron, zone, after, count)


def ordinary_cases() -> None:
    utc_cases = [
        # Names, ranges, lists.
        ("0 9 * * MON-FRI", "2026-01-02T10:00:00Z", 5),
        ("0 9 * * mon-fri", "2026-01-09T08:00:00Z", 3),
        ("0 0 1 JAN,JUL *", "2026-02-01T00:00:00Z", 3),
        ("0 12 * * sat,SUN", "2026-05-01T00:00:00Z", 4),
        ("0 0 * * FRI-SUN", "2026-05-04T00:00:00Z", 4),
        ("0 0 * * 5-7", "2026-05-04T00:00:00Z", 4),
        ("0 0 * * 7", "2026-05-04T00:00:00Z", 2),
        ("0 0 * * 0", "2026-05-04T00:00:00Z", 2),
        ("0 6 * MAR-MAY MON", "2026-01-01T00:00:00Z", 3),
        ("15,45 8-10 * * *", "2026-03-03T07:00:00Z", 7),
        ("0 0 1,15 * *", "2026-03-03T00:00:00Z", 4),
        ("0 22 * * 1-5", "2026-07-02T00:00:00Z", 4),
        # Steps.
        ("*/7 * * * *", "2026-03-03T10:50:00Z", 5),
        ("5/15 * * * *", "2026-03-03T10:50:00Z", 5),
        ("0 8-18/2 * * *", "2026-03-03T17:00:00Z", 4),
        ("0 0 1 */3 *", "2026-02-10T00:00:00Z", 4),
        ("0 0 */10 * *", "2026-02-20T00:00:00Z", 4),
        ("0 12 * * */2", "2026-03-03T00:00:00Z", 4),
        ("10-50/20 * * * *", "2026-03-03T10:55:00Z", 4),
        # Seconds fields.
        ("*/15 * * * * *", "2026-03-03T10:59:50Z", 5),
        ("0 0 12 * * *", "2026-03-03T12:00:00Z", 2),
        ("30 59 23 31 12 *", "2026-06-01T00:00:00Z", 2),
        ("5,35 * * * * *", "2026-03-03T10:00:00Z", 4),
        ("0 */5 * * * *", "2026-03-03T10:03:00Z", 3),
        ("59 59 23 * * *", "2026-02-28T00:00:00Z", 2),
        # Aliases.
        ("@yearly", "2026-03-03T00:00:00Z", 2),
        ("@annually", "2026-12-31T23:59:59Z", 2),
        ("@monthly", "2026-01-31T00:00:00Z", 3),
        ("@weekly", "2026-03-03T00:00:00Z", 2),
        ("@daily", "2026-03-03T00:00:00Z", 2),
        ("@midnight", "2026-02-28T12:00:00Z", 2),
        ("@hourly", "2026-03-03T23:30:00Z", 2),
        # L and #.
        ("0 0 L * *", "2026-01-15T00:00:00Z", 5),
        ("0 0 L 2 *", "2026-01-01T00:00:00Z", 3),
        ("0 18 1,L * *", "2026-01-15T00:00:00Z", 4),
        ("0 10 * * 1#1", "2026-01-01T00:00:00Z", 4),
        ("0 10 * * FRI#3", "2026-01-01T00:00:00Z", 3),
        ("0 10 * * 1#5", "2026-01-01T00:00:00Z", 3),
        ("0 0 * * 5L", "2026-01-01T00:00:00Z", 4),
        ("0 0 * * SUNL", "2026-01-01T00:00:00Z", 3),
        ("0 0 * * 7L", "2026-01-01T00:00:00Z", 2),
        ("0 0 * 2 1#5", "2026-01-01T00:00:00Z", 2),
        ("0 9 * * 2#2,4#4", "2026-01-01T00:00:00Z", 4),
        # Leap days.
        ("0 0 29 2 *", "2026-01-01T00:00:00Z", 3),
        ("0 0 29 2 *", "2097-01-01T00:00:00Z", 2),
        ("0 12 28,29 2 *", "2027-01-01T00:00:00Z", 4),
        # Day of month OR day of week.
        ("0 0 13 * FRI", "2026-01-01T00:00:00Z", 6),
        ("0 0 1 * MON", "2026-01-28T00:00:00Z", 4),
        ("0 0 30 2 MON", "2026-01-28T00:00:00Z", 3),
        ("0 0 ? * MON", "2026-01-28T00:00:00Z", 2),
        ("0 0 1 * ?", "2026-01-28T00:00:00Z", 2),
        ("0 0 */1 * MON", "2026-01-28T00:00:00Z", 3),
        # Months with 31 days only.
        ("0 0 31 * *", "2026-01-31T00:00:00Z", 4),
        ("0 0 30 1-3 *", "2026-01-01T00:00:00Z", 3),
        # Strictly after, and fractions of a second.
        ("0 12 * * *", "2026-03-03T12:00:00Z", 2),
        ("0 12 * * *", "2026-03-03T11:59:59.999Z", 2),
        ("* * * * * *", "2026-03-03T11:59:59.5Z", 3),
        ("* * * * *", "2026-12-31T23:59:30Z", 2),
        ("0 0 1 1 *", "2026-12-31T23:59:59Z", 2),
    ]
    for cron, after, count in utc_cases:
        case(f"UTC: {cron}", cron, "UTC", after, count)
    # A few ordinary ones in DST zones, away from the changes.
    for cron, zone, after, count in [
        ("0 9 * * MON-FRI", "Europe/Oslo", "2026-06-05T00:00:00Z", 4),
        ("0 0 L * *", "Europe/Oslo", "2026-01-15T00:00:00Z", 4),
        ("0 8 * * 1#1", "America/New_York", "2026-01-01T00:00:00Z", 4),
        ("*/20 9-17 * * 1-5", "Australia/Sydney", "2026-06-05T06:00:00Z", 5),
        ("@daily", "America/New_York", "2026-06-01T00:00:00Z", 2),
        ("0 0 29 2 *", "Europe/Oslo", "2026-01-01T00:00:00Z", 2),
    ]:
        case(f"{zone}: {cron}", cron, zone, after, count)


def main() -> None:
    check_tzdata()
    dst_cases()
    other_zone_cases()
    ordinary_cases()
    json.dump(CASES, sys.stdout, indent=1)
    sys.stdout.write("\n")
    print(f"{len(CASES)} cases", file=sys.stderr)


if __name__ == "__main__":
    main()
