"""A call's waveform: the peak level of each tenth of a second, measured from the decoded
audio as it streams in at upload, sealed under the recording's own data key and served
only through a purpose-checked, audited request.

Decoded here: what PBXs write in WAV (PCM 8/16/24/32-bit, IEEE float, mu-law, A-law; any
number of channels, mixed to their loudest). Other formats get no waveform: the console
then shows a plain timeline. Each sample format becomes one byte of level per sample
through a 256-entry table or an array in C, so a chunk costs little on the event loop.
"""

from __future__ import annotations

import os
import struct
import sys
from array import array

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from recordings_service.errors import ServiceError
from recordings_service.media import HEAD, wav_audio_offset

BUCKET_SECONDS = 0.1
# Levels kept at most: past it, neighbours merge (the resolution halves), so a day-long
# file still gives a bounded waveform.
MAX_LEVELS = 100_000
_VERSION = b"\x01"
_INFO = b"recordings-service waveform v1"

_PCM, _FLOAT, _ALAW, _MULAW, _EXTENSIBLE = 1, 3, 6, 7, 0xFFFE


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
        whole = len(self._pending) - len(self._pending) % self._bucket
        view = memoryview(self._pending)
        for start in range(0, whole, self._bucket):
            self._add(self._level(view[start:start + self._bucket]))
        view.release()
        del self._pending[:whole]

    def levels(self) -> bytes | None:
        if self._unsupported or self._decode is None:
            return None
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
        fmt = _fmt_chunk(header)
        if fmt is None:
            return False
        tag, channels, rate, block, bits = fmt
        if not (channels and rate and block and bits) or block < channels * (bits // 8):
            return False
        self._block_align = block
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

    def _level(self, data: memoryview) -> int:
        if not data:
            return 0
        if self._decode == "table":
            picked = data[self._offset::self._stride] if self._stride > 1 else data
            return max(bytes(picked).translate(self._table))
        floats = array("f")
        floats.frombytes(data)
        if sys.byteorder == "big":
            floats.byteswap()
        peak = max(max(floats), -min(floats))
        return min(255, int(peak * 255)) if peak == peak else 0  # NaN: silence

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


def _fmt_chunk(header: bytes) -> tuple[int, int, int, int, int] | None:
    offset = 12
    while offset + 8 <= len(header):
        chunk_id = header[offset:offset + 4]
        (length,) = struct.unpack_from("<I", header, offset + 4)
        body = offset + 8
        if chunk_id == b"fmt " and length >= 16 and body + 16 <= len(header):
            tag, channels, rate, _, block, bits = struct.unpack_from("<HHIIHH", header, body)
            if tag == _EXTENSIBLE and length >= 40 and body + 26 <= len(header):
                (tag,) = struct.unpack_from("<H", header, body + 24)  # the sub-format
            return tag, channels, rate, block, bits
        offset = body + length + (length & 1)
    return None


def _key(dek: bytes) -> AESGCM:
    # Its own key, derived from the recording's: never the audio's key used twice.
    return AESGCM(HKDF(SHA256(), 32, salt=None, info=_INFO).derive(dek))


def seal(dek: bytes, recording_id: str, levels: bytes, seconds_per_level: float) -> bytes:
    nonce = os.urandom(12)
    plain = struct.pack(">d", seconds_per_level) + levels
    return _VERSION + nonce + _key(dek).encrypt(nonce, plain, recording_id.encode())


def open_sealed(dek: bytes, recording_id: str, sealed: bytes) -> tuple[float, bytes]:
    """(seconds per level, levels); raises cryptography's InvalidTag when not ours."""
    if sealed[:1] != _VERSION:
        raise ValueError("unknown waveform version")
    plain = _key(dek).decrypt(sealed[1:13], sealed[13:], recording_id.encode())
    (seconds,) = struct.unpack_from(">d", plain)
    return seconds, plain[8:]


def resampled(levels: bytes, points: int) -> list[int]:
    """At most ``points`` levels, each the loudest of the ones it stands for."""
    if len(levels) <= points:
        return list(levels)
    step = len(levels) / points
    return [max(levels[int(i * step):max(int((i + 1) * step), int(i * step) + 1)])
            for i in range(points)]
