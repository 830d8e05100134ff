"""A call's waveform: the peak level of each tenth of a second, measured from the decoded
audio as it streams in at upload, sealed under the recording's own data key and served
only through a purpose-checked, audited request.

Decoded here: what PBXs write in WAV (PCM 8/16/24/32-bit, IEEE float, mu-law, A-law; any
number of channels, mixed to their loudest; and GSM 6.10, by libsndfile). Other formats get
no waveform: the console then shows a plain timeline. Each sample format becomes one byte
of level per sample through a 256-entry table or an array in C, so a chunk costs little on
the event loop.
"""

from __future__ import annotations

import asyncio
import io
import struct
import sys
from array import array

import numpy as np
import soundfile

from recordings_service import sealing
from recordings_service.errors import ServiceError
from recordings_service.media import HEAD, wav_audio_offset

BUCKET_SECONDS = 0.1
# Levels kept at most: past it, neighbours merge (the resolution halves), so a day-long
# file still gives a bounded waveform.
MAX_LEVELS = 100_000
_INFO = b"recordings-service waveform v1"

_PCM, _FLOAT, _ALAW, _MULAW, _GSM, _EXTENSIBLE = 1, 3, 6, 7, 0x31, 0xFFFE
# Microsoft's GSM 6.10 in WAV: two 33-byte frames packed into 65 bytes, 320 samples.
_GSM_BLOCK = 65


def _mulaw_level(byte: int) -> int:
    u = ~byte & 0xFF
    exponent, mantissa = (u >> 4) & 7, u & 0x0F
    return ((((mantissa << 3) + 0x84) << exponent) - 0x84) * 255 // 32124


def _alaw_level(byte: int) -> int:
    a = byte ^ 0x55
    exponent, mantissa = (a & 0x70) >> 4, a & 0x0F
    magnitude = (mantissa << 4) + 8 if exponent == 0 else \
        ((mantissa << 4) + 0x108) << (exponent - 1)
    return magnitude * 255 // 32256


_MULAW_LEVELS = bytes(_mulaw_level(b) for b in range(256))
_ALAW_LEVELS = bytes(_alaw_level(b) for b in range(256))
_SIGNED = bytes(min(255, abs(b - 256 if b > 127 else b) * 2) for b in range(256))
_UNSIGNED = bytes(min(255, abs(b - 128) * 2) for b in range(256))


class PeakMeter:
    """Fed the upload's bytes in order; ``levels()`` is the waveform, or None when the
    audio is not a format decoded here."""

    def __init__(self) -> None:
        self._head = bytearray()
        self._decode: str | None = None  # "table" or "float32"
        self._table = b""
        self._stride = 1  # bytes per sample read; for 24/32-bit, the top byte only
        self._offset = 0
        self._bucket = 0  # bytes per bucket
        self._pending = bytearray()
        self._levels = bytearray()
        self._merge = 1  # buckets per kept level
        self._partial = 0  # level of the buckets merged so far into the next one
        self._merged = 0
        self._unsupported = False
        self._block_align = 1
        self._channels = 1
        self._peaks: list[int] = []  # each channel's loudest level so far
        self._gsm = _GsmDecoder(b"")

    def feed(self, chunk: bytes | memoryview) -> None:
        if self._unsupported:
            return
        if self._decode is None:
            self._head += chunk
            if len(self._head) >= 12 and (self._head[:4] != b"RIFF"
                                          or self._head[8:12] != b"WAVE"):
                self._unsupported = True
                return
            try:
                audio_at = wav_audio_offset(self._head)
            except ServiceError:  # a header the sniffer refuses too
                audio_at = None
                self._unsupported = True
            if audio_at is None:
                self._unsupported |= len(self._head) > HEAD
                return
            if not self._configure(bytes(self._head[:audio_at])):
                self._unsupported = True
                return
            chunk, self._head = bytes(self._head[audio_at:]), bytearray()
        self._pending += chunk
        if self._decode == "gsm":
            self._feed_gsm(final=False)
            return
        whole = len(self._pending) - len(self._pending) % self._bucket
        view = memoryview(self._pending)
        for start in range(0, whole, self._bucket):
            self._add(self._level(view[start:start + self._bucket]))
        view.release()
        del self._pending[:whole]

    async def feed_async(self, chunk: bytes | memoryview) -> None:
        """``feed``, in a worker thread where decoding costs more than a table lookup
        (GSM 6.10: about 4x 16-bit PCM's work per second of audio, 0.1 s of it per 64 KiB
        chunk, bench/decode.py), so that the event loop is not held meanwhile. One
        chunk at a time: the caller awaits each before the next."""
        # Until the header is read it is not known what the chunk holds: GSM blocks, maybe.
        if self._decode in (None, "gsm") and not self._unsupported:
            await asyncio.to_thread(self.feed, chunk)
        else:
            self.feed(chunk)

    def levels(self) -> bytes | None:
        if self._unsupported or self._decode is None:
            return None
        if self._decode == "gsm":
            self._feed_gsm(final=True)
            if self._unsupported:
                return None
            if self._merged:
                self._levels.append(self._partial)
                self._merged = 0
            return bytes(self._levels)
        block = self._block_align
        tail = len(self._pending) - len(self._pending) % block
        if tail:
            self._add(self._level(memoryview(self._pending)[:tail]))
        if self._merged:
            self._levels.append(self._partial)
            self._merged = 0
        return bytes(self._levels)

    @property
    def seconds_per_level(self) -> float:
        return BUCKET_SECONDS * self._merge

    def _configure(self, header: bytes) -> bool:
        fmt = wav_format(header)
        if fmt is None:
            return False
        tag, channels, rate, block, bits = fmt
        if tag == _GSM and channels == 1 and block == _GSM_BLOCK and rate:
            self._decode, self._gsm = "gsm", _GsmDecoder(header)
            self._channels, self._peaks = 1, [0]
            self._bucket = max(1, round(rate * BUCKET_SECONDS))  # in samples
            return True
        if not (channels and rate and block and bits) or block < channels * (bits // 8):
            return False
        self._block_align = block
        self._channels, self._peaks = channels, [0] * channels
        frames = max(1, round(rate * BUCKET_SECONDS))
        self._bucket = frames * block
        width = bits // 8
        if tag == _MULAW and bits == 8:
            self._decode, self._table = "table", _MULAW_LEVELS
        elif tag == _ALAW and bits == 8:
            self._decode, self._table = "table", _ALAW_LEVELS
        elif tag == _PCM and bits == 8:
            self._decode, self._table = "table", _UNSIGNED
        elif tag == _PCM and bits in (16, 24, 32) and block == channels * width:
            # The top byte of each little-endian sample is its level to 1/128: a slice and a
            # table in C, where reading every sample as a number costs 10x (40 MB/s on
            # the loop, seen holding up concurrent uploads).
            self._decode, self._table = "table", _SIGNED
            self._stride, self._offset = width, width - 1
        elif tag == _FLOAT and bits == 32 and block == channels * 4:
            self._decode = "float32"
        else:
            return False
        return True

    def channel_peaks(self) -> tuple[int, ...] | None:
        """Each channel's loudest level over the whole call (after ``levels()``), or None
        when the audio is not a format decoded here."""
        if self._unsupported or self._decode is None:
            return None
        return tuple(self._peaks)

    def _level(self, data: memoryview) -> int:
        if not data:
            return 0
        if self._decode == "table":
            # Each channel's samples (their top byte): one slice and a table each, in C.
            width, block = self._stride, self._block_align
            peaks = [max(bytes(data[c * width + self._offset::block]).translate(self._table),
                         default=0) for c in range(self._channels)]
        else:
            floats = array("f")
            floats.frombytes(data[:len(data) - len(data) % 4])
            if sys.byteorder == "big":
                floats.byteswap()
            peaks = [_float_level(floats[c::self._channels]) for c in range(self._channels)]
        for c, peak in enumerate(peaks):
            if peak > self._peaks[c]:
                self._peaks[c] = peak
        return max(peaks)

    def _feed_gsm(self, final: bool) -> None:
        """Decodes the whole blocks received; levels per bucket of samples, the samples of
        an unfinished bucket kept for the next blocks (or, at the end, as the last)."""
        run = self._gsm.run_length(len(self._pending), final)
        if run:
            self._gsm.decode(bytes(self._pending[:run]))
            del self._pending[:run]
        if self._gsm.failed:
            # Nothing is known of this audio, not even silence; nothing more is kept.
            self._unsupported = True
            self._pending.clear()
            return
        for peak in self._gsm.bucket_peaks(self._bucket, final):
            level = min(255, peak >> 7)
            self._peaks[0] = max(self._peaks[0], level)
            self._add(level)

    def _add(self, level: int) -> None:
        self._partial = max(self._partial, level) if self._merged else level
        self._merged += 1
        if self._merged < self._merge:
            return
        self._levels.append(self._partial)
        self._merged = 0
        if len(self._levels) >= MAX_LEVELS:
            self._levels = bytearray(max(self._levels[i:i + 2])
                                     for i in range(0, len(self._levels), 2))
            self._merge *= 2


class _GsmDecoder:
    """GSM 6.10 blocks to samples, by libsndfile: each run of whole blocks is handed to it
    as a WAV of its own (the upload's format, the size set to the run), so that no more
    than a chunk's worth is ever held. A run begins with the last blocks of the one before,
    whose samples are dropped: the decoder's state then carries over nearly as in one
    decode of the whole file (8 blocks: within 2 of 255 levels, measured on sweeps), so
    how the upload was cut changes (almost) nothing. libsndfile decodes blocks in pairs:
    runs are of an even number of blocks, but the last."""

    LEAD_BLOCKS = 8
    MIN_RUN = 32  # blocks per run but the last: the lead's share of the work stays small
    SAMPLES_PER_BLOCK = 320

    def __init__(self, header: bytes) -> None:
        fmt = _chunk(header, b"fmt ")
        self._fmt = b"fmt " + struct.pack("<I", len(fmt)) + fmt if fmt is not None else b""
        self._lead = b""
        self._samples = np.zeros(0, dtype=np.int32)
        # Blocks libsndfile refused: nothing is known of the audio, not even silence.
        self.failed = False

    def run_length(self, available: int, final: bool) -> int:
        """How many of ``available`` bytes to decode now."""
        blocks = available // _GSM_BLOCK
        if not final:
            blocks = 0 if blocks < self.MIN_RUN else blocks - blocks % 2
        return blocks * _GSM_BLOCK

    def decode(self, blocks: bytes) -> None:
        data = self._lead + blocks
        body = self._fmt + b"data" + struct.pack("<I", len(data)) + data
        try:
            decoded, _ = soundfile.read(
                io.BytesIO(b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WAVE" + body),
                dtype="int16", always_2d=False)
        except (RuntimeError, ValueError):  # libsndfile's errors are RuntimeErrors
            self.failed = True
            return
        start = len(self._lead) // _GSM_BLOCK * self.SAMPLES_PER_BLOCK
        fresh = decoded[start:start + len(blocks) // _GSM_BLOCK * self.SAMPLES_PER_BLOCK]
        self._lead = data[-self.LEAD_BLOCKS * _GSM_BLOCK:]
        self._samples = np.concatenate([self._samples, np.abs(fresh.astype(np.int32))])

    def bucket_peaks(self, size: int, final: bool) -> list[int]:
        whole = len(self._samples) - len(self._samples) % size
        peaks = [int(p) for p in self._samples[:whole].reshape(-1, size).max(axis=1)] \
            if whole else []
        self._samples = self._samples[whole:]
        if final and len(self._samples):
            peaks.append(int(self._samples.max()))
            self._samples = self._samples[:0]
        return peaks


def _float_level(samples: array[float]) -> int:
    if not samples:
        return 0
    peak = max(max(samples), -min(samples))
    return min(255, int(peak * 255)) if peak == peak else 0  # NaN: silence


# A channel whose loudest moment stays under this level (3/255, about -38 dBFS) carried no
# one's voice: digital silence, or the hiss of a line nobody spoke on.
SILENT_LEVEL = 3


def silence_check(peaks: tuple[int, ...] | None) -> str | None:
    """``silent`` (every channel), ``one_sided`` (a channel of a multi-channel recording,
    e.g. the customer's side never recorded), ``ok``, or None: not a format decoded here."""
    if peaks is None:
        return None
    heard = [peak > SILENT_LEVEL for peak in peaks]
    if not any(heard):
        return "silent"
    return "ok" if all(heard) else "one_sided"


def _chunk(header: bytes, wanted: bytes) -> bytes | None:
    """The body of a RIFF chunk of the header, when all of it is there."""
    offset = 12
    while offset + 8 <= len(header):
        chunk_id = header[offset:offset + 4]
        (length,) = struct.unpack_from("<I", header, offset + 4)
        body = offset + 8
        if chunk_id == wanted:
            return header[body:body + length] if body + length <= len(header) else None
        offset = body + length + (length & 1)
    return None


def wav_format(header: bytes) -> tuple[int, int, int, int, int] | None:
    """(format tag, channels, rate, block align, bits) of a WAV header, the sub-format's
    tag for WAVE_FORMAT_EXTENSIBLE; None when there is no whole fmt chunk."""
    fmt = _chunk(header, b"fmt ")
    if fmt is None or len(fmt) < 16:
        return None
    tag, channels, rate, _, block, bits = struct.unpack_from("<HHIIHH", fmt)
    if tag == _EXTENSIBLE and len(fmt) >= 26:
        (tag,) = struct.unpack_from("<H", fmt, 24)  # the sub-format
    return tag, channels, rate, block, bits


def seal(dek: bytes, recording_id: str, levels: bytes, seconds_per_level: float) -> bytes:
    plain = struct.pack(">d", seconds_per_level) + levels
    return sealing.seal(dek, _INFO, recording_id, plain)


def open_sealed(dek: bytes, recording_id: str, sealed: bytes) -> tuple[float, bytes]:
    """(seconds per level, levels); raises cryptography's InvalidTag when not ours."""
    plain = sealing.open_sealed(dek, _INFO, recording_id, sealed, "waveform")
    (seconds,) = struct.unpack_from(">d", plain)
    return seconds, plain[8:]


def resampled(levels: bytes, points: int) -> list[int]:
    """At most ``points`` levels, each the loudest of the ones it stands for."""
    if len(levels) <= points:
        return list(levels)
    step = len(levels) / points
    return [max(levels[int(i * step):max(int((i + 1) * step), int(i * step) + 1)])
            for i in range(points)]
