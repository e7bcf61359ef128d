"""Reading a backlog across partitions in message-time order, as it happened (pure: no I/O).

A consumer fetches each partition in chunks; a small topic's chunk can span weeks of a backlog while a
busy topic's spans minutes. Handed over as fetched, every batch of a replay touches every day of the
backlog at once. Like Kafka Streams, which processes the partition with the oldest head first, the worker
holds back what runs more than a window ahead of the slowest partition that still has messages, and stops
fetching a partition while it holds some of it back: a replay at full speed then fills in the days in
order, as they happened live, and each rollup rebuilds the few days the replay is at. Order within a
partition is kept (only a prefix is released), so offsets are committed exactly as before; held messages
are simply read again after a crash.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Collection, Hashable, Iterable

from streams.processing import Record


class TimeAlignment:
    def __init__(self, window_ms: int):
        self.window_ms = window_ms
        self.held: dict[Hashable, deque[Record]] = {}
        self.released_up_to: dict[Hashable, int] = {}  # the timestamp of the last message handed over

    def add(self, tp: Hashable, records: Iterable[Record]) -> None:
        self.held.setdefault(tp, deque()).extend(records)

    def forget(self, assigned: Collection[Hashable]) -> None:
        """Drop partitions no longer assigned (their new owner reads them from the last commit)."""
        for tp in [tp for tp in self.held if tp not in assigned]:
            del self.held[tp]
        for tp in [tp for tp in self.released_up_to if tp not in assigned]:
            del self.released_up_to[tp]

    def release(self, more_on_broker: Collection[Hashable],
                unread: Collection[Hashable] = ()) -> tuple[list[Record], set[Hashable]]:
        """The messages to process now (each partition's in offset order), and the partitions holding some
        back (stop fetching them). The slowest partition -- the oldest head among those with messages held
        or still on the broker -- always releases, so reading never stalls; a partition with nothing left,
        or not read yet, holds nothing back -- except the ``unread``: partitions none of whose messages has
        been read, that have or may have some on the broker (not fetched yet). Their times are unknown, so
        nothing is released until each has been read once: at start-up a fetch brings some partitions
        before others, and a topic whose backlog starts weeks later than the rest would otherwise run ahead
        (measured: the bench's first rollup then spanned its whole month). The caller bounds how long a
        partition counts as unread."""
        if any(tp not in self.released_up_to and not self.held.get(tp) for tp in unread):
            return [], {tp for tp, dq in self.held.items() if dq}
        released: dict[Hashable, list[Record]] = {}
        out: list[Record] = []
        while True:  # until the slowest head stops moving: what is held is read in as many windows
            heads = [dq[0].timestamp for dq in self.held.values() if dq]
            heads += [self.released_up_to[tp] for tp in more_on_broker
                      if not self.held.get(tp) and tp in self.released_up_to]
            if not heads:
                break
            limit = min(heads) + self.window_ms
            before = len(out)
            for tp, dq in self.held.items():
                n = len(out)
                while dq and dq[0].timestamp <= limit:
                    out.append(dq.popleft())
                if len(out) > n:
                    self.released_up_to[tp] = out[-1].timestamp
                    released.setdefault(tp, []).extend(out[n:])
            if len(out) == before:
                break
        # Each partition's messages together, in offset order (one run per partition for the pipeline).
        return [r for run in released.values() for r in run], {tp for tp, dq in self.held.items() if dq}

    def watermark(self, more_on_broker: Collection[Hashable], idle_ms: int) -> int | None:
        """The message time (ms) up to which every partition has been handed over, as far as it is known: the
        lowest, among the partitions with messages held back or still on the broker, of the time just before
        their next message (held: its head's; on the broker: the last released). With none left anywhere
        (caught up), the lowest last-released time -- but a partition more than ``idle_ms`` behind the
        newest is idle (a quiet topic; a silent feed is the health checks' to report) and not waited for.
        None before anything was released. A partition not read yet is not known and not waited for
        (``release`` holds everything back until it was read once, or its caller gave up waiting). Message
        times are the sources' emission times, in order within a partition."""
        behind = [dq[0].timestamp - 1 for dq in self.held.values() if dq]
        behind += [self.released_up_to[tp] for tp in more_on_broker
                   if not self.held.get(tp) and tp in self.released_up_to]
        if behind:
            return min(behind)
        if not self.released_up_to:
            return None
        last = self.released_up_to.values()
        return max(min(last), max(last) - idle_ms)

    def holding(self) -> int:
        """Messages held back."""
        return sum(len(dq) for dq in self.held.values())
