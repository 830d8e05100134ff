"""A call's waveform: peak levels measured from the decoded audio as it streams in."""

from __future__ import annotations

import os
import struct
from itertools import pairwise

import pytest
from cryptography.exceptions import InvalidTag
from hypothesis import given, settings
from hypothesis import strategies as st

from recordings_service import waveform
from recordings_service.waveform import PeakMeter, open_sealed, resampled, seal
from tests.audio import fixture, riff_wav, wav_tone


def levels_of(audio: bytes, cuts: list[int] | None = None) -> bytes | None:
    meter = PeakMeter()
    edges = [0, *sorted(cuts or []), len(audio)]
    for start, end in pairwise(edges):
        meter.feed(audio[start:end])
    return meter.levels()


def pcm16(samples: list[int], channels: int = 1, rate: int = 8000) -> bytes:
    return riff_wav(struct.pack(f"<{len(samples)}h", *samples), channels=channels, rate=rate,
                    byte_rate=rate * 2 * channels, block_align=2 * channels)


def test_a_tone_gives_its_level_every_tenth_of_a_second() -> None:
    levels = levels_of(wav_tone(2.0))  # amplitude 12,000 of 32,767
    assert levels is not None and len(levels) == 20
    assert all(abs(level - 12000 * 255 // 32767) <= 2 for level in levels)


def test_silence_then_a_loud_second_shows_where_the_sound_is() -> None:
    levels = levels_of(pcm16([0] * 8000 + [32767, -32768] * 4000))
    assert levels == bytes(10) + bytes([255]) * 10


def test_the_loudest_channel_counts() -> None:
    stereo = [0, 20000] * 800  # left silent, right loud: 0.1 s
    [level] = levels_of(pcm16(stereo, channels=2)) or b""
    assert abs(level - 20000 * 255 // 32767) <= 2  # levels are to 1/128 of full scale


@pytest.mark.parametrize(("tag", "silent", "loudest"), [(7, 0xFF, 0x00), (6, 0xD5, 0x2A)])
def test_mu_law_and_a_law_are_decoded(tag: int, silent: int, loudest: int) -> None:
    audio = riff_wav(bytes([silent]) * 800 + bytes([loudest]) * 800, format_tag=tag,
                     byte_rate=8000, block_align=1, bits=8)
    assert levels_of(audio) == bytes([0, 255])


def test_24_bit_and_float_samples_are_decoded() -> None:
    half = (0x400000).to_bytes(3, "little")  # half of full scale
    audio = riff_wav(b"\x00\x00\x00" * 800 + half * 800, byte_rate=24000, block_align=3,
                     bits=24)
    assert levels_of(audio) == bytes([0, 128])
    floats = riff_wav(struct.pack("<1600f", *([0.0] * 800 + [-0.5] * 800)), format_tag=3,
                      byte_rate=32000, block_align=4, bits=32)
    assert levels_of(floats) == bytes([0, 127])


def test_formats_not_decoded_here_have_no_waveform() -> None:
    assert levels_of(fixture("tone.mp3")) is None
    assert levels_of(riff_wav(bytes(650), format_tag=49, byte_rate=1625, block_align=65,
                              bits=0)) is None  # GSM 6.10


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 4000), max_size=8))
def test_how_the_upload_is_cut_into_chunks_changes_nothing(cuts: list[int]) -> None:
    audio = wav_tone(0.45, frequency=300)
    assert levels_of(audio, cuts) == levels_of(audio)


def test_a_very_long_call_keeps_a_bounded_waveform(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(waveform, "MAX_LEVELS", 8)
    meter = PeakMeter()
    meter.feed(pcm16([1000] * 800 * 20 + [30000] * 800))  # 2.1 s
    levels = meter.levels()
    assert levels is not None and len(levels) <= 8
    assert abs(levels[-1] - 30000 * 255 // 32767) <= 2
    assert meter.seconds_per_level == 0.4


def test_sealed_under_the_recordings_key_and_bound_to_it() -> None:
    dek = os.urandom(32)
    sealed = seal(dek, "rec_a", b"\x01\x02\x03", 0.1)
    assert b"\x01\x02\x03" not in sealed
    assert open_sealed(dek, "rec_a", sealed) == (0.1, b"\x01\x02\x03")
    for key, rid, data in ((os.urandom(32), "rec_a", sealed), (dek, "rec_b", sealed),
                           (dek, "rec_a", sealed[:-1] + bytes([sealed[-1] ^ 1]))):
        with pytest.raises(InvalidTag):
            open_sealed(key, rid, data)


def test_resampling_keeps_each_peak() -> None:
    levels = bytes([0, 0, 9, 0, 0, 0, 0, 200, 0, 0])
    assert resampled(levels, 5) == [0, 9, 0, 200, 0]
    assert resampled(levels, 20) == list(levels)
