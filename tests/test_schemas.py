"""Event schemas: good inputs pass, every bad input is rejected with the field, the value and the rule."""

from __future__ import annotations

import copy

import orjson
import pytest

from schemas.codec import EventError, decode_event, encode_event
from schemas.codes import CODE_LIST_NAMES, code_list
from schemas.events import EVENT_TYPES, KEY_FIELD, topic_of
from schemas.export import stale_files
from schemas.pii import find_pii, redact

VACANCY = {
    "event_id": "0123456789abcdef0123456789abcdef",
    "event_type": "vacancy.submitted",
    "schema_version": 1,
    "occurred_at": "2026-03-02T09:15:00.000+09:00",
    "source": "worknet",
    "payload": {
        "vacancy_id": "V0123456789abcdef", "employer_id": "E0123456789abcdef", "region": "48",
        "industry": "C", "occupation": "74", "size_band": "300+", "title": "선박 용접공 경력 채용",
        "openings": 3, "employment_type": "permanent", "wage_type": "monthly", "wage_amount": 3_200_000,
        "work_hours_per_week": 40, "deadline": "2026-04-01", "skills": ["SK09"], "qualifications": ["Q04"],
    },
}


def with_change(path: str, value) -> bytes:
    doc = copy.deepcopy(VACANCY)
    target = doc
    *parents, last = path.split(".")
    for p in parents:
        target = target[p]
    if value is DELETE:
        del target[last]
    else:
        target[last] = value
    return orjson.dumps(doc)


DELETE = object()


def test_good_event_round_trips():
    event = decode_event(orjson.dumps(VACANCY))
    assert event.event_type == "vacancy.submitted"
    assert event.entity_id == "V0123456789abcdef"
    assert event.occurred_at.utcoffset().total_seconds() == 9 * 3600
    again = decode_event(encode_event(event))
    assert again == event


def test_every_simulated_event_is_valid(month_run):
    from simulator.output import read_jsonl

    path, truth, _ = month_run
    seen_types = set()
    invalid = 0
    for m in read_jsonl(path):
        try:
            e = decode_event(m.value)
        except EventError:
            invalid += 1
            continue
        seen_types.add(e.event_type)
        assert m.topic == topic_of(e.event_type)
        assert m.key == getattr(e.payload, KEY_FIELD[e.event_type])
    assert seen_types == set(EVENT_TYPES)
    expected_invalid = sum(k["count"] for name, k in truth["anomalies"]["malformed"]["by_kind"].items()
                           if k["dead_letter_reason"] != "future_occurred_at")
    assert invalid == expected_invalid


BAD = [
    # (change, value, reason, field named)
    ("payload.region", "99", "invalid_field", "payload.region"),
    ("payload.industry", "Z", "invalid_field", "payload.industry"),
    ("payload.occupation", "7", "invalid_field", "payload.occupation"),
    ("payload.openings", "three", "invalid_field", "payload.openings"),
    ("payload.openings", 0, "invalid_field", "payload.openings"),
    ("payload.wage_amount", -5, "invalid_field", "payload.wage_amount"),
    ("payload.vacancy_id", "V-850101-1234567", "pii_detected", "payload.vacancy_id"),
    ("payload.vacancy_id", "V12", "invalid_field", "payload.vacancy_id"),
    ("payload.region", DELETE, "missing_field", "payload.region"),
    ("occurred_at", "2026-03-02T09:15:00", "invalid_field", "occurred_at"),
    ("occurred_at", "yesterday", "invalid_field", "occurred_at"),
    ("occurred_at", "1970-01-01T00:00:00Z", "invalid_field", "occurred_at"),
    ("source", "naver", "invalid_field", "source"),
    ("event_id", "not-an-id", "invalid_field", "event_id"),
    ("payload.full_name", "홍길동", "invalid_field", "payload.full_name"),
    ("payload.skills", ["SK99"], "invalid_field", "payload.skills.0"),
    ("payload.title", "용접공 문의 010-1234-5678", "pii_detected", "payload.title"),
    ("payload.title", "담당자 850101-1234567", "pii_detected", "payload.title"),
    ("payload.title", "이력서는 hr@example.co.kr 로", "pii_detected", "payload.title"),
    ("payload.title", "연락 02-123-4567", "pii_detected", "payload.title"),
    ("schema_version", 2, "unsupported_schema_version", "schema_version"),
    ("event_type", "vacancy.reposted", "unknown_event_type", "event_type"),
]


@pytest.mark.parametrize(("path", "value", "reason", "field"), BAD, ids=[f"{b[0]}={b[1]!r}" for b in BAD])
def test_bad_input_names_field_value_and_rule(path, value, reason, field):
    with pytest.raises(EventError) as info:
        decode_event(with_change(path, value))
    err = info.value
    assert err.reason == reason
    assert err.field == field
    assert err.rule
    assert err.value
    assert field in str(err)
    if reason == "pii_detected":
        assert find_pii(err.value) is None, f"personal data leaked into the error: {err.value}"


def test_an_integer_beyond_64_bits_is_named_not_a_crash():
    raw = orjson.dumps(VACANCY).replace(b'"openings":3', b'"openings":1180591620717411303424')
    with pytest.raises(EventError) as info:
        decode_event(raw)
    assert (info.value.reason, info.value.field, info.value.value) == (
        "invalid_field", "payload.openings", "1180591620717411303424")


@pytest.mark.parametrize("raw", [b"{not json", b"", b"[1, 2]", b'"text"', b"null"])
def test_not_an_event(raw):
    with pytest.raises(EventError) as info:
        decode_event(raw)
    assert info.value.reason in ("malformed_json", "not_an_object")
    assert info.value.field == "(message)"


def test_update_must_change_something():
    doc = {**VACANCY, "event_type": "vacancy.updated",
           "payload": {k: VACANCY["payload"][k] for k in ("vacancy_id", "employer_id", "region", "industry",
                                                           "occupation", "size_band")}}
    with pytest.raises(EventError) as info:
        decode_event(orjson.dumps(doc))
    assert "openings, wage_amount or deadline" in info.value.rule


@pytest.mark.parametrize("text", ["850101-1234567", "8501011234567", "010-1234-5678", "01012345678",
                                  "+82 10 1234 5678", "031-123-4567", "1588-1234", "a.b@c.kr", "kim ＠ naver.com"])
def test_pii_patterns_found_and_redacted(text):
    assert find_pii(f"문의: {text}") is not None
    assert find_pii(redact(f"문의: {text}")) is None


@pytest.mark.parametrize("text", ["용접공 3명 모집", "주 40시간, 월 320만원", "2026년 3월 2일 시작", "KSCO 742",
                                  "연봉 3,600만원 / 시급 12,000원"])
def test_ordinary_text_is_not_pii(text):
    assert find_pii(text) is None


def test_code_lists_have_korean_and_english_labels():
    assert len(code_list("regions")) == 17
    assert code_list("industries").values() == tuple("ABCDEFGHIJKLMNOPQRSTU")
    for name in CODE_LIST_NAMES:
        cl = code_list(name)
        assert len(cl) > 0
        for c in cl:
            assert c.ko and c.en, (name, c.code)
        assert len(set(cl.values())) == len(cl)


def test_json_schema_files_are_current():
    assert stale_files() == [], "run `lmis schemas export`"
