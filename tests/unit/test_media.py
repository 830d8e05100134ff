import contextlib
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recordings_service.errors import Unprocessable, UnsupportedMediaType
from recordings_service.media import HEAD, MediaSniffer
from tests.audio import FORMATS, fixture, riff_wav, wav_noise


def sniff(data: bytes, chunk: int = 4096) -> tuple[str, float | None]:
    sniffer = MediaSniffer()
    for i in range(0, len(data), chunk):
        sniffer.feed(data[i : i + chunk])
    info = sniffer.finish()
    return info.content_type, info.duration_seconds


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_each_container_and_its_duration(fmt: str) -> None:
    content_type, make, duration = FORMATS[fmt]
    detected, seconds = sniff(make())
    assert detected == content_type
    assert seconds == pytest.approx(duration, abs=0.05)


def test_long_wav_duration_comes_through_the_sparse_view() -> None:
    data = wav_noise(3 * HEAD)  # far larger than what the sniffer keeps
    assert sniff(data, chunk=65536) == ("audio/wav", pytest.approx(len(data) / 16000, abs=0.01))


def test_rejects_as_soon_as_the_head_is_not_audio() -> None:
    sniffer = MediaSniffer()
    with pytest.raises(UnsupportedMediaType):
        sniffer.feed(b"%PDF-1.7" + bytes(100))


def test_a_truncated_header_is_not_audio() -> None:
    with pytest.raises(UnsupportedMediaType):
        sniff(b"fLaC" + bytes(70))


def test_a_wav_that_claims_4_gib_gets_the_duration_of_its_bytes() -> None:
    data = riff_wav(bytes(32_000), data_size=0xFFFFFFF0, riff_size=0xFFFFFFF8)
    assert sniff(data) == ("audio/wav", 2.0)


@pytest.mark.parametrize("unknown", [0, 0xFFFFFFFF])
def test_a_wav_still_being_written_is_accepted_with_its_true_duration(unknown: int) -> None:
    data = riff_wav(bytes(24_000), data_size=unknown, riff_size=unknown)
    assert sniff(data) == ("audio/wav", 1.5)


@pytest.mark.parametrize(("tag", "byte_rate", "align", "bits", "seconds"), [
    (0x31, 1625, 65, 0, 4.0),   # GSM 6.10 (WAV49), as Asterisk writes it
    (7, 8000, 1, 8, 4.0),       # mu-law
    (6, 8000, 1, 8, 4.0),       # A-law
    (1, 32000, 4, 16, 4.0),     # stereo PCM: agent and customer on two channels
])
def test_telephony_wav_formats_get_their_real_duration(
        tag: int, byte_rate: int, align: int, bits: int, seconds: float) -> None:
    data = riff_wav(bytes(int(byte_rate * seconds)), format_tag=tag, byte_rate=byte_rate,
                    block_align=align, bits=bits, channels=2 if align == 4 else 1,
                    extra_chunks=b"fact" + struct.pack("<II", 4, 32000) if tag == 0x31 else b"")
    assert sniff(data) == ("audio/wav", seconds)


def test_a_wav_made_of_empty_chunks_is_refused_early() -> None:
    data = riff_wav(bytes(1000), extra_chunks=b"JUNK\x00\x00\x00\x00" * 130_000)
    with pytest.raises(Unprocessable) as refused:
        sniff(data, chunk=65536)
    assert refused.value.reason == "invalid_audio"


def test_a_flac_made_of_empty_metadata_blocks_is_refused_early() -> None:
    flac = fixture("tone.flac")
    streaminfo_end = 4 + 4 + 34
    padding = b"\x01\x00\x00\x00" * 60_000  # PADDING blocks of length 0, none "last"
    first = bytes([flac[4] & 0x7F])  # STREAMINFO no longer the last block
    data = flac[:4] + first + flac[5:streaminfo_end] + padding + flac[streaminfo_end:]
    with pytest.raises(Unprocessable):
        sniff(data, chunk=65536)


def test_a_flac_whose_streaminfo_claims_years_is_refused() -> None:
    flac = bytearray(fixture("tone.flac"))
    # STREAMINFO bytes 18..25: rate(20) channels(3) bits(5) total samples(36).
    packed = int.from_bytes(flac[18:26], "big") | (2**36 - 1)
    flac[18:26] = packed.to_bytes(8, "big")
    with pytest.raises(Unprocessable):
        sniff(bytes(flac))


@given(st.lists(st.tuples(st.binary(min_size=4, max_size=4), st.binary(max_size=40)),
                max_size=20),
       st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1), st.integers(0, 50_000),
       st.integers(0, 2**32 - 1))
@settings(max_examples=300, deadline=None)
def test_any_wav_header_is_accepted_with_at_most_its_bytes_or_refused(
        chunks: list[tuple[bytes, bytes]], riff_size: int, data_size: int, payload: int,
        byte_rate: int) -> None:
    extra = b"".join(cid + struct.pack("<I", len(body)) + body + b"\x00" * (len(body) & 1)
                     for cid, body in chunks if cid not in (b"data", b"fmt "))
    data = riff_wav(bytes(payload), riff_size=riff_size, data_size=data_size,
                    byte_rate=byte_rate, extra_chunks=extra)
    try:
        _, seconds = sniff(data)
    except (UnsupportedMediaType, Unprocessable):
        return
    assert byte_rate > 0 and seconds is not None
    assert seconds <= payload / byte_rate + 0.001


@given(st.binary(max_size=3000), st.sampled_from([b"RIFF\x00\x00\x00\x00WAVE", b"fLaC",
                                                   b"OggS", b"ID3", b"\xff\xfb"]))
@settings(max_examples=300, deadline=None)
def test_arbitrary_bytes_behind_an_audio_signature_never_crash_the_sniffer(
        body: bytes, signature: bytes) -> None:
    with contextlib.suppress(UnsupportedMediaType, Unprocessable):
        sniff(signature + body)
