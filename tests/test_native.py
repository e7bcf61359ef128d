"""The compiled reader (streams.native, lmis_native) never changes an outcome: what it reads, pydantic accepts,
and its row -- written as RowBinary -- is the one Python builds, read back and stored in ClickHouse alike.

Checked on every simulated message of a month with every scenario (its malformed ones included), and on the
fast path's corpus of mutations of each event type (tests/test_fastpath.py): fields deleted, nulled, retyped,
at and beyond their bounds, times and dates in other forms, odd text and personal data, unknown and duplicate
keys, escapes, broken bytes.
"""

from __future__ import annotations

from typing import Annotated

import pytest
from pydantic import BaseModel, ConfigDict, Field, model_validator
from test_fastpath import corpus  # noqa: F401 -- the fixture (tests/ is on the path, as pytest puts it)

from schemas.events import EVENT_TYPES
from sinks.sink import ClickHouseTable, SinkBatch
from streams.native import _event_spec, _field, decode_rows, encode_rows, native_block, reader
from streams.processing import EVENT_COLUMNS, MAX_CELLS, Accepted, Policy, Record, classify, classify_batch

# Optional: without a Rust toolchain it is not built and the worker reads in Python (tests/test_pipeline.py
# checks that path); tests/test_project.py makes sure it is built wherever Rust is.
lmis_native = pytest.importorskip("lmis_native", reason="the compiled reader is not built (no Rust 1.74+)")
POLICY = Policy()


@pytest.fixture(scope="module")
def records(corpus, month_run) -> list[Record]:  # noqa: F811 -- the fixture
    """The mutations, emitted at their events' time (as in test_fastpath: lateness and the future are judged
    too), and the month as the simulator emitted it."""
    from simulator.output import read_jsonl

    path, _, _ = month_run
    sent = [(1_772_410_500_000 + i, v) for i, v in enumerate(corpus)]
    sent += [(m.emit_ms, m.value) for m in read_jsonl(path)]
    return [Record("lmis.vacancies", 0, i, ts, None, v) for i, (ts, v) in enumerate(sent)]


def test_it_reads_only_what_pydantic_accepts_with_the_same_row(records):
    encoded, n, left, _, _, _ = reader().classify_run(records, "lmis.vacancies", 0, POLICY.future_tolerance_ms,
                                                      POLICY.allowed_lateness_ms, 10**9)
    rows = decode_rows(encoded)
    assert len(rows) == n == len(records) - len(left)
    read = {row[22]: row for row in rows}
    assert len(read) == n and not set(read) & {records[i].offset for i in left}
    kinds = set()
    for record in records:
        row = read.get(record.offset)
        if row is None:
            continue
        judged = classify(record, POLICY, fast=False)  # pydantic's answer
        assert type(judged) is Accepted, f"read what pydantic rejects ({judged.reason}): {record.value[:300]!r}"
        assert row == judged.row, record.value[:300]
        kinds.add(row[1])
    # Both sides are exercised: every event type read here, and messages left to Python although valid.
    valid_left = sum(type(classify(records[i], POLICY)) is Accepted for i in left)
    assert kinds == set(EVENT_TYPES) and n > 10_000 and valid_left > 100, (kinds, n, valid_left)


def test_a_batch_classifies_the_same_with_it_and_without_it(records):
    for batch in (records[:3_000], records):  # a few cells, and more than MAX_CELLS of them
        fast, slow = classify_batch(batch, POLICY), classify_batch(batch, POLICY, native=False)
        assert [(r.topic, r.partition, r.lo, r.hi, sorted(decode_rows(r.encoded), key=lambda row: row[22]),
                 [d.row for d in r.dead_letters]) for r in fast.runs] == [
            (r.topic, r.partition, r.lo, r.hi, r.rows, [d.row for d in r.dead_letters]) for r in slow.runs]
        assert all(not r.rows and r.n_encoded == len(decode_rows(r.encoded)) for r in fast.runs)
        assert (fast.days, fast.vacancies, fast.cells) == (slow.days, slow.vacancies, slow.cells)
    assert slow.cells is None and len(classify_batch(records[:3_000], POLICY).cells or ()) <= MAX_CELLS


@pytest.mark.parametrize("fmt", ["RowBinary", "Native"])
def test_its_rows_are_stored_as_pythons_are(client, records, fmt):
    """The real engine reads the RowBinary -- and the Native block made of it, as the worker sends it -- as
    the rows clickhouse-connect inserts: every column equal."""
    batch = classify_batch(records, POLICY)
    python_rows = [r for run in classify_batch(records, POLICY, native=False).runs for r in run.rows]
    client.command("DROP TABLE IF EXISTS events_native")
    client.command("TRUNCATE TABLE events")
    client.command("CREATE TABLE events_native AS events")
    # Through the sink's adapter, with a few rows as tuples beside the blocks (they are encoded for it).
    sink_batch = SinkBatch("events_native", EVENT_COLUMNS)
    for run in batch.runs:
        sink_batch.add_encoded(("lmis.vacancies", 0), run.lo, run.hi, run.encoded, run.n_encoded)
    rows = decode_rows(b"".join(sink_batch.blocks))
    extra = [r[:22] + (10**9 + i,) + r[23:] for i, r in enumerate(rows[:50])]  # new offsets: new rows
    sink_batch.add_run(("lmis.vacancies", 1), 0, 49, extra)
    to_native = native_block if fmt == "Native" else None
    ClickHouseTable(client, "events_native", encode=encode_rows, to_native=to_native).write(sink_batch)
    client.insert("events", python_rows + extra, column_names=list(EVENT_COLUMNS))
    columns = ", ".join(EVENT_COLUMNS)
    stored = [client.query(f"SELECT {columns}, day, hour FROM {t} ORDER BY offset").result_rows
              for t in ("events", "events_native")]
    assert stored[0] == stored[1] and len(stored[0]) == len(python_rows) + 50


def test_rows_python_encodes_read_back_the_same(records):
    rows = [r for run in classify_batch(records[:2_000], POLICY, native=False).runs for r in run.rows]
    assert decode_rows(encode_rows(rows)) == rows and any(r[18] is not None for r in rows)
    with pytest.raises(TypeError, match="events.openings"):
        encode_rows([rows[0][:17] + (-1,) + rows[0][18:]])
    with pytest.raises(ValueError, match="24"):
        encode_rows([rows[0][:5]])


def test_it_knows_the_events_columns(client):
    assert lmis_native.EVENT_COLUMNS == EVENT_COLUMNS
    types = dict(client.query("SELECT name, type FROM system.columns WHERE database = currentDatabase() "
                              "AND table = 'events'").result_rows)
    assert lmis_native.EVENT_TYPES == tuple(types[c] for c in EVENT_COLUMNS)


def test_a_native_block_holds_the_rows_with_large_dictionaries_and_nulls(client, records):
    """Each LowCardinality column's index is as wide as its dictionary needs (UInt8, UInt16, UInt32): rows
    with 70,000 distinct review rules, 300 distinct sexes and one topic, some deadlines null."""
    rows = [r for run in classify_batch(records[:20_000], POLICY, native=False).runs for r in run.rows]
    rows = [r[:13] + (f"s{i % 300}", r[14], f"rule{i}") + r[16:22] + (i,) + r[23:]
            for i, r in enumerate((rows * (70_000 // len(rows) + 1))[:70_000])]
    assert any(r[18] is None for r in rows) and any(r[18] is not None for r in rows)
    client.command("DROP TABLE IF EXISTS events_wide")
    client.command("CREATE TABLE events_wide AS events")
    blocks = [encode_rows(rows[:9_999]), encode_rows(rows[9_999:])]  # as the reader's runs: rows in blocks
    client.raw_insert("events_wide", list(EVENT_COLUMNS), insert_block=native_block(blocks), fmt="Native")
    client.command("TRUNCATE TABLE events")
    client.insert("events", rows, column_names=list(EVENT_COLUMNS))  # clickhouse-connect's own encoding
    columns = ", ".join(EVENT_COLUMNS)
    stored = [client.query(f"SELECT {columns} FROM {t} ORDER BY offset").result_rows for t in ("events", "events_wide")]
    assert stored[0] == stored[1] and len(stored[0]) == 70_000
    with pytest.raises(ValueError, match="RowBinary ends"):
        native_block([encode_rows(rows[:1])[:-3]])


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


@pytest.mark.parametrize("kind", ["float", "pattern", "model_validator", "min_length"])
def test_a_model_it_cannot_mirror_fails_at_import_instead_of_being_checked_less(kind):
    from typing import Literal

    from schemas.events import Event, Region, VacancyId

    if kind == "model_validator":
        class Payload(_Strict):
            vacancy_id: VacancyId
            region: Region
            occupation: str

            @model_validator(mode="after")
            def _check(self):
                return self

        class Model(Event):
            event_type: Literal["vacancy.closed"]
            schema_version: Literal[1]
            payload: Payload

        with pytest.raises(TypeError, match="_check"):
            _event_spec(Model)
        return
    annotation = {"float": float, "pattern": Annotated[str, Field(pattern=r"^\d{3}$")],
                  "min_length": Annotated[list[Literal["a"]], Field(min_length=1)]}[kind]

    class Model(_Strict):  # type: ignore[no-redef]
        value: annotation  # type: ignore[valid-type]

    with pytest.raises(TypeError, match="streams.native cannot derive"):
        _field("Model.value", "value", Model.model_fields["value"])



# --- Kafka fetches (streams.kafka_records) ----------------------------------------------------------------

def _batch(base_offset: int, records: list[tuple], compression: int = 0) -> bytes:
    """A v2 record batch as aiokafka's producer builds it; records are (timestamp, key, value, headers)."""
    import struct

    from aiokafka.record.default_records import DefaultRecordBatchBuilder

    builder = DefaultRecordBatchBuilder(magic=2, compression_type=compression, is_transactional=0, producer_id=-1,
                                        producer_epoch=-1, base_sequence=-1, batch_size=1 << 24)
    for i, (timestamp, key, value, headers) in enumerate(records):
        assert builder.append(i, timestamp=timestamp, key=key, value=value, headers=headers) is not None
    return struct.pack(">q", base_offset) + bytes(builder.build())[8:]  # the base offset is outside the CRC


def _unpacked(data: bytes, fetch_offset: int, native: bool, check_crcs: bool = True) -> list[tuple]:
    """Every message of a fetch as aiokafka hands them over, with its position after each."""
    import aiokafka.consumer.fetcher as fetcher
    from aiokafka.record.memory_records import MemoryRecords
    from aiokafka.structs import TopicPartition

    from streams.kafka_records import FetchedBytes, NativePartitionRecords

    kind, records = (NativePartitionRecords, FetchedBytes(data)) if native else (
        fetcher.PartitionRecords, MemoryRecords(data))
    partition = kind(TopicPartition("lmis.vacancies", 3), records, None, fetch_offset, None, None, check_crcs,
                     fetcher.READ_UNCOMMITTED)
    out = []
    for m in partition:
        out.append((m.topic, m.partition, m.offset, m.timestamp, m.timestamp_type, m.key, m.value, m.checksum,
                    m.serialized_key_size, m.serialized_value_size, tuple(m.headers), partition.next_fetch_offset))
    return [*out, partition.next_fetch_offset]


def test_fetched_messages_are_aiokafkas_own():
    import lmis_native

    first = _batch(100, [(1_772_410_500_000 + i, None if i % 3 else b"V%d" % i, b"x" * i if i % 5 else None, [])
                         for i in range(40)])
    second = _batch(140, [(1_772_410_400_000, b"k", b'{"event_id":"..."}', []), (1_772_410_600_000, b"", b"", [])])
    whole = first + second
    for data in (first, whole, whole + second[:30], whole + second[:-1]):  # a partial batch ends a fetch
        for fetch_offset in (0, 100, 117, 140, 141):
            mine = _unpacked(data, fetch_offset, native=True)
            assert mine == _unpacked(data, fetch_offset, native=False)
        assert lmis_native.kafka_messages(data, "lmis.vacancies", 3, True) is not None  # read natively
    assert len(_unpacked(whole, 0, native=True)) == 43


@pytest.mark.parametrize("case", ["gzip", "headers", "bad_crc"])
def test_fetches_it_does_not_read_are_left_to_aiokafka(case):
    import lmis_native
    from aiokafka.errors import CorruptRecordException

    plain = _batch(0, [(1_772_410_500_000, b"k", b"v", [])])
    data = {"gzip": _batch(0, [(1_772_410_500_000, b"k", b"v" * 100, [])] * 3, compression=1),
            "headers": _batch(0, [(1_772_410_500_000, b"k", b"v", [("h", b"1")])]),
            "bad_crc": plain[:17] + bytes([plain[17] ^ 1]) + plain[18:]}[case]  # the CRC itself
    assert lmis_native.kafka_messages(data, "lmis.vacancies", 3, True) is None
    if case == "bad_crc":
        for native in (True, False):
            with pytest.raises(CorruptRecordException):
                _unpacked(data, 0, native=native)
        assert _unpacked(data, 0, native=True, check_crcs=False) == _unpacked(data, 0, native=False, check_crcs=False)
    else:
        assert _unpacked(data, 0, native=True) == _unpacked(data, 0, native=False)
