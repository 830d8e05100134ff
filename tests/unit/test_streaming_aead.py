import os

import pytest

from storage import streaming_aead as sa
from storage.errors import BlobAuthenticationError

# Tink's manually created cross-language test vector (AES128_GCM_HKDF, HKDF-SHA1,
# 64-byte ciphertext segments), published in Tink's cross-language tests.
TINK_PARAMS = sa.StreamingParams(derived_key_size=16, segment_size=64, hash_name="sha1")
TINK_KEY = bytes.fromhex("6eb56cdc726dfbe5d57f2fcdc6e9345b")
TINK_PLAINTEXT = (
    b"This is a fairly long plaintext. It is of the exact length to create three output blocks. "
)
TINK_AAD = b"aad"
TINK_CIPHERTEXT = bytes.fromhex(
    "18"
    "93b3af5e14ab378d065addfc8484da64"
    "2c0862877baea8"
    "db92d9c77406a406168478821c4298eab3e6d531277f4c1a051714faebcaefcbca7b7be05e9445ea"
    "a0bb2904153398a25084dd80ae0edcd1c3079fcea2cd3770630ee36f7539207b8ec9d754956d486b"
    "71cdf989f0ed6fba6779b63558be0a66e668df14e1603cd2"
    "af8944844078345286d0b292e772e7190775c51a0f83e40c0b75821027e7e538e111"
)

PARAMS = sa.DEFAULT_PARAMS
DEK = bytes(range(32))
AAD = b"rec-123"


def test_decrypts_tinks_published_test_vector() -> None:
    plain = sa.decrypt(TINK_KEY, TINK_AAD, TINK_CIPHERTEXT, len(TINK_PLAINTEXT), TINK_PARAMS)
    assert plain == TINK_PLAINTEXT


def test_our_ciphertext_has_tinks_layout() -> None:
    blob = sa.encrypt(TINK_KEY, TINK_AAD, TINK_PLAINTEXT, TINK_PARAMS)
    assert len(blob) == len(TINK_CIPHERTEXT)
    assert blob[0] == 0x18
    assert sa.decrypt(TINK_KEY, TINK_AAD, blob, len(TINK_PLAINTEXT), TINK_PARAMS) == TINK_PLAINTEXT


def test_production_header_is_40_bytes_and_segments_64k() -> None:
    assert PARAMS.header_size == 40
    assert PARAMS.first_plaintext_size == 65536 - 40 - 16
    assert PARAMS.plaintext_segment_size == 65536 - 16


@pytest.mark.parametrize(
    "size",
    [0, 1, PARAMS.first_plaintext_size - 1, PARAMS.first_plaintext_size,
     PARAMS.first_plaintext_size + 1, PARAMS.first_plaintext_size + PARAMS.plaintext_segment_size,
     300_001],
)
def test_round_trip_at_segment_boundaries(size: int) -> None:
    plain = os.urandom(size)
    blob = sa.encrypt(DEK, AAD, plain)
    assert len(blob) == PARAMS.ciphertext_size(size)
    assert sa.decrypt(DEK, AAD, blob, size) == plain


def test_chunked_updates_equal_one_shot_layout() -> None:
    plain = os.urandom(200_000)
    enc = sa.SegmentEncrypter(DEK, AAD)
    parts = [enc.header]
    for i in range(0, len(plain), 777):
        parts.extend(enc.update(plain[i : i + 777]))
    parts.append(enc.finish())
    assert sa.decrypt(DEK, AAD, b"".join(parts), len(plain)) == plain


def test_chunks_of_any_size_seal_to_the_same_plaintext() -> None:
    # Chunks smaller than a segment, straddling segments, and several segments long.
    import random

    rng = random.Random(7)
    plain = os.urandom(700_000)
    enc = sa.SegmentEncrypter(DEK, AAD)
    parts, pos = [enc.header], 0
    while pos < len(plain):
        size = rng.choice([1, 100, 65_000, 65_536, 65_537, 200_000])
        parts.extend(enc.update(plain[pos : pos + size]))
        pos += size
    parts.append(enc.finish())
    blob = b"".join(parts)
    assert len(blob) == PARAMS.ciphertext_size(len(plain))
    assert sa.decrypt(DEK, AAD, blob, len(plain)) == plain


def test_span_decryption_of_a_middle_segment() -> None:
    plain = os.urandom(400_000)
    blob = sa.encrypt(DEK, AAD, plain)
    dec = sa.SegmentDecrypter(DEK, AAD, blob[:40], len(plain))
    first = PARAMS.segment_of(150_000)
    offset, length = PARAMS.ciphertext_span(first, first + 1, len(plain))
    out = bytes(dec.decrypt_span(first, blob[offset : offset + length]))
    start = PARAMS.plaintext_start(first)
    assert out == plain[start : start + len(out)]


def _tampered_cases(blob: bytes) -> dict[str, bytes]:
    seg = PARAMS.segment_size
    flipped = bytearray(blob)
    flipped[seg + 100] ^= 0x01
    segments = [blob[:seg], blob[seg : 2 * seg], blob[2 * seg : 3 * seg], blob[3 * seg :]]
    return {
        "flipped_bit": bytes(flipped),
        "truncated_at_segment_boundary": blob[: 3 * seg],
        "truncated_mid_segment": blob[:-5],
        "reordered_segments": segments[0] + segments[2] + segments[1] + segments[3],
    }


@pytest.mark.parametrize("case", ["flipped_bit", "truncated_at_segment_boundary",
                                  "truncated_mid_segment", "reordered_segments"])
def test_tampering_fails_closed(case: str) -> None:
    plain = os.urandom(3 * PARAMS.segment_size + 1000)
    blob = _tampered_cases(sa.encrypt(DEK, AAD, plain))[case]
    with pytest.raises(BlobAuthenticationError):
        sa.decrypt(DEK, AAD, blob, len(plain))


def test_truncated_blob_is_caught_even_with_the_shorter_length() -> None:
    # An attacker who also lies about the length still cannot pass a non-final segment
    # off as the final one.
    plain = os.urandom(3 * PARAMS.segment_size)
    blob = sa.encrypt(DEK, AAD, plain)
    short_len = PARAMS.first_plaintext_size + PARAMS.plaintext_segment_size
    with pytest.raises(BlobAuthenticationError):
        sa.decrypt(DEK, AAD, blob[: PARAMS.ciphertext_size(short_len)], short_len)


def test_blob_swapped_to_another_recording_fails() -> None:
    plain = os.urandom(1000)
    blob = sa.encrypt(DEK, b"rec-A", plain)
    with pytest.raises(BlobAuthenticationError):
        sa.decrypt(DEK, b"rec-B", blob, len(plain))


def test_wrong_key_fails() -> None:
    blob = sa.encrypt(DEK, AAD, b"hello")
    with pytest.raises(BlobAuthenticationError):
        sa.decrypt(os.urandom(32), AAD, blob, 5)
