"""A commitment to a recording's audio, made as it streams in, so that a later redaction
can prove that nothing but the spans it names changed.

The WAV file is cut into pieces: its header (everything before the audio), then the audio
in pieces of ``CHUNK_SECONDS`` (whatever the file holds after its last whole piece is the
last piece). Each piece is a leaf of an RFC 6962 Merkle tree, hashed with a salt of its
own: ``leaf_hash(LABEL || index || salt || bytes)``. The salts come from one random key
per recording (``salt_i = HMAC-SHA256(key, "chunk" || index)``), sealed under a key derived
from the recording's data key: one salt can be shown in a proof without the others, and a
piece that is not shown cannot be guessed back from its hash. The tree's root goes into
the upload's audit entry, which the signed log commits to.

Committed: the formats a redaction rewrites (WAV PCM 8/16-bit, mu-law, A-law; mono or
stereo). Other formats get no commitment.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Callable
from dataclasses import dataclass

from recordings_service import sealing
from recordings_service.errors import ServiceError
from recordings_service.media import HEAD, wav_audio_offset
from recordings_service.redaction_audio import Layout, layout_of
from storage.merkle import frontier_append, frontier_root, leaf_hash

CHUNK_SECONDS = 1
LABEL = b"recordings-service audio chunk v1\x00"
_INFO = b"recordings-service chunk salts v1"


def committed_format(header: bytes | bytearray, audio_offset: int) -> Layout | None:
    """The layout of a WAV a redaction can rewrite (redaction_audio.layout_of, at the
    sample rates telephony uses), or None for any other."""
    layout = layout_of(bytes(header), audio_offset)
    return layout if layout is not None and 8000 <= layout.rate <= 48000 else None


def chunk_salt(salt_key: bytes, index: int) -> bytes:
    return hmac.new(salt_key, b"chunk" + index.to_bytes(8, "big"), hashlib.sha256).digest()


def chunk_leaf(index: int, salt: bytes, data: bytes | bytearray | memoryview) -> bytes:
    return leaf_hash(LABEL + index.to_bytes(8, "big") + salt + bytes(data))


@dataclass(frozen=True)
class Commitment:
    root: bytes
    chunks: int
    audio_offset: int  # the header's length: piece 0
    chunk_bytes: int  # the audio's pieces (CHUNK_SECONDS each), but the last

    def json(self) -> dict[str, object]:
        return {"root": self.root.hex(), "chunks": self.chunks,
                "audio_offset": self.audio_offset, "chunk_bytes": self.chunk_bytes,
                "chunk_seconds": CHUNK_SECONDS}


class Committer:
    """Fed the upload's bytes in order; ``finish()`` is the commitment, or None when the
    audio is not a format committed to."""

    def __init__(self, salt_key: bytes, keep: Callable[[int], bool] = lambda _i: False,
                 ) -> None:
        self._key = salt_key
        # The leaves of the pieces ``keep`` picks, by index (a redaction's proof gives
        # those of the pieces it changed).
        self._keep = keep
        self.leaves: dict[int, bytes] = {}
        self._head = bytearray()
        self._pending = bytearray()
        self._offset: int | None = None
        self._chunk_bytes = 0
        self._frontier: list[bytes] = []
        self._count = 0
        self._off = False

    def feed(self, chunk: bytes | memoryview) -> None:
        if self._off:
            return
        if self._offset is None:
            self._head += chunk
            if len(self._head) < 12:
                return
            try:
                offset = wav_audio_offset(self._head) \
                    if self._head[:4] == b"RIFF" and self._head[8:12] == b"WAVE" else -1
            except ServiceError:  # a header the sniffer refuses too
                offset = -1
            if offset is None:
                self._off = len(self._head) > HEAD
                return
            shape = committed_format(self._head[:offset], offset) if offset > 0 else None
            if shape is None:
                self._off = True
                self._head = bytearray()
                return
            self._offset = offset
            self._chunk_bytes = shape.rate * shape.block * CHUNK_SECONDS
            self._add(self._head[:offset])
            chunk, self._head = bytes(self._head[offset:]), bytearray()
        self._pending += chunk
        size = self._chunk_bytes
        whole = len(self._pending) - len(self._pending) % size
        view = memoryview(self._pending)
        for start in range(0, whole, size):
            self._add(view[start:start + size])
        view.release()
        del self._pending[:whole]

    def finish(self) -> Commitment | None:
        if self._off or self._offset is None:
            return None
        if self._pending:
            self._add(self._pending)
            self._pending = bytearray()
        return Commitment(frontier_root(self._frontier), self._count, self._offset,
                          self._chunk_bytes)

    def _add(self, data: bytes | bytearray | memoryview) -> None:
        leaf = chunk_leaf(self._count, chunk_salt(self._key, self._count), data)
        if self._keep(self._count):
            self.leaves[self._count] = leaf
        self._frontier = frontier_append(self._frontier, self._count, leaf)
        self._count += 1


def piece_of(offset: int, audio_offset: int, chunk_bytes: int) -> int:
    """The index of the piece holding the file's byte ``offset``."""
    return 0 if offset < audio_offset else 1 + (offset - audio_offset) // chunk_bytes


def pieces(audio: bytes, audio_offset: int, chunk_bytes: int) -> list[bytes]:
    """The pieces a commitment cut ``audio`` into."""
    return [audio[:audio_offset], *(audio[at:at + chunk_bytes]
                                    for at in range(audio_offset, len(audio), chunk_bytes))]


def new_salt_key() -> bytes:
    return os.urandom(32)


def seal_salt_key(dek: bytes, recording_id: str, salt_key: bytes) -> bytes:
    return sealing.seal(dek, _INFO, recording_id, salt_key)


def open_salt_key(dek: bytes, recording_id: str, sealed: bytes) -> bytes:
    """Raises cryptography's InvalidTag for another key, recording or altered bytes."""
    return sealing.open_sealed(dek, _INFO, recording_id, sealed, "sealed salt key")
