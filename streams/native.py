"""The trend pipeline's per-message work in compiled code: the clean messages read, judged and turned into
their ``events`` rows by ``lmis_native`` (``native/``, Rust), from a spec derived here from the pydantic models
and from :mod:`streams.processing`'s row rules.

Reading, checking and building the row of a message held the worker's one Python thread ~20 µs of its ~38
µs per event (docs/benchmarks.md, stop 17), and clickhouse-connect's encoding of the rows another ~5. The
compiled reader does both for a message in plain form and writes the row as ClickHouse's RowBinary, so that
neither the row nor its columns are ever Python objects. It is a pre-check, never the judge, as
:mod:`schemas.fastpath`: it is stricter than pydantic (no escapes in strings, integers as integers, times to
the millisecond, ASCII and Hangul in free text), and whatever it does not read -- a dead letter among them:
it never words one -- goes through :func:`streams.processing.judge` as before. So a message is read here
only if pydantic accepts it, and its row is the one :func:`streams.processing.to_row` builds
(``tests/test_native.py`` checks both, on every simulated event and on mutations of them, and stores both
rows in ClickHouse to compare).

The derivation accepts only the constraint kinds it knows; a model using another one fails at import,
rather than being checked less strictly there.
"""

from __future__ import annotations

import functools
import os
import struct
import types
import typing
from datetime import date, datetime, timedelta
from typing import Any, Literal, Union

import annotated_types as at
from pydantic import AwareDatetime, BaseModel, StringConstraints
from pydantic.fields import FieldInfo
from pydantic.functional_validators import AfterValidator
from pydantic_core import PydanticUndefined

from schemas.codes import code_list, minimum_wage, wage_hours
from schemas.events import EVENT_MODELS, KEY_FIELD, Event, VacancyUpdatedPayload, _screen
from schemas.fastpath import _ID_PATTERN, _unwrap
from schemas.pii import find_pii

try:
    import lmis_native
except ImportError:  # not built (no Rust toolchain when installed): every message goes the Python way
    lmis_native = None

OFF = {"0", "false", "no", "off"}


def available() -> bool:
    """Whether the compiled reader is built and not turned off (``LMIS_COMPILED_READER=false``: the Python
    path, for a comparison or a suspicion). Read from the environment, which the classifier processes inherit."""
    return lmis_native is not None and os.environ.get("LMIS_COMPILED_READER", "true").strip().lower() not in OFF

# Model validators the compiled reader states as a rule: (model, validator) → "at least one of these fields
# is given and not null".
ANY_OF: dict[tuple[type[BaseModel], str], tuple[str, ...]] = {
    (VacancyUpdatedPayload, "_changes_something"): ("openings", "wage_amount", "deadline"),
}


def _fail(where: str, what: object) -> typing.NoReturn:
    raise TypeError(f"streams.native cannot derive {where}: {what!r}")


def _field(where: str, name: str, info: FieldInfo) -> dict[str, Any]:
    """One payload field's spec: its kind, its two parameters, and whether it may be null or absent."""
    annotation, meta = _unwrap(info.annotation)
    meta = [*info.metadata, *meta]
    optional = False
    if typing.get_origin(annotation) in (Union, types.UnionType):
        args = typing.get_args(annotation)
        rest = [a for a in args if a is not type(None)]
        if len(rest) != 1 or len(args) != 2:
            _fail(where, annotation)
        optional = True
        annotation, more = _unwrap(rest[0])
        meta += more
    required = info.default is PydanticUndefined and info.default_factory is None
    default = None if required or info.default_factory is not None else info.default
    spec: dict[str, Any] = {"name": name, "optional": optional, "required": required, "a": None, "b": None,
                            "default_int": default if type(default) is int else None}
    bounds: dict[str, Any] = {}
    strings: list[StringConstraints] = []
    after: list[Any] = []
    for m in meta:
        if isinstance(m, StringConstraints):
            strings.append(m)
        elif isinstance(m, at.Ge | at.Le | at.MaxLen):
            kind = type(m).__name__.lower()
            bounds[kind if kind != "maxlen" else "max_length"] = getattr(m, kind if kind != "maxlen" else "max_length")
        elif isinstance(m, AfterValidator):
            after.append(m.func)
        elif isinstance(m, FieldInfo):
            if m.metadata:
                _fail(where, m)
        else:
            _fail(where, m)
    origin = typing.get_origin(annotation)
    if origin is Literal and all(type(a) is str for a in typing.get_args(annotation)) and not (bounds or strings
                                                                                             or after):
        spec.update(kind="code", a=list(typing.get_args(annotation)))
    elif annotation is str and len(strings) == 1 and not bounds:
        sc = strings[0]
        if sc.to_upper or sc.to_lower or sc.strict or sc.ascii_only:
            _fail(where, sc)
        ident = _ID_PATTERN.fullmatch(sc.pattern or "")
        if ident and not (sc.strip_whitespace or sc.min_length or sc.max_length or after):
            spec.update(kind="id", a=ident[1], b=int(ident[2]))
        elif sc.pattern is None and sc.strip_whitespace and after == [_screen]:
            spec.update(kind="text", a=sc.min_length or 0, b=sc.max_length)
        else:
            _fail(where, (sc, after))
    elif annotation is int and not (strings or after) and set(bounds) <= {"ge", "le"}:
        spec.update(kind="int", a=bounds.get("ge"), b=bounds.get("le"))
    elif annotation is bool and not (bounds or strings or after):
        spec.update(kind="bool")
    elif annotation is date and not (bounds or strings or after):
        spec.update(kind="date")
    elif origin is list and not (strings or after) and set(bounds) <= {"max_length"}:
        (item,) = typing.get_args(annotation)
        item, item_meta = _unwrap(item)
        if typing.get_origin(item) is not Literal or item_meta:
            _fail(where, item)
        spec.update(kind="codes", a=list(typing.get_args(item)), b=bounds.get("max_length"))
    else:
        _fail(where, annotation)
    return spec


def _event_spec(model: type[Event]) -> dict[str, Any]:
    from streams.processing import SUBTYPE_FIELD, VACANCY_EVENT_TYPES

    etype = typing.get_args(model.model_fields["event_type"].annotation)[0]
    versions = typing.get_args(model.model_fields["schema_version"].annotation)
    if not versions or not all(type(v) is int for v in versions):
        _fail(f"{model.__name__}.schema_version", versions)
    payload = model.model_fields["payload"].annotation
    if payload.model_config.get("extra") != "forbid":
        _fail(payload.__name__, "unknown fields must be forbidden")
    decorators = payload.__pydantic_decorators__
    if decorators.field_validators or decorators.root_validators or decorators.validators:
        _fail(payload.__name__, "field validators")
    any_of: list[str] = []
    for name, dec in decorators.model_validators.items():
        rule = ANY_OF.get((payload, name))
        if rule is None or dec.info.mode != "after" or any_of:
            _fail(f"{payload.__name__}.{name}", dec.info.mode)
        any_of = list(rule)
    names = list(payload.model_fields)
    fields = [_field(f"{payload.__name__}.{n}", n, info) for n, info in payload.model_fields.items()]

    def index(name: str | None) -> int | None:
        return names.index(name) if name in names else None

    subtype = SUBTYPE_FIELD.get(etype)
    if subtype is not None and index(subtype) is None:
        _fail(f"{payload.__name__}", f"no {subtype} for the subtype")
    openings = "openings" if etype in ("vacancy.submitted", "vacancy.updated") else (
        "openings_filled" if etype == "vacancy.closed" else None)
    review = None
    if etype == "vacancy.submitted":
        review = {n: index(n) for n in ("title", "wage_type", "wage_amount", "work_hours_per_week", "deadline")}
        if None in review.values():
            _fail(payload.__name__, review)
    row = {
        "entity_id": index(KEY_FIELD[etype]), "region": index("region"), "occupation": index("occupation"),
        **{n: index(n) for n in ("vacancy_id", "employer_id", "industry", "size_band", "age_band", "sex", "deadline")},
        "subtype": index(subtype), "openings": index(openings), "review": review,
    }
    if row["entity_id"] is None or row["region"] is None or row["occupation"] is None:
        _fail(payload.__name__, row)
    return {"event_type": etype, "versions": list(versions), "fields": fields, "any_of": [index(n) for n in any_of],
            "row": row, "vacancy_event": etype in VACANCY_EVENT_TYPES}


def _envelope(model: type[Event]) -> dict[str, Any]:
    """The envelope's rules (the compiled reader knows its six fields): the id's length, the sources, the
    time's range."""
    fields = model.model_fields
    expected = {"event_id", "event_type", "schema_version", "occurred_at", "source", "payload"}
    if set(fields) != expected or Event.model_config.get("extra") != "forbid":
        _fail("Event", sorted(fields))
    if Event.__pydantic_decorators__.model_validators or Event.__pydantic_decorators__.field_validators:
        _fail("Event", "validators")
    ident = _field("Event.event_id", "event_id", fields["event_id"])
    if ident["kind"] != "id" or ident["a"]:
        _fail("Event.event_id", ident)
    source = _field("Event.source", "source", fields["source"])
    if source["kind"] != "code":
        _fail("Event.source", source)
    occurred = fields["occurred_at"]
    bounds = {type(m).__name__: m for m in occurred.metadata}
    if occurred.annotation is not AwareDatetime or set(bounds) != {"Ge", "Lt"}:
        _fail("Event.occurred_at", occurred)
    ge, lt = bounds["Ge"].ge, bounds["Lt"].lt
    if not (isinstance(ge, datetime) and isinstance(lt, datetime)):
        _fail("Event.occurred_at", bounds)
    return {"event_id_hex": ident["b"], "sources": source["a"],
            "occurred_ge_ms": round(ge.timestamp() * 1000), "occurred_lt_ms": round(lt.timestamp() * 1000)}


def spec() -> dict[str, Any]:
    """Everything the compiled reader checks and builds, from the models and the row rules."""
    from streams.processing import EVENT_COLUMNS, PROHIBITED

    envelopes = [_envelope(m) for m in EVENT_MODELS]
    if any(e != envelopes[0] for e in envelopes):
        _fail("the envelope", "differs between event types")
    hours = wage_hours()
    if set(hours) != set(code_list("wage_types").values()):
        _fail("wage_hours", hours)
    return {
        "columns": list(EVENT_COLUMNS),
        **envelopes[0],
        "types": [_event_spec(m) for m in EVENT_MODELS],
        "prohibited": list(PROHIBITED),
        "wage_hours": hours,
        # Asia/Seoul years of the times the envelope allows (2000-2100 UTC reaches 2101 in Seoul).
        "minimum_wage": {y: minimum_wage(y) for y in range(1999, 2103)},
    }


@functools.cache
def reader() -> Any:
    """The compiled reader (``lmis_native.Classifier``), made once per process (at the first batch: the spec
    needs :mod:`streams.processing`, which uses it)."""
    if lmis_native is None:
        raise RuntimeError("the compiled reader is not built (make python-deps with Rust 1.74 or newer)")
    return lmis_native.Classifier(spec(), find_pii)


# RowBinary rows and Native blocks of the events' rows, in compiled code; None without it (the sink then
# inserts the rows as clickhouse-connect encodes them).
encode_rows = None if lmis_native is None else lmis_native.encode_rows
native_block = None if lmis_native is None else lmis_native.native_block


def decode_rows(data: bytes) -> list[tuple]:
    """RowBinary rows of the ``events`` columns back as :func:`streams.processing.to_row`'s tuples (the
    inverse of the encoding; to look at what the compiled reader wrote, and to test it)."""
    rows: list[tuple] = []
    view, i = memoryview(data), 0

    def text(raw: bool = False) -> Any:
        nonlocal i
        n = shift = 0
        while True:
            c = view[i]
            i += 1
            n |= (c & 0x7F) << shift
            shift += 7
            if not c & 0x80:
                break
        value = bytes(view[i:i + n])
        i += n
        return value if raw else value.decode()

    def number(fmt: str) -> int:
        nonlocal i
        (value,) = struct.unpack_from(fmt, view, i)
        i += struct.calcsize(fmt)
        return value

    while i < len(view):
        event_id = bytes(view[i:i + 32]).decode()
        i += 32
        row: list[Any] = [event_id, text(), number("<H"), number("<q")]
        row += [text() for _ in range(13)]  # source .. title_key
        row.append(number("<H"))  # openings
        i += 1
        row.append(None if view[i - 1] else _EPOCH + timedelta(days=number("<H")))  # deadline
        row += [text(raw=True), text(), number("<H"), number("<Q"), number("<q")]
        rows.append(tuple(row))
    return rows


_EPOCH = date(1970, 1, 1)
