"""The audio side of a redaction: G.711 as the reference coder writes it, spans merged,
the rewrite the same however the audio streams past, and requests parsed or refused."""

from __future__ import annotations

import struct
import warnings
from itertools import pairwise
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recordings_service import redaction
from recordings_service.errors import BadRequest
from recordings_service.redaction_audio import (
    Filler,
    Layout,
    Span,
    _alaw,
    _ulaw,
    byte_ranges,
    layout_of,
    merged,
)
from tests.audio import riff_wav

EVERY_SAMPLE = np.arange(-32768, 32768, dtype=np.int32).astype(np.int16)


@pytest.mark.parametrize(("ours", "reference"), [(_ulaw, "lin2ulaw"), (_alaw, "lin2alaw")])
def test_g711_is_the_reference_coder_for_every_sample(ours: Any, reference: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        audioop = pytest.importorskip("audioop")  # in the standard library until 3.13
    expected = getattr(audioop, reference)(EVERY_SAMPLE.astype("<i2").tobytes(), 2)
    assert ours(EVERY_SAMPLE).tobytes() == expected


def test_overlapping_and_touching_spans_merge_per_channel() -> None:
    spans = [Span(500, 600), Span(550, 700), Span(700, 800), Span(0, 10, 1), Span(5, 20, 1),
             Span(5, 20, 0), Span(900, 950)]
    assert merged(spans) == [Span(0, 20, 1), Span(5, 20, 0), Span(500, 800),
                             Span(900, 950)]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2000), st.integers(1, 300),
                          st.sampled_from([None, 0, 1])), min_size=1, max_size=8))
def test_merging_changes_no_sample_that_is_covered(raw: list[tuple[int, int, Any]]) -> None:
    spans = [Span(start, start + length, channel) for start, length, channel in raw]
    covered = {(ms, s.channel) for s in spans for ms in range(s.start_ms, s.end_ms)}
    assert {(ms, s.channel) for s in merged(spans)
            for ms in range(s.start_ms, s.end_ms)} == covered


def stereo16(frames: int) -> tuple[bytes, Layout]:
    payload = struct.pack(f"<{2 * frames}h", *range(2 * frames))
    audio = riff_wav(payload, channels=2, byte_rate=32000, block_align=4)
    layout = layout_of(audio[:44], 44)
    assert layout is not None
    return audio, layout


def rewritten(audio: bytes, layout: Layout, spans: list[Span], fill: str,
              cuts: list[int]) -> bytes:
    filler = Filler(layout, spans, fill, len(audio))
    edges = [0, *sorted(cuts), len(audio)]
    out = b"".join(filler.feed(audio[a:b]) for a, b in pairwise(edges))
    return out + filler.finish()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 16_044), max_size=12), st.sampled_from(["silence", "tone"]))
def test_the_rewrite_is_the_same_however_the_audio_streams_past(cuts: list[int],
                                                                 fill: str) -> None:
    audio, layout = stereo16(4000)  # half a second at 8 kHz
    spans = [Span(10, 60, 0), Span(100, 130), Span(400, 500, 1)]
    whole = rewritten(audio, layout, spans, fill, [])
    assert len(whole) == len(audio)
    assert rewritten(audio, layout, spans, fill, cuts) == whole


def test_only_the_span_and_channel_change() -> None:
    audio, layout = stereo16(4000)
    out = rewritten(audio, layout, [Span(10, 20, 1)], "silence", [])
    before = struct.unpack("<8000h", audio[44:])
    after = struct.unpack("<8000h", out[44:])
    changed = [i for i, (a, b) in enumerate(zip(before, after, strict=True)) if a != b]
    # Frames 80 to 159 (10 to 20 ms at 8 kHz), right channel: odd samples 161 to 319.
    assert changed == [i for i in range(161, 320, 2)]
    assert byte_ranges(layout, [Span(10, 20, 1)], len(audio)) == [(44 + 320, 44 + 640)]


@settings(max_examples=200, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8)
                    | st.floats(allow_nan=False),
                    lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.sampled_from(["spans", "reason", "fill", "start_ms",
                                                       "end_ms", "channel", "x"]), inner,
                                      max_size=5), max_leaves=12))
def test_any_request_body_is_parsed_or_refused_with_a_400(body: Any) -> None:
    try:
        spans, reason, fill = redaction.parse_request(body)
    except BadRequest as exc:
        assert exc.reason == "invalid_redaction"
        return
    assert spans and reason in redaction.REASONS and fill in redaction.FILLS
    assert all(0 <= s.start_ms < s.end_ms for s in spans)
