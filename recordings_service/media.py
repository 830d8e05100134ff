"""Audio container detection from the bytes themselves, and duration where it is given.

Uploads are streamed, so the sniffer only keeps the first ``HEAD`` and the last ``TAIL``
bytes; mutagen reads them through a sparse view whose middle reads as zeros. Every
container we accept keeps what mutagen needs there (RIFF/FLAC/MP3 headers at the start,
the final Ogg page at the end).
"""

from __future__ import annotations

import io
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import mutagen
from mutagen.flac import FLAC
from mutagen.mp3 import MP3
from mutagen.oggopus import OggOpus
from mutagen.oggvorbis import OggVorbis
from mutagen.wave import WAVE

from recordings_service.errors import UnsupportedMediaType

HEAD = 1024 * 1024
TAIL = 256 * 1024
_SNIFF_BYTES = 64

EXTENSIONS = {"audio/wav": "wav", "audio/mpeg": "mp3", "audio/ogg": "ogg", "audio/flac": "flac"}


@dataclass(frozen=True)
class MediaInfo:
    content_type: str
    duration_seconds: float | None


def _kind(head: bytes) -> str | None:
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "wav"
    if head[:4] == b"fLaC":
        return "flac"
    if head[:4] == b"OggS":
        if head[28:36] == b"OpusHead":
            return "opus"
        if head[28:35] == b"\x01vorbis":
            return "vorbis"
        return None
    if head[:3] == b"ID3" or (len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "mp3"
    return None


_PARSERS = {
    "wav": (WAVE, "audio/wav"),
    "flac": (FLAC, "audio/flac"),
    "opus": (OggOpus, "audio/ogg"),
    "vorbis": (OggVorbis, "audio/ogg"),
    "mp3": (MP3, "audio/mpeg"),
}


def _unsupported() -> UnsupportedMediaType:
    return UnsupportedMediaType(
        "unsupported_media_type",
        "the audio is not a WAV, MP3, Ogg (Opus/Vorbis) or FLAC file",
    )


class _SparseView(io.RawIOBase):
    def __init__(self, head: bytes | bytearray, tail: bytes | bytearray, size: int) -> None:
        self._head = head
        self._tail = tail
        self._tail_start = size - len(tail)
        self._size = size
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        want = min(len(buffer), max(0, self._size - self._pos))
        out = memoryview(buffer).cast("B")
        # A read may span the head, the gap (zeros) and the tail.
        i = 0
        while i < want:
            pos = self._pos + i
            if pos < len(self._head):
                run = min(want - i, len(self._head) - pos)
                out[i : i + run] = self._head[pos : pos + run]
            elif pos >= self._tail_start:
                run = want - i
                offset = pos - self._tail_start
                out[i : i + run] = self._tail[offset : offset + run]
            else:
                run = min(want - i, self._tail_start - pos)
                out[i : i + run] = bytes(run)
            i += run
        self._pos += want
        return want


class MediaSniffer:
    """Fed the upload chunk by chunk; rejects a non-audio body as soon as it can."""

    def __init__(self) -> None:
        self._head = bytearray()
        self._tail = bytearray()
        self._size = 0
        self._kind: str | None = None

    def feed(self, chunk: bytes) -> None:
        self._size += len(chunk)
        view = memoryview(chunk)
        room = HEAD - len(self._head)
        if room > 0:
            self._head += view[:room]
            view = view[room:]
        # The tail keeps only what lies beyond the head: a short upload copies nothing.
        if view:
            self._tail += view[-TAIL:]
            if len(self._tail) > TAIL:
                del self._tail[: len(self._tail) - TAIL]
        if self._kind is None and len(self._head) >= _SNIFF_BYTES:
            self._kind = _kind(bytes(self._head))
            if self._kind is None:
                raise _unsupported()

    def finish(self) -> MediaInfo:
        kind = self._kind or _kind(bytes(self._head))
        if kind is None:
            raise _unsupported()
        parser, content_type = _PARSERS[kind]
        parse: Callable[[io.RawIOBase], Any] = parser
        view = _SparseView(self._head, self._tail, self._size)
        try:
            parsed = parse(view)
        except (mutagen.MutagenError, struct.error, ValueError, EOFError, IndexError,
                KeyError, OverflowError):
            raise _unsupported() from None
        length = getattr(parsed.info, "length", None)
        duration = round(float(length), 3) if length else None
        return MediaInfo(content_type, duration)
