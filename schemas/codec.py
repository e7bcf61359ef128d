"""Events on the wire: JSON bytes in, a validated event or an :class:`EventError` out.

Every error names the field, the value (personal data masked) and the rule it broke, with a stable
``reason`` code for dead-letter counting.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import orjson
from pydantic import ValidationError

from schemas.events import EVENT_ADAPTER, EVENT_TYPES, SUPPORTED_VERSIONS, Event
from schemas.pii import find_pii, redact

# Stable reason codes (dead-letter records and counters use them).
MALFORMED_JSON = "malformed_json"
NOT_AN_OBJECT = "not_an_object"
UNKNOWN_EVENT_TYPE = "unknown_event_type"
UNSUPPORTED_SCHEMA_VERSION = "unsupported_schema_version"
PII_DETECTED = "pii_detected"
INVALID_FIELD = "invalid_field"
MISSING_FIELD = "missing_field"


@dataclass(frozen=True)
class FieldProblem:
    field: str
    value: str
    rule: str

    def __str__(self) -> str:
        return f"field '{self.field}' = {self.value}: {self.rule}"


class EventError(ValueError):
    """A message that is not a valid event."""

    def __init__(self, reason: str, problems: list[FieldProblem]):
        self.reason = reason
        self.problems = problems
        first = problems[0]
        more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(f"{reason}: {first}{more}")

    @property
    def field(self) -> str:
        return self.problems[0].field

    @property
    def value(self) -> str:
        return self.problems[0].value

    @property
    def rule(self) -> str:
        return self.problems[0].rule


def _show(value: object, limit: int = 120) -> str:
    if isinstance(value, str):
        text = value
    else:
        try:
            text = orjson.dumps(value, default=str).decode()
        except TypeError:  # orjson refuses integers beyond 64 bits, which JSON (and a broken feed) allows
            text = json.dumps(value, default=str, ensure_ascii=False)
    text = redact(text)
    shown = repr(text) if isinstance(value, str) else text
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"


def decode_event(raw: bytes | str) -> Event:
    """Validate one message; raise :class:`EventError` naming field, value and rule."""
    try:
        return EVENT_ADAPTER.validate_json(raw)
    except ValidationError as exc:
        raise _explain(raw, exc) from None


def _explain(raw: bytes | str, exc: ValidationError) -> EventError:
    # The fast path failed: work out the most useful reason, slowly (bad input is rare).
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        return EventError(MALFORMED_JSON, [FieldProblem("(message)", _show(bytes(raw[:60]).decode(
            "utf-8", "replace") if isinstance(raw, bytes) else raw[:60]), f"not valid JSON: {e}")])
    if not isinstance(doc, dict):
        return EventError(NOT_AN_OBJECT, [FieldProblem("(message)", _show(doc), "must be a JSON object")])
    etype = doc.get("event_type")
    if etype not in EVENT_TYPES:
        return EventError(UNKNOWN_EVENT_TYPE, [FieldProblem(
            "event_type", _show(etype), f"must be one of {', '.join(EVENT_TYPES)}")])
    version = doc.get("schema_version")
    if version not in SUPPORTED_VERSIONS[etype]:
        supported = ", ".join(str(v) for v in SUPPORTED_VERSIONS[etype])
        return EventError(UNSUPPORTED_SCHEMA_VERSION, [FieldProblem(
            "schema_version", _show(version), f"{etype} supports schema_version {supported}")])
    problems: list[FieldProblem] = []
    reason = INVALID_FIELD
    for err in exc.errors(include_url=False):
        loc = [str(p) for p in err["loc"]]
        if loc and loc[0] == etype:  # discriminated unions prefix the tag
            loc = loc[1:]
        field = ".".join(loc) or "(event)"
        value = err.get("input")
        rule = err["msg"]
        if err["type"] == "missing":
            value, reason = "(missing)", MISSING_FIELD if reason == INVALID_FIELD else reason
        elif isinstance(value, str) and find_pii(value):
            reason = PII_DETECTED
        elif err["type"] == "extra_forbidden":
            rule = "unknown field (not in the schema)"
        problems.append(FieldProblem(field, value if value == "(missing)" else _show(value), rule))
    if reason == MISSING_FIELD and any(p.value != "(missing)" for p in problems):
        reason = INVALID_FIELD
    return EventError(reason, problems)


def encode_event(event: Event) -> bytes:
    return event.model_dump_json(exclude_none=True).encode()
