"""Who heard a call, from the audit entries of its audio accesses."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from recordings_service.listenings import listenings, merged

SIZE = 1_000


def _stream(at: str, actor: str = "sanna", purpose: str = "training", rng: str | None = None,
            request_id: str = "r", method: str = "GET", outcome: str = "allowed",
            ) -> dict[str, Any]:
    return {"action": "stream", "outcome": outcome, "at": at, "actor": actor,
            "purpose": purpose, "request_id": request_id,
            "detail": {"method": method, "range": rng}}


def test_requests_close_together_are_one_listening_and_their_ranges_merge() -> None:
    found = listenings([
        _stream("2026-11-24T10:00:00Z", rng="bytes=0-99", request_id="a"),
        _stream("2026-11-24T10:01:00Z", rng="bytes=50-199", request_id="b"),
        _stream("2026-11-24T10:02:00Z", rng="bytes=500-", request_id="c"),
        _stream("2026-11-24T10:02:30Z", method="HEAD", request_id="d"),  # sends no audio
        _stream("2026-11-24T10:03:00Z", rng="bytes=5000-", request_id="e"),  # 416
        _stream("2026-11-24T10:04:00Z", outcome="denied", request_id="f"),
    ], SIZE)
    assert len(found) == 1
    assert found[0].ranges == [(0, 199), (500, 999)] and found[0].requests == 5


def test_a_stream_the_client_left_counts_only_what_it_was_sent() -> None:
    cut = {"action": "stream_cut", "outcome": "allowed", "at": "2026-11-24T10:00:01Z",
           "actor": "sanna", "purpose": "training", "request_id": "a",
           "detail": {"requested": [0, 999], "served": [0, 299]}}
    found = listenings([_stream("2026-11-24T10:00:00Z", request_id="a"), cut], SIZE)
    assert found[0].ranges == [(0, 299)]


def test_another_person_purpose_or_a_long_pause_is_another_listening() -> None:
    found = listenings([
        _stream("2026-11-24T10:00:00Z", rng="bytes=0-9", request_id="a"),
        _stream("2026-11-24T10:05:00Z", actor="maija", purpose="legal_protection",
                rng="bytes=0-9", request_id="b"),
        _stream("2026-11-24T11:00:00Z", rng="bytes=10-19", request_id="c"),
    ], SIZE)
    assert [(x.actor, x.ranges) for x in found] == [
        ("sanna", [(10, 19)]), ("maija", [(0, 9)]), ("sanna", [(0, 9)])]  # the latest first


ranges = st.lists(st.tuples(st.integers(0, 500), st.integers(0, 500)).map(
    lambda t: (min(t), max(t))), max_size=20)


@given(ranges)
def test_merging_keeps_every_byte_and_no_other(parts: list[tuple[int, int]]) -> None:
    out = merged(parts)
    covered = {b for start, end in parts for b in range(start, end + 1)}
    assert {b for start, end in out for b in range(start, end + 1)} == covered
    assert all(a[1] + 1 < b[0] for a, b in pairwise(out))  # disjoint, apart
