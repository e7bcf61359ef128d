"""Reading partitions in message-time order (streams.alignment), without Kafka."""

from __future__ import annotations

import random

from streams.alignment import TimeAlignment
from streams.processing import Record

HOUR = 3_600_000
DAY = 24 * HOUR


def partition(topic: str, times: list[int]) -> list[Record]:
    return [Record(topic, 0, offset, t, None, b"{}") for offset, t in enumerate(times)]


def replay(days: int, seed: int, sparse_messages: int):
    """A sparse topic whose whole backlog arrives in one fetch, and a busy one fetched an hour at a time: the
    two partitions, and the fetches -- (alignment, the busy topic's next message index, released, holding)."""
    rng = random.Random(seed)
    sparse = partition("sparse", sorted(rng.randrange(days * DAY) for _ in range(sparse_messages)))
    busy = partition("busy", sorted(rng.randrange(days * DAY) for _ in range(days * 24 * 20)))

    def fetches():
        align = TimeAlignment(window_ms=DAY)
        align.add("sparse", sparse)
        cursor = 0
        while cursor < len(busy) or align.holding():
            chunk = [r for r in busy[cursor:] if r.timestamp < busy[cursor].timestamp + HOUR] if cursor < len(
                busy) else []
            align.add("busy", chunk)
            cursor += len(chunk)
            out, holding = align.release(more_on_broker={"busy"} if cursor < len(busy) else set())
            yield align, cursor, out, holding

    return sparse, busy, fetches()


def test_a_backlog_is_released_in_time_order_across_partitions_and_nothing_is_lost():
    released: list[Record] = []
    sparse, busy, fetches = replay(30, 3, 300)
    for _, cursor, out, holding in fetches:
        if cursor < len(busy):
            # Nothing runs more than the window ahead of the busy topic's next message.
            assert all(r.timestamp <= busy[cursor].timestamp + DAY for r in out)
            assert holding <= {"sparse"}
        released += out
    assert holding == set()
    for topic, original in (("sparse", sparse), ("busy", busy)):
        mine = [r.offset for r in released if r.topic == topic]
        assert mine == [r.offset for r in original]  # each once, in offset order


def test_a_partition_with_nothing_left_or_never_read_holds_nothing_back():
    align = TimeAlignment(window_ms=HOUR)
    align.add("ahead", partition("ahead", [10 * DAY, 11 * DAY]))
    align.add("done", partition("done", [0]))
    # "done" is older, then has nothing left: "ahead" is read on, window after window, in the same call.
    out, holding = align.release(more_on_broker=set())
    assert [(r.topic, r.timestamp) for r in out] == [("done", 0), ("ahead", 10 * DAY), ("ahead", 11 * DAY)]
    assert holding == set()
    # Nor does a partition never read hold anything back.
    align.add("ahead", partition("ahead", [12 * DAY]))
    out, _ = align.release(more_on_broker={"never-read"})
    assert len(out) == 1


def test_the_slowest_partition_always_releases_and_holds_the_others_back():
    align = TimeAlignment(window_ms=HOUR)
    align.add("a", partition("a", [5 * DAY]))
    align.add("b", partition("b", [0, DAY]))
    out, holding = align.release(more_on_broker={"a", "b"})
    assert [(r.topic, r.timestamp) for r in out] == [("b", 0), ("b", DAY)]
    # b's next messages are still on the broker, at DAY or later: a waits for them.
    assert holding == {"a"}
    assert align.release(more_on_broker={"a", "b"}) == ([], {"a"})
    align.add("b", partition("b", [5 * DAY - 1]))
    out, holding = align.release(more_on_broker={"a", "b"})
    assert sorted(r.topic for r in out) == ["a", "b"] and holding == set()


def test_partitions_no_longer_assigned_are_forgotten():
    align = TimeAlignment(window_ms=HOUR)
    align.add("kept", partition("kept", [0]))
    align.add("revoked", partition("revoked", [DAY]))
    align.forget({"kept"})
    out, holding = align.release(more_on_broker=set())
    assert [r.topic for r in out] == ["kept"] and align.holding() == 0 and holding == set()


def test_a_partition_with_messages_but_none_read_yet_holds_everything_until_its_first_are_read():
    # At start-up a fetch may bring a topic whose backlog starts a month later before the others.
    align = TimeAlignment(window_ms=DAY)
    align.add("late-starting", partition("late-starting", [30 * DAY, 30 * DAY + HOUR]))
    assert align.release(more_on_broker=set(), unread={"month"}) == ([], {"late-starting"})
    align.add("month", partition("month", [0, HOUR]))
    out, holding = align.release(more_on_broker={"month"}, unread={"month"})  # read now: no longer unknown
    assert [(r.topic, r.timestamp) for r in out] == [("month", 0), ("month", HOUR)]
    assert holding == {"late-starting"}  # a month ahead of what the month's partition still has to come
    # Without it, the late-starting topic would have been released at once (the behaviour before).
    align = TimeAlignment(window_ms=DAY)
    align.add("late-starting", partition("late-starting", [30 * DAY]))
    assert len(align.release(more_on_broker=set())[0]) == 1


def test_the_watermark_never_passes_a_message_not_yet_handed_over():
    assert TimeAlignment(window_ms=DAY).watermark({"busy", "sparse"}, HOUR) is None
    released: set[tuple[str, int]] = set()
    marks = []
    sparse, busy, fetches = replay(10, 5, 200)
    for align, cursor, out, _ in fetches:
        released |= {(r.topic, r.offset) for r in out}
        mark = align.watermark({"busy"} if cursor < len(busy) else set(), 10 * DAY)
        assert mark is not None
        # Every message at or before the watermark has been handed over, on both partitions.
        late = [r for r in sparse + busy if r.timestamp <= mark and (r.topic, r.offset) not in released]
        assert late == []
        marks.append(mark)
    # Caught up: the partition furthest behind's last message (within the idle margin).
    assert marks[-1] == min(sparse[-1].timestamp, busy[-1].timestamp)
    assert len(set(marks)) > 10  # it moves with the replay, not only at its end


def test_caught_up_the_watermark_waits_for_a_quiet_partition_only_up_to_the_idle_margin():
    align = TimeAlignment(window_ms=DAY)
    align.add("busy", partition("busy", [0, HOUR, 5 * HOUR]))
    align.add("quiet", partition("quiet", [2 * HOUR]))
    align.release(more_on_broker=set())
    assert align.watermark(set(), idle_ms=4 * HOUR) == 2 * HOUR  # the quiet one's last, within the margin
    assert align.watermark(set(), idle_ms=2 * HOUR) == 3 * HOUR  # beyond it: not waited for
    assert align.watermark({"quiet"}, idle_ms=HOUR) == 2 * HOUR  # more on the broker: always waited for
