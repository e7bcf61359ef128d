"""aiokafka's fetched messages, made in compiled code (``lmis_native.kafka_messages``).

With the messages read by the compiled reader (:mod:`streams.native`), unpacking them from the fetches became
the worker's largest use of the GIL: aiokafka builds a record object in Cython and then a ``ConsumerRecord``
in Python for every message (~8 µs a message on the event loop during a drain, docs/benchmarks.md). Here a
fetch's message set is parsed in Rust, without the GIL, and each message becomes one small object with
``ConsumerRecord``'s attributes. Only plain v2 batches are read so (uncompressed, not transactional, no
control batches, no headers, the CRC checked as aiokafka checks it); any other fetch, and any consumer with
deserializers or reading committed transactions only, goes aiokafka's way, unchanged.

It replaces two names in aiokafka's fetcher module (aiokafka is pinned exactly: ``tests/test_native.py``
checks both ways on batches aiokafka itself builds).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import aiokafka
import aiokafka.consumer.fetcher as fetcher
from aiokafka.record.memory_records import MemoryRecords

from streams.native import available, lmis_native

log = logging.getLogger("lmis.kafka")

PINNED = "0.14.0"


class FetchedBytes:
    """aiokafka's ``MemoryRecords`` of a fetch, keeping its bytes for the compiled reader."""

    __slots__ = ("data", "_records")

    def __init__(self, data: Any):
        self.data = data
        self._records = MemoryRecords(data)

    def has_next(self) -> bool:
        return self._records.has_next()

    def next_batch(self) -> Any:
        return self._records.next_batch()

    def size_in_bytes(self) -> int:
        return self._records.size_in_bytes()


class NativePartitionRecords(fetcher.PartitionRecords):
    """A partition's fetched messages: from the compiled reader when it can read the fetch, else aiokafka's."""

    def _unpack_records(self) -> Iterator[Any]:
        records = self._records
        if (type(records) is FetchedBytes and type(records.data) is bytes and self._key_deserializer is None
                and self._value_deserializer is None and self._isolation_level == fetcher.READ_UNCOMMITTED):
            batches = lmis_native.kafka_messages(records.data, self._tp.topic, self._tp.partition, self._check_crcs)
            if batches is not None:
                return self._messages(batches)
        return super()._unpack_records()

    def _messages(self, batches: list[tuple[list[Any], int]]) -> Iterator[Any]:
        # The positions aiokafka's own iterator keeps: after a message, the next offset; after a batch, the
        # batch's next offset (beyond messages compacted away).
        for messages, next_offset in batches:
            for message in messages:
                if message.offset < self.next_fetch_offset:
                    continue  # before the fetch's position (a batch begun earlier)
                self.next_fetch_offset = message.offset + 1
                yield message
            self.next_fetch_offset = next_offset


def install() -> bool:
    """Read the fetches of this process's aiokafka consumers in compiled code (idempotent). Not with another
    aiokafka than the pinned one: its fetcher may differ."""
    if not available():
        return False
    if aiokafka.__version__ != PINNED:
        log.warning("aiokafka %s, not %s: its own reading of fetched messages is used", aiokafka.__version__, PINNED)
        return False
    fetcher.MemoryRecords = FetchedBytes  # type: ignore[misc]
    fetcher.PartitionRecords = NativePartitionRecords  # type: ignore[misc]
    return True
