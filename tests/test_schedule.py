"""Event-time schedules and the scheduler (streams.schedule), without Kafka or ClickHouse."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from streams.schedule import SEOUL, AfterEachDay, EventTimeJob, Every, MemoryRunLog, Scheduler


def kst(*args: int) -> datetime:
    return datetime(*args, tzinfo=SEOUL).astimezone(UTC)


def test_after_each_day_falls_delay_after_each_asia_seoul_midnight():
    day_end = AfterEachDay()
    assert day_end.next_after(kst(2026, 3, 4, 13, 0)) == kst(2026, 3, 5)
    assert day_end.next_after(kst(2026, 3, 5)) == kst(2026, 3, 6)  # strictly after
    assert day_end.day_of(kst(2026, 3, 5)) == date(2026, 3, 4)
    briefing = AfterEachDay(timedelta(hours=8))
    assert briefing.next_after(kst(2026, 3, 5, 7, 59)) == kst(2026, 3, 5, 8)
    assert briefing.next_after(kst(2026, 3, 5, 8)) == kst(2026, 3, 6, 8)
    assert briefing.day_of(kst(2026, 3, 5, 8)) == date(2026, 3, 4)
    final = AfterEachDay(timedelta(hours=72))
    assert final.next_after(kst(2026, 3, 7, 23)) == kst(2026, 3, 8)
    assert final.day_of(kst(2026, 3, 8)) == date(2026, 3, 4)


def test_every_is_aligned_to_asia_seoul_midnight_and_must_divide_a_day():
    quarter = Every(timedelta(minutes=15))
    assert quarter.next_after(kst(2026, 3, 4, 9, 7, 30)) == kst(2026, 3, 4, 9, 15)
    assert quarter.next_after(kst(2026, 3, 4, 23, 45)) == kst(2026, 3, 5)
    assert Every(timedelta(hours=6)).next_after(kst(2026, 3, 4, 1)) == kst(2026, 3, 4, 6)
    for bad in (timedelta(minutes=7), timedelta(0), timedelta(hours=25)):
        with pytest.raises(ValueError, match="divide a day"):
            Every(bad)


def recording_job(name: str, schedule, seen: list, fail_at: set | None = None) -> EventTimeJob:
    def run(instant: datetime, clock: datetime) -> None:
        assert clock >= instant
        if fail_at and instant in fail_at:
            fail_at.discard(instant)
            raise RuntimeError("ClickHouse unavailable")
        seen.append((name, instant))
    return EventTimeJob(name, schedule, run)


def test_a_new_job_starts_at_its_first_instant_after_the_clock_and_runs_each_instant_once_in_order():
    seen: list = []
    log = MemoryRunLog()
    scheduler = Scheduler([recording_job("day_end", AfterEachDay(), seen)], log)
    assert scheduler.run_due(kst(2026, 3, 4, 10)) == []  # armed for the end of the 4th, not for past days
    assert seen == []
    scheduler.run_due(kst(2026, 3, 4, 23, 59))
    assert seen == []
    scheduler.run_due(kst(2026, 3, 5, 0, 0))  # the instant itself is reached
    assert seen == [("day_end", kst(2026, 3, 5))]
    # A replay at full speed: the clock jumps three days; each day's instant runs, in order.
    ran = scheduler.run_due(kst(2026, 3, 8, 1))
    assert [r.instant for r in ran] == [kst(2026, 3, 6), kst(2026, 3, 7), kst(2026, 3, 8)]
    assert seen[1:] == [("day_end", kst(2026, 3, d)) for d in (6, 7, 8)]
    # The clock again (the same rollup's, or an older one after a restart): nothing runs twice.
    scheduler.run_due(kst(2026, 3, 8, 1))
    Scheduler([recording_job("day_end", AfterEachDay(), seen)], log).run_due(kst(2026, 3, 8, 2))
    assert len(seen) == 4


def test_a_restart_resumes_where_the_log_says_even_from_an_older_clock():
    seen: list = []
    log = MemoryRunLog()
    Scheduler([recording_job("q", Every(timedelta(hours=6)), seen)], log).run_due(kst(2026, 3, 4, 1))
    Scheduler([recording_job("q", Every(timedelta(hours=6)), seen)], log).run_due(kst(2026, 3, 4, 13))
    assert seen == [("q", kst(2026, 3, 4, 6)), ("q", kst(2026, 3, 4, 12))]
    # Replayed from the last commit, the clock restarts behind: the armed/done instants stand.
    restarted = Scheduler([recording_job("q", Every(timedelta(hours=6)), seen)], log)
    assert restarted.run_due(kst(2026, 3, 4, 9)) == []
    restarted.run_due(kst(2026, 3, 4, 18))
    assert seen[-1] == ("q", kst(2026, 3, 4, 18))
    assert len(seen) == 3


def test_a_failing_instant_is_retried_later_in_order_and_does_not_hold_up_other_jobs():
    seen: list = []
    log = MemoryRunLog()
    fail = {kst(2026, 3, 6)}
    scheduler = Scheduler([recording_job("flaky", AfterEachDay(), seen, fail),
                           recording_job("steady", AfterEachDay(), seen)], log)
    scheduler.run_due(kst(2026, 3, 4, 12))
    ran = scheduler.run_due(kst(2026, 3, 7, 12))
    errors = [r for r in ran if r.error]
    assert [(r.job, r.instant) for r in errors] == [("flaky", kst(2026, 3, 6))]
    assert "ClickHouse unavailable" in errors[0].error
    assert [i for n, i in seen if n == "flaky"] == [kst(2026, 3, 5)]  # stopped at the failure
    assert [i for n, i in seen if n == "steady"] == [kst(2026, 3, d) for d in (5, 6, 7)]
    scheduler.run_due(kst(2026, 3, 7, 12, 1))
    assert [i for n, i in seen if n == "flaky"] == [kst(2026, 3, d) for d in (5, 6, 7)]


def test_job_names_are_unique():
    job = recording_job("a", AfterEachDay(), [])
    with pytest.raises(ValueError, match="unique"):
        Scheduler([job, job], MemoryRunLog())


def test_a_new_job_may_start_where_the_worker_began_reading():
    seen: list = []
    scheduler = Scheduler([recording_job("day_end", AfterEachDay(), seen)], MemoryRunLog())
    scheduler.run_due(kst(2026, 3, 4, 10), start=kst(2026, 3, 1, 12))
    assert [i for _, i in seen] == [kst(2026, 3, d) for d in (2, 3, 4)]


def test_a_job_with_a_go_live_runs_no_instant_before_it():
    seen: list = []
    job = recording_job("hourly", Every(timedelta(hours=1)), seen)
    live = EventTimeJob(job.name, job.schedule, job.run, begins=kst(2026, 3, 4))
    scheduler = Scheduler([live], MemoryRunLog())
    scheduler.run_due(kst(2026, 3, 4, 2), start=kst(2026, 3, 1, 12))
    assert [i for _, i in seen] == [kst(2026, 3, 4, 0), kst(2026, 3, 4, 1), kst(2026, 3, 4, 2)]


SCHEDULES = [AfterEachDay(), AfterEachDay(timedelta(hours=8)), AfterEachDay(timedelta(hours=72)),
             Every(timedelta(minutes=15)), Every(timedelta(hours=1)), Every(timedelta(days=1))]


@pytest.mark.parametrize("schedule", SCHEDULES, ids=repr)
def test_every_schedule_gives_the_first_instant_strictly_after_and_never_skips_one(schedule):
    import random

    rng = random.Random(repr(schedule))
    ms = timedelta(milliseconds=1)
    for _ in range(300):
        t = kst(2026, 1, 1) + timedelta(seconds=rng.randrange(400 * 86_400), milliseconds=rng.randrange(1000))
        n = schedule.next_after(t)
        assert n > t and n.tzinfo is not None
        assert schedule.next_after(t) == n  # a pure function of the instant
        between = t + (n - t) * rng.random()
        assert schedule.next_after(min(between, n - ms)) == n  # no instant of the schedule between t and n
        period = getattr(schedule, "period", timedelta(days=1))
        assert schedule.next_after(n) - n == period and n - t <= period


def test_jobs_tied_by_follows_run_in_the_order_of_their_instants_and_the_others_at_their_own_pace():
    """A replay runs tied jobs in the order live streaming does: the 08:00 briefing after the 08:00 hour's
    job, before the 09:00 hour's (it must not see what the hours after 08:00 judged). A job tied to none
    (the day's publication) is not held back by the hours' pace."""
    seen: list = []
    hourly = recording_job("hourly", Every(timedelta(hours=1)), seen)
    run_briefing = recording_job("briefing", AfterEachDay(timedelta(hours=8)), seen).run
    briefing = EventTimeJob("briefing", AfterEachDay(timedelta(hours=8)), run_briefing, follows="hourly")
    published = recording_job("published", AfterEachDay(), seen)
    scheduler = Scheduler([hourly, briefing, published], MemoryRunLog())
    scheduler.run_due(kst(2026, 3, 4, 0, 30))
    first = scheduler.run_due(kst(2026, 3, 14), limit=5)
    assert [r.instant for r in first if r.job == "published"] == [kst(2026, 3, d) for d in range(5, 10)]
    assert max(r.instant for r in first if r.job == "hourly") == kst(2026, 3, 4, 5)
    while scheduler.behind(kst(2026, 3, 14)):
        scheduler.run_due(kst(2026, 3, 14), limit=5)
    tied = [r for r in seen if r[0] != "published"]
    assert tied == sorted(tied, key=lambda r: (r[1], r[0] == "briefing"))
    assert tied.index(("briefing", kst(2026, 3, 5, 8))) == tied.index(("hourly", kst(2026, 3, 5, 8))) + 1


def test_a_replay_runs_a_limited_number_per_call_and_a_follower_after_its_leader():
    seen: list = []
    log = MemoryRunLog()
    hourly = recording_job("hourly", Every(timedelta(hours=1)), seen)
    run_daily = recording_job("daily", AfterEachDay(), seen).run
    daily = EventTimeJob("daily", AfterEachDay(), run_daily, follows="hourly")
    scheduler = Scheduler([hourly, daily], log)
    scheduler.run_due(kst(2026, 3, 4, 0, 30))  # armed: the next hour, the next day's end
    calls = 0
    while True:
        ran = scheduler.run_due(kst(2026, 3, 7), limit=10)
        calls += 1
        assert all(sum(r.job == job for r in ran) <= 10 for job in ("hourly", "daily"))
        if not scheduler.behind(kst(2026, 3, 7)):
            break
    assert calls == 8 and len(seen) == 72 + 3  # hours 01:00 of the 4th to 00:00 of the 7th; three day ends
    # At a day's end the hour's job runs before the day's (a day's detectors read that hour's faults).
    for day in (5, 6, 7):
        assert seen.index(("hourly", kst(2026, 3, day))) < seen.index(("daily", kst(2026, 3, day)))
    with pytest.raises(ValueError, match="listed before"):
        Scheduler([daily, hourly], MemoryRunLog())


def test_a_failing_job_does_not_hold_the_others_back():
    seen: list = []
    hourly = recording_job("hourly", Every(timedelta(hours=1)), seen)
    broken = EventTimeJob("broken", AfterEachDay(), lambda instant, clock: 1 / 0)
    scheduler = Scheduler([broken, hourly], MemoryRunLog())
    scheduler.run_due(kst(2026, 3, 4, 0, 30))
    failures = 0
    while scheduler.behind(kst(2026, 3, 7)):
        ran = scheduler.run_due(kst(2026, 3, 7), limit=10)
        failures += sum(1 for r in ran if r.job == "broken" and r.error)
    assert len(seen) == 72 and seen[-1] == ("hourly", kst(2026, 3, 7))
    assert failures >= 5  # tried again at each call once its instant came: 5th 00:00, never past it


def test_a_follower_of_a_failing_job_is_not_behind():
    seen: list = []
    broken = EventTimeJob("hourly", Every(timedelta(hours=1)), lambda instant, clock: 1 / 0)
    daily = EventTimeJob("daily", AfterEachDay(), recording_job("daily", AfterEachDay(), seen).run, follows="hourly")
    scheduler = Scheduler([broken, daily], MemoryRunLog())
    scheduler.run_due(kst(2026, 3, 4, 0, 30))
    scheduler.run_due(kst(2026, 3, 7), limit=10)
    assert seen == [] and not scheduler.behind(kst(2026, 3, 7))  # (the worker would loop on it for ever)
