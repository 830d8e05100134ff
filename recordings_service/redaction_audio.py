"""The audio side of a redaction: where a span's samples lie in a WAV, and what replaces
them. Only the formats PBXs write and a commitment covers (commitment.py): PCM 8/16-bit,
mu-law, A-law, mono or stereo. The file keeps its size, header and duration; a span's
samples (on one channel, or on all) become silence or a 1 kHz tone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from recordings_service.waveform import wav_format

_PCM, _ALAW, _MULAW = 1, 6, 7
TONE_HZ = 1000
TONE_AMPLITUDE = 3277  # -20 dBFS: heard as a beep, never as speech


@dataclass(frozen=True)
class Span:
    start_ms: int
    end_ms: int
    channel: int | None = None  # None: every channel

    def json(self) -> dict[str, int | None]:
        return {"start_ms": self.start_ms, "end_ms": self.end_ms, "channel": self.channel}


@dataclass(frozen=True)
class Layout:
    """Where a WAV's samples are: ``audio_offset`` is the first audio byte."""
    tag: int
    bits: int
    channels: int
    rate: int
    audio_offset: int

    @property
    def width(self) -> int:
        return self.bits // 8

    @property
    def block(self) -> int:
        return self.width * self.channels

    def frames(self, start_ms: int, end_ms: int) -> tuple[int, int]:
        """The frames a span covers: every frame any part of the span falls in."""
        return start_ms * self.rate // 1000, -(-end_ms * self.rate // 1000)


def layout_of(header: bytes, audio_offset: int) -> Layout | None:
    fmt = wav_format(header)
    if fmt is None:
        return None
    tag, channels, rate, block, bits = fmt
    known = {(_PCM, 8), (_PCM, 16), (_MULAW, 8), (_ALAW, 8)}
    if (tag, bits) not in known or channels not in (1, 2) or block != channels * bits // 8:
        return None
    return Layout(tag, bits, channels, rate, audio_offset)


def audio_end_of(header: bytes, audio_offset: int, size: int) -> int:
    """Where the samples end: the data chunk's size when it says, else the file's end (a
    recorder that streamed its file left the size 0 or 0xFFFFFFFF). Chunks after the data
    (a LIST, say) are never taken for audio."""
    data_size = int.from_bytes(header[audio_offset - 4:audio_offset], "little")
    if 0 < data_size < 0xFFFFFFFF and audio_offset + data_size <= size:
        return audio_offset + data_size
    return size


def merged(spans: Sequence[Span]) -> list[Span]:
    """Overlapping or touching spans of the same channel as one; a span on every channel
    takes in the one-channel spans it covers. Sorted by start."""
    out: list[Span] = []
    for span in sorted(spans, key=lambda s: (s.start_ms, s.end_ms)):
        for i, kept in enumerate(out):
            same = kept.channel == span.channel
            if same and span.start_ms <= kept.end_ms and kept.start_ms <= span.end_ms:
                out[i] = Span(min(kept.start_ms, span.start_ms), max(kept.end_ms, span.end_ms),
                              span.channel)
                break
        else:
            out.append(span)
    if len(out) < len(spans):
        return merged(out)  # a widened span may now touch another
    return sorted(out, key=lambda s: (s.start_ms, s.end_ms, -1 if s.channel is None
                                      else s.channel))


def _ulaw(samples: np.ndarray) -> np.ndarray:
    """ITU-T G.711 mu-law of 16-bit samples (the reference coder, on 14 bits)."""
    s = samples.astype(np.int32) >> 2
    mask = np.where(s < 0, 0x7F, 0xFF)
    magnitude = np.minimum(np.abs(s), 8159) + 0x21
    segment = np.clip(np.floor(np.log2(magnitude)).astype(np.int32) - 5, 0, 8)
    value = np.where(segment >= 8, 0x7F,
                     (np.minimum(segment, 7) << 4) | ((magnitude >> (np.minimum(segment, 7) + 1))
                                                      & 0x0F))
    return ((value ^ mask) & 0xFF).astype(np.uint8)


def _alaw(samples: np.ndarray) -> np.ndarray:
    """ITU-T G.711 A-law of 16-bit samples."""
    s = samples.astype(np.int32) >> 3
    mask = np.where(s >= 0, 0xD5, 0x55)
    s = np.where(s >= 0, s, -s - 1)
    segment = np.clip(np.floor(np.log2(np.maximum(s, 1))).astype(np.int32) - 4, 0, 8)
    low = np.where(segment < 2, (s >> 1) & 0x0F, (s >> np.maximum(segment, 1)) & 0x0F)
    value = np.where(segment >= 8, 0x7F, (segment << 4) | low)
    return ((value ^ mask) & 0xFF).astype(np.uint8)


def encoded(layout: Layout, samples: np.ndarray) -> bytes:
    """16-bit samples in the file's sample format."""
    if layout.tag == _MULAW:
        return _ulaw(samples).tobytes()
    if layout.tag == _ALAW:
        return _alaw(samples).tobytes()
    if layout.bits == 8:
        return ((samples.astype(np.int32) >> 8) + 128).astype(np.uint8).tobytes()
    return samples.astype("<i2").tobytes()  # little-endian whatever the machine


def fill_samples(fill: str, first_frame: int, frames: int, rate: int) -> np.ndarray:
    if fill == "silence":
        return np.zeros(frames, dtype=np.int16)
    n = np.arange(first_frame, first_frame + frames, dtype=np.float64)
    return np.round(TONE_AMPLITUDE * np.sin(2 * np.pi * TONE_HZ * n / rate)).astype(np.int16)


def byte_ranges(layout: Layout, spans: Sequence[Span], audio_end: int,
                ) -> list[tuple[int, int]]:
    """The file's byte ranges a redaction changes (whole frames), to find the committed
    pieces it touches."""
    ranges = []
    for span in spans:
        first, last = layout.frames(span.start_ms, span.end_ms)
        start = layout.audio_offset + first * layout.block
        end = min(audio_end, layout.audio_offset + last * layout.block)
        if start < end:
            ranges.append((start, end))
    return ranges


class Filler:
    """Rewrites the audio as it streams past, frame-aligned: ``feed`` the original bytes
    in order, get the redacted ones (the same number, less a partial frame held back
    until the next piece; ``finish`` gives what is left)."""

    def __init__(self, layout: Layout, spans: Sequence[Span], fill: str,
                 audio_end: int) -> None:
        self._layout = layout
        self._spans = list(spans)
        self._fill = fill
        self._audio_end = audio_end
        self._at = 0  # the file offset of the next byte fed
        self._carry = bytearray()

    def feed(self, data: bytes | memoryview) -> bytes:
        layout = self._layout
        buf = self._carry + data
        start = self._at - len(self._carry)
        self._at += len(data)
        # Up to the header's end as it is; audio only in whole frames.
        if start + len(buf) <= layout.audio_offset:
            self._carry = bytearray()
            return bytes(buf)
        keep = len(buf)
        if start + len(buf) < self._audio_end:
            into_audio = start + len(buf) - max(start, layout.audio_offset)
            keep -= into_audio % layout.block
        out, self._carry = buf[:keep], bytearray(buf[keep:])
        self._rewrite(out, start)
        return bytes(out)

    def finish(self) -> bytes:
        rest, self._carry = self._carry, bytearray()
        return bytes(rest)

    def _rewrite(self, out: bytearray, start: int) -> None:
        layout, block, width = self._layout, self._layout.block, self._layout.width
        end = start + len(out)
        audio_start = max(start, layout.audio_offset)
        audio_end = min(end, self._audio_end)
        if audio_start >= audio_end:
            return
        first_here = (audio_start - layout.audio_offset) // block
        last_here = (audio_end - layout.audio_offset) // block  # exclusive
        for span in self._spans:
            first, last = layout.frames(span.start_ms, span.end_ms)
            first, last = max(first, first_here), min(last, last_here)
            if first >= last:
                continue
            samples = encoded(layout, fill_samples(self._fill, first, last - first,
                                                   layout.rate))
            at = layout.audio_offset + first * block - start
            channels = range(layout.channels) if span.channel is None else [span.channel]
            for channel in channels:
                for byte in range(width):
                    offset = at + channel * width + byte
                    out[offset:offset + (last - first) * block:block] = samples[byte::width]
