"""A call's waveform: peak levels measured from the decoded audio as it streams in."""

from __future__ import annotations

import os
import struct
import threading
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
    # GSM 6.10 in stereo is not a thing PBXs write, nor libsndfile reads.
    assert levels_of(riff_wav(bytes(650), format_tag=49, channels=2, byte_rate=1625,
                              block_align=65, bits=0)) is None


def test_gsm_is_decoded_a_level_each_tenth_of_a_second() -> None:
    tone = levels_of(fixture("tone.gsm.wav"))  # one second of 440 Hz at half scale (sox)
    assert tone is not None and len(tone) == 10
    assert all(120 <= level <= 140 for level in tone)
    assert levels_of(fixture("silence.gsm.wav")) == bytes(10)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(0, 1700), max_size=8))
def test_how_a_gsm_upload_is_cut_changes_its_levels_by_one_at_most(cuts: list[int]) -> None:
    audio = fixture("tone.gsm.wav")
    whole, cut = levels_of(audio), levels_of(audio, cuts)
    assert whole is not None and cut is not None and len(cut) == len(whole)
    assert max(abs(a - b) for a, b in zip(whole, cut, strict=True)) <= 1


@settings(max_examples=50, deadline=None)
@given(st.binary(min_size=0, max_size=2000))
def test_gsm_blocks_of_any_bytes_give_levels_or_none_never_an_error(blocks: bytes) -> None:
    audio = riff_wav(blocks, format_tag=49, byte_rate=1625, block_align=65, bits=0)
    levels = levels_of(audio)
    assert levels is None or all(0 <= level <= 255 for level in levels)


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


def silence_of(audio: bytes) -> str | None:
    meter = PeakMeter()
    meter.feed(audio)
    meter.levels()
    return waveform.silence_check(meter.channel_peaks())


@pytest.mark.parametrize(("audio", "check"), [
    (wav_tone(1.0), "ok"),
    (pcm16([0, 20000] * 8000, channels=2), "one_sided"),  # the left side never recorded
    (pcm16([15000, -15000] * 8000, channels=2), "ok"),
    (pcm16([3, -2] * 16000), "silent"),  # digital near-silence
    (pcm16([300, 20000, -250, -20000] * 4000, channels=2), "one_sided"),  # a hissing line
    # mu-law and A-law stereo: the silent byte on one channel only
    (riff_wav(bytes([0xFF, 0x10]) * 8000, format_tag=7, channels=2, byte_rate=16000,
              block_align=2, bits=8), "one_sided"),
    (riff_wav(bytes([0x2A, 0xD5]) * 8000, format_tag=6, channels=2, byte_rate=16000,
              block_align=2, bits=8), "one_sided"),
    (riff_wav(struct.pack("<3200f", *([0.0, 0.4] * 1600)), format_tag=3, channels=2,
              byte_rate=64000, block_align=8, bits=32), "one_sided"),
    (fixture("silence.gsm.wav"), "silent"),
    (fixture("tone.gsm.wav"), "ok"),
    (fixture("tone.mp3"), None),  # not decoded here: not measured
])
def test_a_channel_silent_throughout_is_found(audio: bytes, check: str | None) -> None:
    assert silence_of(audio) == check


def test_one_loud_moment_anywhere_makes_a_channel_heard() -> None:
    quiet = [0, 12000] * 80_000  # ten seconds of stereo at 8 kHz
    quiet[2 * 40_000] = 9000  # one left sample, five seconds in
    assert silence_of(pcm16(quiet, channels=2)) == "ok"


async def test_gsm_is_decoded_off_the_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    """GSM 6.10 costs about 0.1 s of decoding per 64 KiB chunk (bench/decode.py): an upload
    must not hold the loop for it."""
    decoded_on: list[int] = []
    decode = waveform._GsmDecoder.decode

    def watched(self: waveform._GsmDecoder, blocks: bytes) -> None:
        decoded_on.append(threading.get_ident())
        decode(self, blocks)

    monkeypatch.setattr(waveform._GsmDecoder, "decode", watched)
    one_second = fixture("tone.gsm.wav")
    data = one_second.index(b"data") + 8
    blocks = one_second[data:data + 25 * 65] * 4  # four seconds
    audio = bytearray(one_second[:data] + blocks)
    audio[data - 4:data] = struct.pack("<I", len(blocks))
    meter = PeakMeter()
    for at in range(0, len(audio), 400):
        await meter.feed_async(bytes(audio[at:at + 400]))
    levels = meter.levels()  # the last few blocks, decoded where the levels are asked for
    assert levels is not None and len(levels) == 40
    loop_thread = threading.get_ident()
    assert len(decoded_on) >= 3 and loop_thread not in decoded_on[:-1]
