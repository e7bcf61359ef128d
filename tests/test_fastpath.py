"""The events' fast path (schemas.fastpath) never changes an outcome: what it accepts, pydantic accepts with
the same values, and every message classifies the same with it and without it.

Checked on every simulated event (a month with every scenario, including its malformed ones) and on
thousands of mutations of each event type: fields deleted, nulled, retyped, at and beyond their bounds, ids
with a trailing newline, text with surrounding or odd whitespace and personal data, times and dates in
other forms, unknown fields, duplicate keys, broken bytes.
"""

from __future__ import annotations

import copy
import json
import random
from datetime import date, datetime

import orjson
import pytest

from schemas.codec import EventError, decode_event
from schemas.events import EVENT_MODELS, EVENT_TYPES
from schemas.fastpath import EVENT_STRUCTS, decode_fast
from streams.processing import Accepted, Record, classify, classify_batch

TIME_FORMS = [
    "2026-03-02T09:15:00+09:00", "2026-03-02T09:15:00.123456+09:00", "2026-03-02T09:15:00.1234567+09:00",
    "2026-03-02T00:15:00Z", "2026-03-02T00:15:00z", "2026-03-02t00:15:00Z", "2026-03-02 09:15:00+09:00",
    "2026-03-02T09:15:00", "2026-03-02T09:15:00+0900", "2026-03-02T09:15+09:00", "2026-03-02",
    "2026-03-02T09:15:60+09:00", "2026-02-30T09:15:00+09:00", "2026-03-02T24:00:00+09:00",
    "2026-03-02T09:15:00+24:00", "2026-03-02T09:15:00-00:00", "2026-03-02T09:15:00.5Z", "1999-12-31T23:59:59Z",
    "2000-01-01T00:00:00Z", "2100-12-31T23:59:59.999999Z", "2101-01-01T00:00:00Z", "2000-01-01T08:59:59+09:00",
    "2026-03-02T09:15:00+09:00\n", " 2026-03-02T09:15:00+09:00", 1772410500, 1772410500.5, "1772410500",
    "٢٠٢٦-03-02T09:15:00+09:00", "2026-03-02T09:15:00+09:00\u0000",
]
DATE_FORMS = ["2026-04-01", "2026-4-1", "2026-04-01T00:00:00Z", "2026-04-01T00:00:00", "2026-02-30", "20260401",
              "2026-04-01\n", 1775001600, "", None]
TEXT_FORMS = [" 용접공", "용접공 ", "\u3000용접공", "용접공\x1c", "\x1f용접공", "용접공\n", "", " ", "\t",
              "a" * 200, "a" * 201, "용접\u200b공", "\u200b용접공", " " + "a" * 199, "a" * 199 + " ",
              "a" * 200 + " ", "연락 010-1234-5678",
              "메일 hr@example.co.kr", "850101-1234567", "용접\x00공", "용접공 채용", "도박 딜러", 5, None, ["x"]]
INT_FORMS = [0, 1, -1, 999, 1000, 68, 69, 40, 41, 60, 61, 300, 301, 600, 601, 20, 21, 31, 32, 2**31, 2**63, 2**70,
             1.0, 1.5, "1", "one", True, False, None, [], {}]
ID_FORMS = ["0123456789abcdef0123456789abcdef", "0123456789ABCDEF0123456789ABCDEF",
            "0123456789abcdef0123456789abcdef\n", "0123456789abcdef0123456789abcde", "V0123456789abcdef",
            "V0123456789abcdef\n", "v0123456789abcdef", "V0123456789abcdeg", "S0123456789abcdef", "", None, 5]


def _sample_events() -> dict[str, list[dict]]:
    from simulator.engine import SimConfig, Simulator

    sim = Simulator(SimConfig(seed=5, start=date(2026, 3, 2), days=6, scale=0.01, scenarios=("all",)))
    samples: dict[str, list[dict]] = {t: [] for t in EVENT_TYPES}
    for m in sim.messages():
        try:
            doc = orjson.loads(m.value)
        except orjson.JSONDecodeError:
            continue
        kind = doc.get("event_type") if isinstance(doc, dict) else None
        if kind in samples and len(samples[kind]) < 4:
            samples[kind].append(doc)
    return samples


def _paths(doc: dict, prefix: tuple = ()) -> list[tuple]:
    out = []
    for k, v in doc.items():
        out.append((*prefix, k))
        if isinstance(v, dict):
            out.extend(_paths(v, (*prefix, k)))
    return out


def _set(doc: dict, path: tuple, value) -> dict:
    doc = copy.deepcopy(doc)
    target = doc
    for p in path[:-1]:
        target = target[p]
    if value is _DELETE:
        target.pop(path[-1], None)
    else:
        target[path[-1]] = value
    return doc


_DELETE = object()


def _dumps(doc) -> bytes:
    # The standard library's encoder: orjson refuses integers beyond 64 bits, which a feed may still send.
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()


def _mutations(doc: dict, rng: random.Random) -> list[bytes]:
    """Every field of the event changed in every way that matters to it, plus whole-message damage."""
    out: list[bytes] = [_dumps(doc)]
    payload_fields = [
        f for m in EVENT_MODELS if m.model_fields["event_type"].annotation.__args__[0] == doc["event_type"]
        for f in m.model_fields["payload"].annotation.model_fields]
    paths = _paths(doc) + [("payload", f) for f in payload_fields if f not in doc["payload"]]
    for path in paths:
        name = path[-1]
        forms: list = [_DELETE, None, "", 0, True, [], {}]
        if name == "occurred_at":
            forms += TIME_FORMS
        elif name == "deadline":
            forms += DATE_FORMS
        elif name == "title":
            forms += TEXT_FORMS
        elif name.endswith("_id"):
            forms += ID_FORMS
        elif name in ("skills", "qualifications"):
            forms += [["SK01"], ["SK01", "SK01"], ["SK01"] * 10, ["SK01"] * 11, ["Q01"] * 10, ["ZZ"], "SK01",
                      [None], [1]]
        elif name == "schema_version":
            forms += [1, 2, 1.0, "1", -1]
        elif name == "event_type":
            forms += [*EVENT_TYPES, "vacancy.reposted", "VACANCY.SUBMITTED"]
        elif isinstance(doc.get(name, doc["payload"].get(name)), str) or name in ("region", "industry", "sex"):
            forms += ["11", "48", "A", "Z", "M", "F", "m", "monthly", "hourly", "worknet", "300+", "none", "99",
                      " 11", "11 ", "11\n"]
        else:
            forms += INT_FORMS
        for value in forms:
            out.append(_dumps(_set(doc, path, value)))
    raw = _dumps(doc)
    out += [
        raw[:-1] + b',"unknown":1}', raw.replace(b'"payload":{', b'"payload":{"extra":1,'),
        raw.replace(b'"payload":{', b'"payload":{"region":"11",'),  # duplicate key: which one wins?
        raw[:-1] + b',"source":"saramin"}', raw[:-1] + b',"occurred_at":"2026-03-02T09:15:00+09:00"}',
        raw[:-5], raw + b"\n", b" " + raw, raw.replace(b'"', b"'", 2), raw.replace(b"a", b"\xff", 1),
        raw.replace(b'"payload"', b'"payload"' + b" " * 3), _dumps([doc]), b"null", b"",
        raw.replace(b'"1', b'"\\u0031', 1), raw.replace(b'e', b'\\u0065', 1),
        raw.replace(b'"region":"', b'"region":"\\ud800', 1), raw.replace(b'"title":"', b'"title":"\\ud800', 1),
        raw.replace(b'"title":"', b'"title":"\\udc00\\ud800', 1),
    ]
    for _ in range(60):  # random pairs of changes
        a, b = rng.sample(paths, 2) if len(paths) > 1 else (paths[0], paths[0])
        mutated = _set(doc, a, rng.choice([_DELETE, None, "", 1, "11", "x\n", 10**20, 0.5]))
        try:
            mutated = _set(mutated, b, rng.choice([_DELETE, None, " A", -1, "2026-03-02", "F"]))
        except (KeyError, TypeError, AttributeError):
            pass  # the first change replaced the payload itself
        out.append(_dumps(mutated))
    return out


@pytest.fixture(scope="module")
def corpus() -> list[bytes]:
    rng = random.Random(7)
    out: list[bytes] = []
    for docs in _sample_events().values():
        for doc in docs:
            out += _mutations(doc, rng)
    return out


def _values(obj) -> dict:
    fields = type(obj).model_fields if hasattr(type(obj), "model_fields") else obj.__struct_fields__
    return {name: getattr(obj, name) for name in fields}


def _same(fast, slow) -> None:
    assert fast.event_type == slow.event_type
    fast_values, slow_values = _values(fast), _values(slow)
    assert set(fast_values) == set(slow_values) - {"event_type"}
    for name, value in fast_values.items():
        other = slow_values[name]
        if name == "payload":
            assert _values(value) == _values(other)
        elif isinstance(value, datetime):
            assert value == other and value.utcoffset() == other.utcoffset()
        else:
            assert value == other, name


def test_every_struct_mirrors_its_model():
    assert [s.__struct_config__.tag for s in EVENT_STRUCTS] == list(EVENT_TYPES)
    for struct, model in zip(EVENT_STRUCTS, EVENT_MODELS, strict=True):
        assert set(struct.__struct_fields__) == set(model.model_fields) - {"event_type"}
        payload_struct = _payload_type(struct)
        assert set(payload_struct.__struct_fields__) == set(model.model_fields["payload"].annotation.model_fields)


def _payload_type(struct):
    import msgspec

    (field,) = [f for f in msgspec.structs.fields(struct) if f.name == "payload"]
    return field.type


def test_the_fast_path_accepts_only_what_pydantic_accepts_with_the_same_values(corpus):
    accepted = left = 0
    for raw in corpus:
        fast = decode_fast(raw)
        try:
            slow = decode_event(raw)
        except EventError as exc:
            assert fast is None, f"accepted what pydantic rejects ({exc}): {raw[:300]!r}"
            continue
        if fast is None:
            left += 1
            continue
        accepted += 1
        _same(fast, slow)
    # The corpus exercises both: mutations the fast path reads, and ones it leaves to pydantic although valid.
    assert accepted > 1_000 and left > 100, (accepted, left)


def test_every_message_classifies_the_same_with_and_without_it(corpus, month_run):
    from simulator.output import read_jsonl

    path, _, _ = month_run
    values = corpus + [m.value for m in read_jsonl(path)]
    # Emitted at the events' own times, so lateness and the future are judged too.
    records = [Record("lmis.vacancies", 0, i, 1_772_410_500_000 + i, None, v) for i, v in enumerate(values)]
    for record in records:
        fast, slow = classify(record, fast=True), classify(record, fast=False)
        assert type(fast) is type(slow), record.value[:300]
        assert fast.row == slow.row, record.value[:300]
        if type(fast) is Accepted:
            assert type(slow.event).__module__ == "schemas.events"
    batch_fast, batch_slow = classify_batch(records, native=False), classify_batch(records, keep_accepted=True)
    assert [(r.rows, [d.row for d in r.dead_letters]) for r in batch_fast.runs] == [
        (r.rows, [d.row for d in r.dead_letters]) for r in batch_slow.runs]
    assert (batch_fast.days, batch_fast.vacancies) == (batch_slow.days, batch_slow.vacancies)


@pytest.mark.parametrize("kind", ["pattern", "field_validator", "before_validator", "float", "extra_allowed"])
def test_a_model_it_cannot_mirror_fails_at_import_instead_of_being_checked_less(kind):
    from typing import Annotated

    from pydantic import BaseModel, ConfigDict, StringConstraints, field_validator, model_validator

    from schemas.fastpath import _struct_of

    class Strict(BaseModel):
        model_config = ConfigDict(extra="forbid")

    if kind == "pattern":
        class Model(Strict):
            code: Annotated[str, StringConstraints(pattern=r"^\d{3}$")]
    elif kind == "field_validator":
        class Model(Strict):
            code: str

            @field_validator("code")
            @classmethod
            def _upper(cls, v: str) -> str:
                return v.upper()
    elif kind == "before_validator":
        class Model(Strict):
            code: str

            @model_validator(mode="before")
            @classmethod
            def _fill(cls, data):
                return data
    elif kind == "float":
        class Model(Strict):
            share: float
    else:
        class Model(BaseModel):
            code: str

    with pytest.raises(TypeError, match="schemas.fastpath"):
        _struct_of(Model)
