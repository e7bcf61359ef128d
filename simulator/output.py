"""Where a simulated stream goes: a JSON-lines file, or Kafka; paced in event time or as fast as possible.

A line of the file is ``{"topic", "key", "timestamp", "value"}``: ``value`` is the message exactly as sent (so
broken messages survive byte for byte) and ``timestamp`` (ms) is when the source emitted it. In Kafka the
emission time is the record's timestamp: the pipeline measures lateness as emission minus occurrence, which
is deterministic, so a replay at full speed decides exactly as live did.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import orjson

from simulator.engine import Message


def paced(messages: Iterable[Message], speed: float | None) -> Iterator[Message]:
    """Replay event time at ``speed`` × wall time (None: as fast as possible)."""
    if not speed:
        yield from messages
        return
    first_ms: int | None = None
    wall0 = time.monotonic()
    for m in messages:
        if first_ms is None:
            first_ms = m.emit_ms
        due = wall0 + (m.emit_ms - first_ms) / 1000.0 / speed
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        yield m


def write_jsonl(messages: Iterable[Message], path: Path, on_message: Callable[[Message], None] | None = None) -> int:
    n = 0
    with open(path, "wb") as f:
        for m in messages:
            f.write(orjson.dumps({"topic": m.topic, "key": m.key, "timestamp": m.emit_ms,
                                  "value": m.value.decode("utf-8", "replace")}))
            f.write(b"\n")
            n += 1
            if on_message:
                on_message(m)
    return n


def read_jsonl(path: Path) -> Iterator[Message]:
    with open(path, "rb") as f:
        for i, line in enumerate(f):
            doc = orjson.loads(line)
            yield Message(doc.get("timestamp", i), i, doc["topic"], doc["key"], doc["value"].encode("utf-8"))


def send_kafka(messages: Iterable[Message], client_options: dict,
               on_message: Callable[[Message], None] | None = None) -> int:
    """Produce to Kafka, keyed by entity id; waits until every message is acknowledged."""
    from kafka import KafkaProducer

    producer = KafkaProducer(**client_options, acks="all", linger_ms=20, batch_size=512 * 1024,
                             max_in_flight_requests_per_connection=5, enable_idempotence=True,
                             client_id="lmis-simulator")
    n = 0
    errors: list[BaseException] = []
    try:
        for m in messages:
            fut = producer.send(m.topic, key=m.key.encode(), value=m.value, timestamp_ms=m.emit_ms)
            fut.add_errback(errors.append)
            n += 1
            if on_message:
                on_message(m)
            if errors:
                raise RuntimeError(f"Kafka refused a message: {errors[0]}")
        producer.flush()
        if errors:
            raise RuntimeError(f"Kafka refused a message: {errors[0]}")
    finally:
        producer.close()
    return n
