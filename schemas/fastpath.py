"""A faster reading of the events that the pydantic models accept, derived from those models.

pydantic's validation of an event was the largest single cost of the trend pipeline per message.
``decode_fast`` reads a message with msgspec into structs built from the pydantic models at import (the
same fields, codes, patterns, ranges, defaults and validators), in about half the time (3.6 against 7.2 µs
on the bench machine, docs/benchmarks.md). It is a pre-check, never the judge: it is stricter than pydantic
(no lax coercions, no surrounding whitespace in stripped text, times in one RFC 3339 form), and whatever it
does not accept is left to pydantic, whose answer -- the event or the error naming field, value and rule --
stands. So a message is accepted by it only if pydantic accepts it, with the same values
(``tests/test_fastpath.py`` checks both on every simulated event and on mutations of them).

The derivation accepts only the constraint kinds it knows; a model using another one fails at import,
rather than being checked less strictly here.
"""

from __future__ import annotations

import re
import types
import typing
from datetime import date, datetime
from typing import Annotated, Any, ClassVar, Literal, Union

import annotated_types as at
import msgspec
from pydantic import AwareDatetime, BaseModel, StringConstraints
from pydantic.fields import FieldInfo
from pydantic.functional_validators import AfterValidator
from pydantic_core import PydanticUndefined

from schemas.codec import duplicate_key
from schemas.events import EVENT_MODELS, Event

# Times in the one form the simulator and the portals' feeds write (RFC 3339 with a numeric or Z offset and
# at most microseconds); any other form pydantic may accept is left to it.
# ASCII digits only: Python's \d also matches other scripts' digits.
_RFC3339 = r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?(?:Z|[+-][0-9]{2}:[0-9]{2})"
_DATE = r"[0-9]{4}-[0-9]{2}-[0-9]{2}"


class Rejected(ValueError):
    """Raised inside a struct's checks: the message is left to pydantic."""


def _unwrap(annotation: Any) -> tuple[Any, list[Any]]:
    """The annotation without Annotated layers, and the metadata they carried."""
    meta: list[Any] = []
    while typing.get_origin(annotation) is Annotated:
        meta.extend(annotation.__metadata__)
        annotation = annotation.__origin__
    return annotation, meta


_ID_PATTERN = re.compile(r"\^([A-Za-z]*)\[0-9a-f\]\{(\d+)\}\$")


class _Field:
    """One field's msgspec type and the checks msgspec cannot express (in the struct's ``__post_init__``)."""

    def __init__(self, owner: str, name: str, annotation: Any, metadata: list[Any], hoisted: bool = False):
        self.where = f"{owner}.{name}"
        self.hoisted = hoisted  # a nested model whose required forms its owner checks
        self.nested: list[_Field] = []  # a nested model's fields
        self.name = name
        self.optional = False
        self.after: list[Any] = []  # functions of the value (pydantic AfterValidators)
        self.strip = False
        # The text's form, as a regex without anchors and without the separator \x1f: a pseudonymous id's
        # pattern, a time's or a date's. An event's required ones are matched at once (one regex call).
        self.form: str | None = None
        self.parse: Any = None  # datetime.fromisoformat or date.fromisoformat: read as text, parsed here
        self.bounds: tuple[Any, Any] = (None, None)  # a datetime's [ge, lt)
        self.type = self._convert(annotation, metadata)

    def _fail(self, what: object) -> typing.NoReturn:
        raise TypeError(f"schemas.fastpath cannot derive {self.where}: {what!r}")

    def _convert(self, annotation: Any, metadata: list[Any]) -> Any:
        annotation, more = _unwrap(annotation)
        metadata = [*metadata, *more]
        origin = typing.get_origin(annotation)
        if origin in (Union, types.UnionType):
            args = typing.get_args(annotation)
            rest = [a for a in args if a is not type(None)]
            if len(rest) != 1 or len(args) != 2:
                self._fail(annotation)
            self.optional = True
            return self._convert(rest[0], metadata) | None
        meta: dict[str, Any] = {}
        for m in metadata:
            if isinstance(m, StringConstraints):
                if m.to_upper or m.to_lower or m.strict or m.ascii_only:
                    self._fail(m)
                self.strip = bool(m.strip_whitespace)
                if m.pattern is not None:
                    # Only the pseudonymous ids' shape: pydantic matches patterns with Rust's regex, whose
                    # '$', '\d' and '\s' differ from Python's; another pattern would need its own proof.
                    ident = _ID_PATTERN.fullmatch(m.pattern)
                    if not ident:
                        self._fail(m)
                    self.form = f"{ident[1]}[0-9a-f]{{{ident[2]}}}"
                if m.min_length is not None:
                    meta["min_length"] = m.min_length
                if m.max_length is not None:
                    meta["max_length"] = m.max_length
            elif isinstance(m, at.Ge | at.Le | at.Gt | at.Lt):
                kind = type(m).__name__.lower()
                meta[kind] = getattr(m, kind)
            elif isinstance(m, at.MaxLen | at.MinLen):
                kind = "max_length" if isinstance(m, at.MaxLen) else "min_length"
                meta[kind] = getattr(m, kind)
            elif isinstance(m, AfterValidator):
                self.after.append(m.func)
            elif isinstance(m, FieldInfo):  # descriptions (Field(...) inside Annotated)
                if m.metadata:
                    self._fail(m)
            else:
                self._fail(m)
        if annotation is AwareDatetime:
            self.parse, self.bounds = datetime.fromisoformat, (meta.pop("ge", None), meta.pop("lt", None))
            if meta:
                self._fail(meta)
            self.form = _RFC3339
            return str
        if annotation is date:
            self.parse = date.fromisoformat
            if meta:
                self._fail(meta)
            self.form = _DATE
            return str
        if origin is Literal:
            if meta:
                self._fail(meta)
            return annotation
        if origin is list:
            (item,) = typing.get_args(annotation)
            inner = _Field(self.where, "[]", item, [])
            if inner.checked:
                self._fail(item)
            return Annotated[list[inner.type], msgspec.Meta(**meta)] if meta else list[inner.type]
        if annotation in (str, int, bool):
            return Annotated[annotation, msgspec.Meta(**meta)] if meta else annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            if meta:
                self._fail(meta)
            struct, self.nested = _derive(annotation, hoisted=self.hoisted)
            return struct
        self._fail(annotation)

    @property
    def checked(self) -> bool:
        return bool(self.after or self.strip or self.parse or self.form)


def _post_init(fields: list[_Field], model_checks: list[Any], nested: list[_Field], hoisted: bool) -> Any:
    """The struct's ``__post_init__``, generated: one regex for the required forms of the event and its
    payload (``nested``, checked from the envelope: one call per event), then each field's other checks, then
    the model's validators. Any failure becomes a :class:`Rejected` (a ValueError: msgspec reports a
    ValidationError), and the message is left to pydantic. ``hoisted``: the envelope checks the forms."""
    env: dict[str, Any] = {"Rejected": Rejected}
    lines: list[str] = []
    forms = [] if hoisted else [(f"self.{f.name}", f.form) for f in fields if f.form and not f.optional]
    forms += [(f"self.payload.{f.name}", f.form) for f in nested if f.form and not f.optional]
    if forms:
        env["_forms"] = re.compile("\x1f".join(form for _, form in forms)).fullmatch
        text = "\\x1f".join(f"{{{expr}}}" for expr, _ in forms)
        lines.append(f'if _forms(f"{text}") is None: raise Rejected')
    for i, f in enumerate(fields):
        body: list[str] = []
        if f.form and f.optional:
            env[f"_form{i}"] = re.compile(f.form).fullmatch
            body.append(f"if _form{i}(v) is None: raise Rejected")
        if f.parse is not None:
            env[f"_parse{i}"] = f.parse
            body.append(f"v = _parse{i}(v)")
            ge, lt = f.bounds
            # Years strictly between the bounds' years (by more than one: local years) are inside them.
            inside = []
            if ge is not None:
                env[f"_ge{i}"] = ge
                inside.append(f"{ge.year + 1} < v.year")
            if lt is not None:
                env[f"_lt{i}"] = lt
                inside.append(f"v.year < {lt.year - 1}")
            if inside:
                body.append(f"if not ({' and '.join(inside)}):")
                if ge is not None:
                    body.append(f"    if v < _ge{i}: raise Rejected")
                if lt is not None:
                    body.append(f"    if v >= _lt{i}: raise Rejected")
            body.append(f"self.{f.name} = v")
        if f.strip:  # pydantic strips Rust's whitespace, which may differ from Python's: none at all here
            body.append("if v != v.strip(): raise Rejected")
        for j, func in enumerate(f.after):
            env[f"_after{i}_{j}"] = func
            body.append(f"_after{i}_{j}(v)")
        if body:
            lines.append(f"v = self.{f.name}")
            if f.optional:
                lines.append("if v is not None:")
                lines.extend("    " + b for b in body)
            else:
                lines.extend(body)
    for k, check in enumerate(model_checks):
        env[f"_model{k}"] = check
        lines.append(f"_model{k}(self)")
    if not lines:
        return None
    src = "def __post_init__(self):\n    try:\n" + "".join(f"        {line}\n" for line in lines) + (
        "    except Rejected:\n        raise\n"
        "    except Exception as exc:\n        raise Rejected(str(exc)) from None\n")
    exec(compile(src, "<schemas.fastpath>", "exec"), env)  # noqa: S102 -- generated from the models above
    return env["__post_init__"]


def _struct_of(model: type[BaseModel], tag: str | None = None) -> type[msgspec.Struct]:
    """The struct of a model (an event's, with ``tag``)."""
    return _derive(model, tag)[0]


def _derive(model: type[BaseModel], tag: str | None = None,
            hoisted: bool = False) -> tuple[type[msgspec.Struct], list[_Field]]:
    """The struct of a model and its derived fields. An event's (``tag``) also checks its payload's required
    forms, which the payload's struct then leaves out (``hoisted``)."""
    if model.model_config.get("extra") != "forbid":
        raise TypeError(f"schemas.fastpath: {model.__name__} must forbid unknown fields")
    decorators = model.__pydantic_decorators__
    if decorators.field_validators or decorators.root_validators or decorators.validators:
        raise TypeError(f"schemas.fastpath cannot derive {model.__name__}'s field validators")
    model_checks = []
    for dec in decorators.model_validators.values():
        if dec.info.mode != "after":
            raise TypeError(f"schemas.fastpath cannot derive {model.__name__}'s {dec.info.mode} validator")
        model_checks.append(dec.func)
    fields: list[tuple] = []
    derived: list[_Field] = []
    for name, info in model.model_fields.items():
        if name == "event_type" and tag is not None:
            continue  # the union's tag
        f = _Field(model.__name__, name, info.annotation, list(info.metadata),
                   hoisted=tag is not None and name == "payload")
        derived.append(f)
        if info.default_factory is not None:
            fields.append((name, f.type, msgspec.field(default_factory=info.default_factory)))
        elif info.default is not PydanticUndefined:
            fields.append((name, f.type, info.default))
        else:
            fields.append((name, f.type))
    nested = next((f.nested for f in derived if f.hoisted), [])
    namespace: dict[str, Any] = {}
    post_init = _post_init(derived, model_checks, nested, hoisted=hoisted)
    if post_init is not None:
        namespace["__post_init__"] = post_init
    kwargs: dict[str, Any] = {"forbid_unknown_fields": True, "kw_only": True}
    if tag is not None:
        kwargs.update(tag_field="event_type", tag=tag)
        namespace["event_type"] = tag
        namespace["__annotations__"] = {"event_type": ClassVar[str]}
    return msgspec.defstruct(model.__name__, fields, namespace=namespace, **kwargs), derived


def _tag_of(model: type[Event]) -> str:
    return typing.get_args(model.model_fields["event_type"].annotation)[0]


EVENT_STRUCTS: tuple[type[msgspec.Struct], ...] = tuple(_struct_of(m, _tag_of(m)) for m in EVENT_MODELS)
_DECODER = msgspec.json.Decoder(Union[EVENT_STRUCTS])  # type: ignore[valid-type]  # noqa: UP007
_decode = _DECODER.decode


def decode_fast(raw: bytes) -> Any | None:
    """The event as a struct with the pydantic model's attributes, or None: leave this message to pydantic
    (also one with a key twice: msgspec keeps the last, and pydantic's reader names the duplicate)."""
    try:
        event = _decode(raw)
    except Exception:  # noqa: BLE001 -- invalid JSON, UTF-8, schema or a check: whatever it is, pydantic judges
        return None
    return None if duplicate_key(raw) is not None else event
