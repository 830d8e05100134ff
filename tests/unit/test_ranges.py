import pytest

from recordings_service.errors import RangeNotSatisfiable
from recordings_service.ranges import ByteRange, parse_range

SIZE = 1000


@pytest.mark.parametrize(("header", "expected"), [
    (None, None),
    ("bytes=0-0", ByteRange(0, 0)),
    ("bytes=0-", ByteRange(0, 999)),
    ("bytes=10-19", ByteRange(10, 19)),
    ("bytes=990-5000", ByteRange(990, 999)),
    ("bytes=-1", ByteRange(999, 999)),
    ("bytes=-1000", ByteRange(0, 999)),
    ("bytes=-5000", ByteRange(0, 999)),
    ("Bytes=5-6", ByteRange(5, 6)),
    (" bytes=5-6 ", ByteRange(5, 6)),
    # ignored, so the whole body is sent
    ("bytes=5-1", None),
    ("bytes=a-b", None),
    ("bytes=1-2,4-5", None),
    ("pages=1-2", None),
    ("bytes=-", None),
    ("bytes", None),
    ("bytes=1--2", None),
    ("bytes=+1-2", None),
    ("bytes=\u0661-\u0662", None),  # Arabic-Indic digits are not DIGIT
])
def test_parse_range(header: str | None, expected: ByteRange | None) -> None:
    assert parse_range(header, SIZE) == expected


@pytest.mark.parametrize("header", ["bytes=1000-", "bytes=1000-1001", "bytes=-0"])
def test_unsatisfiable(header: str) -> None:
    with pytest.raises(RangeNotSatisfiable) as info:
        parse_range(header, SIZE)
    assert info.value.size == SIZE


def test_any_range_of_an_empty_body_is_unsatisfiable() -> None:
    for header in ("bytes=0-", "bytes=-5"):
        with pytest.raises(RangeNotSatisfiable):
            parse_range(header, 0)


def test_content_range() -> None:
    assert ByteRange(5, 9).content_range(10) == "bytes 5-9/10"
    assert ByteRange(5, 9).length == 5
