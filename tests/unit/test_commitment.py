"""The commitment to a recording's audio made at upload: a Merkle root over salted pieces
that anyone can recompute from the pieces and their salts, and nobody from the hashes."""

from __future__ import annotations

import os
import struct
from itertools import pairwise

import pytest
from cryptography.exceptions import InvalidTag
from hypothesis import given, settings
from hypothesis import strategies as st

from recordings_service import commitment
from recordings_service.commitment import Committer, chunk_leaf, chunk_salt, pieces
from storage.merkle import frontier_append, frontier_root
from tests.audio import fixture, riff_wav, wav_tone

KEY = bytes(range(32))


def committed(audio: bytes, cuts: list[int] | None = None,
              key: bytes = KEY) -> commitment.Commitment | None:
    committer = Committer(key)
    edges = [0, *sorted(cuts or []), len(audio)]
    for start, end in pairwise(edges):
        committer.feed(audio[start:end])
    return committer.finish()


def recomputed(audio: bytes, done: commitment.Commitment, key: bytes = KEY) -> bytes:
    """What a verifier does with the audio and the salts."""
    frontier: list[bytes] = []
    for index, piece in enumerate(pieces(audio, done.audio_offset, done.chunk_bytes)):
        frontier = frontier_append(frontier, index, chunk_leaf(index, chunk_salt(key, index),
                                                               piece))
    return frontier_root(frontier)


def test_a_call_is_its_header_then_a_piece_per_second() -> None:
    audio = wav_tone(2.5)  # 16-bit mono at 8 kHz
    done = committed(audio)
    assert done is not None
    assert (done.audio_offset, done.chunk_bytes, done.chunks) == (44, 16000, 1 + 3)
    assert done.root == recomputed(audio, done)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 40_100), max_size=10))
def test_how_the_upload_is_cut_changes_nothing(cuts: list[int]) -> None:
    audio = wav_tone(2.5)
    assert committed(audio, cuts) == committed(audio)


def test_every_byte_counts_and_the_salts_are_the_recordings_own() -> None:
    audio = wav_tone(2.5)
    done = committed(audio)
    assert done is not None
    changed = bytearray(audio)
    changed[20_000] ^= 1  # one bit of the second second
    assert committed(bytes(changed)) != done
    assert committed(audio, key=os.urandom(32)) != done
    # A piece's leaf cannot be made without its salt: a guess of the audio is not enough.
    piece = pieces(audio, done.audio_offset, done.chunk_bytes)[1]
    assert chunk_leaf(1, bytes(32), piece) != chunk_leaf(1, chunk_salt(KEY, 1), piece)
    # Each salt shows nothing of the others'.
    assert len({chunk_salt(KEY, i) for i in range(100)}) == 100


def pcm(tag: int, bits: int, channels: int, payload: bytes) -> bytes:
    block = channels * max(1, bits // 8)
    return riff_wav(payload, format_tag=tag, channels=channels, byte_rate=8000 * block,
                    block_align=block, bits=bits)


@pytest.mark.parametrize(("audio", "is_committed"), [
    (pcm(1, 16, 2, bytes(64_000)), True),  # stereo
    (pcm(1, 8, 1, bytes(8_000)), True),
    (pcm(7, 8, 1, bytes(8_000)), True),  # mu-law
    (pcm(6, 8, 2, bytes(16_000)), True),  # A-law, stereo
    (pcm(3, 32, 1, bytes(32_000)), False),  # float: not rewritten by a redaction
    (pcm(1, 24, 1, bytes(24_000)), False),
    (fixture("tone.gsm.wav"), False),
    (fixture("tone.mp3"), False),
])
def test_only_what_a_redaction_rewrites_is_committed(audio: bytes, is_committed: bool) -> None:
    done = committed(audio)
    assert (done is not None) == is_committed
    if done is not None:
        assert done.root == recomputed(audio, done)


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_after_a_header_commit_or_not_and_never_crash(tail: bytes) -> None:
    header = pcm(1, 16, 1, b"")[:44]
    for audio in (header + tail, tail):
        done = committed(audio)
        if done is not None:
            assert done.root == recomputed(audio, done)


def test_the_salt_key_is_sealed_to_its_recording_and_data_key() -> None:
    dek = os.urandom(32)
    sealed = commitment.seal_salt_key(dek, "rec_a", KEY)
    assert KEY not in sealed
    assert commitment.open_salt_key(dek, "rec_a", sealed) == KEY
    for key, rid in ((os.urandom(32), "rec_a"), (dek, "rec_b")):
        with pytest.raises(InvalidTag):
            commitment.open_salt_key(key, rid, sealed)


def test_a_streamed_wav_with_no_sizes_is_committed_to_its_end() -> None:
    audio = bytearray(wav_tone(1.2))
    audio[4:8] = audio[40:44] = struct.pack("<I", 0xFFFFFFFF)
    done = committed(bytes(audio))
    assert done is not None and done.chunks == 3 and done.root == recomputed(bytes(audio), done)
