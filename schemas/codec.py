"""Events on the wire: JSON bytes in, a validated event or an :class:`EventError` out.

Every error names the field, the value (personal data masked) and the rule it broke, with a stable
``reason`` code for dead-letter counting.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass

import orjson
from pydantic import ValidationError

from schemas.events import EVENT_ADAPTER, EVENT_MODELS, EVENT_TYPES, SUPPORTED_VERSIONS, Event
from schemas.pii import SCREEN_LIMIT, find_pii, redact

# Stable reason codes (dead-letter records and counters use them).
MALFORMED_JSON = "malformed_json"
NOT_AN_OBJECT = "not_an_object"
UNKNOWN_EVENT_TYPE = "unknown_event_type"
UNSUPPORTED_SCHEMA_VERSION = "unsupported_schema_version"
PII_DETECTED = "pii_detected"
INVALID_FIELD = "invalid_field"
MISSING_FIELD = "missing_field"
DUPLICATE_KEY = "duplicate_key"


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
            try:
                text = json.dumps(value, default=str, ensure_ascii=False)
            except (RecursionError, ValueError):  # nested deeper than orjson writes (a thousand lists)
                text = f"(a {type(value).__name__} nested too deep to show)"
    # Screened on a cut longer than shown: a number across the cut is masked whole or not shown at all.
    text = redact(text[: limit + 64])
    shown = repr(text) if isinstance(value, str) else text
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"


# Every field name of every event: a key outside these is an unknown field, whose name and value may be
# anything a feed put there (a person's name, say) and are never echoed.
KNOWN_FIELDS = frozenset(
    name for m in EVENT_MODELS for model in (m, m.model_fields["payload"].annotation) for name in model.model_fields)
_SHOWN_FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,39}")


class _DuplicateKey(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, object]]) -> dict:
    doc = dict(pairs)
    if len(doc) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return doc


def duplicate_key(raw: bytes | str) -> str | None:
    """The first key that appears twice in one object of the message, or None (also for text that is not
    JSON: the parser's own error names that). JSON leaves duplicates undefined and parsers keep either one,
    so a message with one could be validated on one value and stored with the other."""
    try:
        json.loads(raw, object_pairs_hook=_no_duplicates)
    except _DuplicateKey as exc:
        return str(exc)
    except ValueError:
        return None
    return None


def field_name(name: object) -> str:
    """A field's name as it may be shown: a known field's, or a plain short identifier's; any other key of
    the message is '(unknown field)'."""
    text = str(name)
    if isinstance(name, int) or text in KNOWN_FIELDS:
        return text
    if _SHOWN_FIELD.fullmatch(text) and find_pii(text) is None:
        return text
    return "(unknown field)"


def decode_event(raw: bytes | str) -> Event:
    """Validate one message; raise :class:`EventError` naming field, value and rule."""
    try:
        event = EVENT_ADAPTER.validate_json(raw)
    except ValidationError as exc:
        raise _explain(raw, exc) from None
    key = duplicate_key(raw)
    if key is not None:
        raise EventError(DUPLICATE_KEY, [FieldProblem(field_name(key), "(not shown)",
                                                      "a key may appear only once in an object")])
    return event


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
        field = ".".join(field_name(p) for p in err["loc"][len(err["loc"]) - len(loc):]) or "(event)"
        value = err.get("input")
        rule = err["msg"]
        if err["type"] == "missing":
            value, reason = "(missing)", MISSING_FIELD if reason == INVALID_FIELD else reason
        elif err["type"] == "extra_forbidden":
            value, rule = "(not shown)", "unknown field (not in the schema)"
        elif isinstance(value, str) and find_pii(value[:SCREEN_LIMIT]):
            reason = PII_DETECTED
        problems.append(FieldProblem(field, value if value in ("(missing)", "(not shown)") else _show(value), rule))
    if reason == MISSING_FIELD and any(p.value != "(missing)" for p in problems):
        reason = INVALID_FIELD
    return EventError(reason, problems)


# The dead-letter copy of a message: at most this many characters of it, screened.
ORIGINAL_LIMIT = 2048
_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")


def _screened(doc: object, depth: int = 0) -> object:
    if isinstance(doc, dict | list) and depth >= 4:  # an event nests two levels; deeper is never shown
        return "(not shown)"
    if isinstance(doc, dict):
        return {(k if k in KNOWN_FIELDS else "(unknown field)"):
                (_screened(v, depth + 1) if k in KNOWN_FIELDS else "(not shown)")
                for k, v in list(doc.items())[:64]}
    if isinstance(doc, list):
        return [_screened(v, depth + 1) for v in doc[:64]]
    if isinstance(doc, str):
        return redact(doc[:SCREEN_LIMIT])
    return doc


def screened_original(raw: bytes) -> str:
    """What a dead letter keeps of the message: a JSON message with every string screened after unescaping and
    unknown fields' names and values left out; any other text unescaped and screened. At most
    :data:`ORIGINAL_LIMIT` characters, so that the copy can always be published whatever arrived."""
    try:
        text = orjson.dumps(_screened(orjson.loads(raw))).decode()
    except orjson.JSONDecodeError:
        text = raw[: SCREEN_LIMIT * 2].decode("utf-8", "replace")
        text = _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text)
        text = redact(text.encode("utf-8", "replace").decode("utf-8", "replace"))
    return text if len(text) <= ORIGINAL_LIMIT else text[: ORIGINAL_LIMIT - 1] + "…"


def original_digest(raw: bytes) -> str:
    """The message's SHA-256: who holds the original can match a dead letter with it."""
    return hashlib.sha256(raw).hexdigest()


def encode_event(event: Event) -> bytes:
    return event.model_dump_json(exclude_none=True).encode()
