"""Metadata from recordings' file names (upload-watch --pattern)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recordings_service.uploader.names import (
    PatternError,
    compile_pattern,
    fields_from_name,
    parse_leg_names,
    parse_time,
)


@pytest.mark.parametrize(("pattern", "name", "fields"), [
    ("{call_id}-{started_at}.wav", "1764000000.42-20261124-091500.wav",
     {"call_id": "1764000000.42", "started_at": "2026-11-24T09:15:00Z"}),
    ("dump-{started_at}-{ignore}.wav", "dump-2026-11-26-07-27-53-dec.wav",
     {"started_at": "2026-11-26T07:27:53Z"}),
    ("{started_at}_{agent_id}_{call_id}.wav", "1764000000_A-7_abc-def.wav",
     {"started_at": "2025-11-24T16:00:00Z", "agent_id": "A-7", "call_id": "abc-def"}),
    ("q-{queue}-{call_id}.wav", "q-billing-x1.wav", {"queue": "billing", "call_id": "x1"}),
])
def test_names_give_their_fields(pattern: str, name: str, fields: dict[str, str]) -> None:
    assert fields_from_name(compile_pattern(pattern), name) == fields


BARESIP_LEGS = {"dec": "caller", "enc": "callee"}  # what the answering side heard, said


@pytest.mark.parametrize(("pattern", "name", "fields"), [
    # Both files of one call name one call: the call id is the name without the leg.
    ("dump-{started_at}-{leg}.wav", "dump-2026-11-26-07-27-53-dec.wav",
     {"started_at": "2026-11-26T07:27:53Z", "leg": "caller",
      "call_id": "dump-2026-11-26-07-27-53"}),
    ("dump-{started_at}-{leg}.wav", "dump-2026-11-26-07-27-53-enc.wav",
     {"started_at": "2026-11-26T07:27:53Z", "leg": "callee",
      "call_id": "dump-2026-11-26-07-27-53"}),
    ("{leg}_{ignore}.wav", "dec_1764000000.42.wav", {"leg": "caller", "call_id": "1764000000.42"}),
    ("{call_id}-{leg}.wav", "abc-mixed.wav", {"call_id": "abc", "leg": "mixed"}),
])
def test_a_leg_in_the_name_names_its_side_of_one_call(pattern: str, name: str,
                                                      fields: dict[str, str]) -> None:
    assert fields_from_name(compile_pattern(pattern, BARESIP_LEGS), name) == fields


def test_a_leg_no_name_maps_is_refused_and_leg_names_are_checked() -> None:
    with pytest.raises(PatternError):
        fields_from_name(compile_pattern("{call_id}-{leg}.wav", BARESIP_LEGS), "abc-left.wav")
    for bad in ("dec", "dec=left", "=caller"):
        with pytest.raises(PatternError):
            parse_leg_names(bad)
    assert parse_leg_names("r=caller, t=callee") == {"r": "caller", "t": "callee"}


def test_a_name_that_does_not_match_gives_nothing() -> None:
    pattern = compile_pattern("{call_id}-{started_at}.wav")
    assert fields_from_name(pattern, "notes.txt") is None
    assert fields_from_name(pattern, "abc.wav") is None


@pytest.mark.parametrize("pattern", ["{callid}.wav", "{call_id}{call_id}.wav", "{call_id.wav",
                                     "{call_id}}.wav"])
def test_a_bad_pattern_is_refused_with_why(pattern: str) -> None:
    with pytest.raises(PatternError):
        compile_pattern(pattern)


@pytest.mark.parametrize("text", ["20261124-091500", "20261124T091500Z", "2026-11-24-09-15-00",
                                  "2026-11-24_09-15-00", "20261124091500", "1795511700",
                                  "2026-11-24T11:15:00+02:00"])
def test_the_time_forms_file_names_use(text: str) -> None:
    assert parse_time(text) == "2026-11-24T09:15:00Z"


@given(st.text(max_size=40))
def test_any_name_either_matches_or_not_and_never_crashes(name: str) -> None:
    pattern = compile_pattern("{call_id}-{started_at}.wav")
    try:
        fields = fields_from_name(pattern, name)
    except PatternError:
        return
    if fields is not None:
        assert name.startswith(fields["call_id"]) and fields["started_at"].endswith("Z")


@given(st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1)),
       st.sampled_from(["%Y%m%d-%H%M%S", "%Y-%m-%d-%H-%M-%S", "%Y%m%dT%H%M%SZ"]))
def test_a_written_time_reads_back(at: datetime, form: str) -> None:
    assert parse_time(at.strftime(form)) == at.replace(microsecond=0, tzinfo=UTC).strftime(
        "%Y-%m-%dT%H:%M:%SZ")
