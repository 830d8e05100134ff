"""Audio container detection from the bytes themselves, and duration where it is given.

Uploads are streamed, so the sniffer only keeps the first ``HEAD`` and the last ``TAIL``
bytes; mutagen reads them through a sparse view whose middle reads as zeros. Every
container we accept keeps what mutagen needs there (FLAC/MP3 headers at the start, the
final Ogg page at the end). WAV is read here instead: its duration comes from the byte
rate and the bytes really present, which also covers what telephony writes (GSM 6.10,
µ-law, A-law, sizes left at 0 or 0xFFFFFFFF by a recorder that streamed the file).

Parsing cost is bounded (at most ``MAX_HEADER_PIECES`` chunks or metadata blocks, within
``HEAD``) and runs off the event loop (``ingest.py``).
"""

from __future__ import annotations

import io
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import mutagen
from mutagen.flac import FLAC
from mutagen.mp3 import MP3
from mutagen.oggopus import OggOpus
from mutagen.oggvorbis import OggVorbis

from recordings_service.errors import Unprocessable, UnsupportedMediaType

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
    "flac": (FLAC, "audio/flac"),
    "opus": (OggOpus, "audio/ogg"),
    "vorbis": (OggVorbis, "audio/ogg"),
    "mp3": (MP3, "audio/mpeg"),
}


def _implausible(why: str) -> Unprocessable:
    return Unprocessable("invalid_audio", f"the audio cannot be accepted: {why}")


# Chunks (WAV) or metadata blocks (FLAC) before the audio: real files have a handful;
# each one costs parsing time, so a file made of empty ones is refused early.
MAX_HEADER_PIECES = 256
_WAV_SIZE_UNKNOWN = (0, 0xFFFFFFFF)


def _wav_chunks(head: bytes | bytearray) -> Iterator[tuple[bytes, int, int]]:
    """Each chunk header ``head`` holds in full after the RIFF header: its id, declared
    length and where its body starts. Refuses a file with too many chunks."""
    offset, pieces = 12, 0
    while offset + 8 <= len(head):
        pieces += 1
        if pieces > MAX_HEADER_PIECES:
            raise _implausible(f"more than {MAX_HEADER_PIECES} chunks before the audio data")
        (length,) = struct.unpack_from("<I", head, offset + 4)
        body = offset + 8
        yield bytes(head[offset : offset + 4]), length, body
        offset = body + length + (length & 1)  # chunks are padded to even sizes


def wav_duration(head: bytes | bytearray, size: int) -> float:
    """Seconds of audio a RIFF/WAVE file holds, from its format's byte rate and the bytes
    that really follow the ``data`` chunk header. The declared sizes are not trusted: a
    recorder still writing leaves 0 or 0xFFFFFFFF there, a hostile file claims 4 GiB."""
    byte_rate = 0
    for chunk_id, length, body in _wav_chunks(head):
        if chunk_id == b"fmt ":
            if length < 16 or body + 16 > len(head):
                raise _unsupported()
            byte_rate = struct.unpack_from("<I", head, body + 8)[0]
        elif chunk_id == b"data":
            if byte_rate == 0:
                raise _implausible("no format chunk (or a byte rate of 0) before the data")
            present = size - body
            declared = present if length in _WAV_SIZE_UNKNOWN else min(length, present)
            return round(declared / byte_rate, 3)
    raise _unsupported()


def wav_audio_offset(head: bytes | bytearray) -> int | None:
    """Where a WAV's audio starts (just past the ``data`` chunk's header), or None when
    ``head`` does not reach it yet."""
    return next((body for chunk_id, _, body in _wav_chunks(head) if chunk_id == b"data"),
                None)


def _check_flac_blocks(head: bytes | bytearray) -> None:
    offset, pieces = 4, 0
    while offset + 4 <= len(head):
        pieces += 1
        if pieces > MAX_HEADER_PIECES:
            raise _implausible(f"more than {MAX_HEADER_PIECES} metadata blocks")
        last = head[offset] & 0x80
        offset += 4 + int.from_bytes(head[offset + 1 : offset + 4], "big")
        if last:
            return


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
        # A WAV's duration needs only the chunks before its audio: once they are here,
        # nothing more is kept (what PBXs send holds no more than streaming needs).
        self._wav_head_done = False

    def feed(self, chunk: bytes) -> None:
        self._size += len(chunk)
        if self._wav_head_done:
            return
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
        if self._kind == "wav":
            audio_at = wav_audio_offset(self._head)
            if audio_at is not None:
                self._head = bytearray(self._head[:audio_at])  # a copy: frees the rest
                self._tail = bytearray()
                self._wav_head_done = True

    def finish(self) -> MediaInfo:
        kind = self._kind or _kind(bytes(self._head))
        if kind is None:
            raise _unsupported()
        if kind == "wav":
            info = MediaInfo("audio/wav", wav_duration(self._head, self._size))
        else:
            if kind == "flac":
                _check_flac_blocks(self._head)
            info = self._parse(kind)
        if info.duration_seconds is not None and info.duration_seconds > self._size:
            # Under one byte per second: no codec we accept is that frugal; the header
            # (FLAC STREAMINFO, an Ogg granule position, an MP3 Xing count) lies.
            raise _implausible("its header claims a duration the file is far too small for")
        return info

    def _parse(self, kind: str) -> MediaInfo:
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
