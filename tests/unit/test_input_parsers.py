"""The parsers every request goes through, tried with generated input: each answers with
a value or a 400 naming the problem, never another exception."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recordings_service.api.handlers.common import parse_json_object
from recordings_service.errors import BadRequest, RangeNotSatisfiable
from recordings_service.pagination import decode_cursor, encode_cursor
from recordings_service.ranges import parse_range
from recordings_service.times import parse_time, rfc3339

aware_times = st.datetimes(min_value=datetime(1900, 1, 2), max_value=datetime(9999, 12, 30),
                           timezones=st.sampled_from([UTC, timezone(timedelta(hours=2)),
                                                      timezone(timedelta(hours=-9, minutes=-30))]))


@given(aware_times)
def test_every_rfc_3339_time_parses_to_the_same_instant_in_utc(moment: datetime) -> None:
    text = moment.isoformat()
    parsed = parse_time(text, "t")
    assert parsed == moment and parsed.tzinfo == UTC
    assert parse_time(rfc3339(parsed), "t") == parsed


def _refusal() -> str:
    try:
        parse_time("never", "t")
    except BadRequest as refused:
        return refused.detail
    raise AssertionError("accepted")


_REFUSAL = _refusal()


@given(st.text(max_size=40))
@settings(max_examples=500)
def test_any_text_is_a_utc_time_or_a_400(text: str) -> None:
    try:
        parsed = parse_time(text, "t")
    except BadRequest as refused:
        assert refused.reason == "invalid_metadata"
        assert refused.detail == _REFUSAL  # the same words whatever came: no echo
        return
    assert parsed.tzinfo == UTC


@given(st.text(max_size=60), st.integers(0, 10**12))
@settings(max_examples=500)
def test_any_range_header_is_a_range_inside_the_size_none_or_a_416(header: str,
                                                                   size: int) -> None:
    try:
        byte_range = parse_range(header, size)
    except RangeNotSatisfiable:
        return
    if byte_range is not None:
        assert 0 <= byte_range.start <= byte_range.end < size


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(),
                    lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
                    max_leaves=30))
def test_any_json_value_is_an_object_of_storable_values_or_a_400(value: object) -> None:
    raw = json.dumps(value).encode()
    try:
        parsed = parse_json_object(raw, "invalid_json", "the body")
    except BadRequest as refused:
        assert refused.reason == "invalid_json"
        return
    assert isinstance(parsed, dict)
    json.dumps(parsed).encode("utf-8")  # storable: encodes


@given(st.binary(max_size=200))
@settings(max_examples=500)
def test_any_bytes_are_a_json_object_or_a_400(raw: bytes) -> None:
    with contextlib.suppress(BadRequest):
        assert isinstance(parse_json_object(raw, "invalid_json", "the body"), dict)


@given(st.text(max_size=80))
@settings(max_examples=500)
def test_any_cursor_is_one_we_gave_or_a_400(cursor: str) -> None:
    try:
        position = decode_cursor(cursor)
    except BadRequest as refused:
        assert refused.reason == "invalid_cursor"
        return
    if position is not None:
        assert position[0].tzinfo is not None and isinstance(position[1], str)


@given(aware_times, st.text(max_size=20))
def test_cursors_round_trip(moment: datetime, key: str) -> None:
    assert decode_cursor(encode_cursor(moment, key)) == (moment, key)


@pytest.mark.parametrize("digits", ["\u00b2", "\u0663", "1" * 5000])
def test_absurd_digit_strings_in_a_range_are_answered(digits: str) -> None:
    try:
        assert parse_range(f"bytes={digits}-", 100) is None
    except RangeNotSatisfiable:
        assert digits == "1" * 5000  # a start far past the end


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                max_size=5),
    max_leaves=20)
_record_values = st.fixed_dictionaries({}, optional={
    "call_id": st.text(max_size=300), "started_at": st.text(max_size=40) | aware_times.map(
        datetime.isoformat), "answered_at": st.none() | aware_times.map(datetime.isoformat),
    "ended_at": aware_times.map(datetime.isoformat) | _json, "direction": _json,
    "expect_recording": _json, "source": _json, "phone_number": st.text(max_size=70),
    "queue": _json})


@settings(max_examples=300)
@given(st.one_of(_json, _record_values, st.lists(_record_values, max_size=5)))
def test_a_call_record_batch_is_taken_whole_or_refused_with_a_400(body: object) -> None:
    from recordings_service import calls

    try:
        records = calls.parse_batch(body)
    except BadRequest as refused:
        assert refused.reason == "invalid_call_record"
        return
    for record in records:
        assert record["call_id"] and record["source"]
        assert record["started_at"] <= record["ended_at"]
        assert record["answered_at"] is None or (
            record["started_at"] <= record["answered_at"] <= record["ended_at"])


_variables = st.dictionaries(
    st.sampled_from(["uuid", "direction", "start_uepoch", "start_epoch", "answer_uepoch",
                     "end_uepoch", "end_epoch", "caller_id_number", "cc_agent", "cc_queue"]),
    st.text(max_size=24) | st.sampled_from(["0", "1795510800", "1795510800250000", "%zz"])
    | _json, max_size=10)


@settings(max_examples=300)
@given(st.one_of(_json, st.fixed_dictionaries({"variables": _variables},
                                              optional={"switchname": _json})),
       st.binary(max_size=40), st.sampled_from(["application/json",
                                               "application/x-www-form-urlencoded", ""]))
def test_a_freeswitch_cdr_is_a_call_record_or_a_400(cdr: object, raw: bytes,
                                                    content_type: str) -> None:
    from recordings_service import freeswitch_cdr

    for body in (raw, b"cdr=" + raw):
        with contextlib.suppress(BadRequest):
            freeswitch_cdr.decode_body(body, content_type)
    try:
        record = freeswitch_cdr.to_record(cdr, "uuid", "cc_agent", "cc_queue", None)
    except BadRequest as refused:
        assert refused.reason == "invalid_call_record"
        return
    assert record["call_id"] and record["started_at"] <= record["ended_at"]
