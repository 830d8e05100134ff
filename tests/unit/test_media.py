import pytest

from recordings_service.errors import UnsupportedMediaType
from recordings_service.media import HEAD, MediaSniffer
from tests.audio import FORMATS, wav_noise


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
