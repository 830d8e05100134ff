"""A clip as a file of its own: a WAV header of the span, then the span's audio.

A training clip is served as a WAV that holds its span and nothing else, so a player shows
the clip's own length and no Range can reach beyond it (a Range past its end is a 416).
Only WAV, whose audio is blocks at a fixed byte rate (PCM, µ-law, A-law, GSM 6.10), is cut
this way; other containers would need decoding to cut them at a time.
"""

from __future__ import annotations

import math
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

from recordings_service.errors import Unprocessable
from recordings_service.media import MAX_HEADER_PIECES

# The chunks before the audio: what a WAV header may take at most to be cut here.
HEADER_BYTES = 64 * 1024
_SIZE_UNKNOWN = (0, 0xFFFFFFFF)


def unsupported() -> Unprocessable:
    return Unprocessable("clip_unsupported_format",
                         "clips are cut from WAV recordings only (PCM, µ-law, A-law, GSM)")


@dataclass(frozen=True)
class WavLayout:
    fmt_chunk: bytes  # the format chunk as in the file: id, length, body
    data_start: int
    data_length: int
    byte_rate: int
    block_align: int

    @property
    def seconds(self) -> float:
        return self.data_length / self.byte_rate


def wav_layout(head: bytes, size: int) -> WavLayout:
    """Where the audio of a WAV of ``size`` bytes is, from its first bytes ``head``."""
    if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        raise unsupported()
    offset, fmt = 12, None
    for _ in range(MAX_HEADER_PIECES):
        if offset + 8 > len(head):
            break
        chunk_id = head[offset:offset + 4]
        (length,) = struct.unpack_from("<I", head, offset + 4)
        body = offset + 8
        if chunk_id == b"fmt " and 16 <= length <= 256 and body + length <= len(head):
            fmt = head[offset:body + length]
        elif chunk_id == b"data":
            if fmt is None:
                break
            byte_rate, block_align = struct.unpack_from("<IH", fmt, 8 + 8)
            if byte_rate == 0 or block_align == 0:
                break
            present = size - body
            length = present if length in _SIZE_UNKNOWN else min(length, present)
            return WavLayout(fmt if len(fmt) % 2 == 0 else fmt + b"\0", body,
                             length - length % block_align, byte_rate, block_align)
        offset = body + length + (length & 1)
    raise unsupported()


@dataclass(frozen=True)
class ClipFile:
    header: bytes
    first: int  # where the span's audio starts in the recording's audio
    length: int  # bytes of audio in the span

    @property
    def size(self) -> int:
        return len(self.header) + self.length


def clip_file(layout: WavLayout, start_seconds: float, end_seconds: float) -> ClipFile:
    """The span cut at whole blocks: from the block holding ``start_seconds`` to the one
    holding ``end_seconds``, within the audio."""
    block = layout.block_align
    first = math.floor(start_seconds * layout.byte_rate / block) * block
    last = min(layout.data_length, math.ceil(end_seconds * layout.byte_rate / block) * block)
    length = max(0, last - first)
    fmt = layout.fmt_chunk
    header = (b"RIFF" + struct.pack("<I", 4 + len(fmt) + 8 + length) + b"WAVE" + fmt
              + b"data" + struct.pack("<I", length))
    return ClipFile(header, layout.data_start + first, length)


class RangeReader(Protocol):
    def iter_range(self, start: int, end: int) -> AsyncIterator[bytes | memoryview]: ...


class ClipReader:
    """Reads the clip's file: its header, then the recording's audio within the span."""

    def __init__(self, audio: RangeReader, clip: ClipFile) -> None:
        self._audio = audio
        self._clip = clip

    async def iter_range(self, start: int, end: int) -> AsyncIterator[bytes | memoryview]:
        header = self._clip.header
        if start < len(header):
            yield header[start:min(end + 1, len(header))]
        if end >= len(header):
            base = self._clip.first - len(header)
            async for chunk in self._audio.iter_range(base + max(start, len(header)),
                                                      base + end):
                yield chunk
