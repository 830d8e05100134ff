"""Real audio made in the tests, and the small committed fixtures of other containers."""

from __future__ import annotations

import io
import math
import struct
import wave
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"


def wav_tone(seconds: float, rate: int = 8000, frequency: float = 440.0) -> bytes:
    """A mono 16-bit PCM sine tone; each call with other arguments gives other bytes."""
    frames = int(seconds * rate)
    samples = b"".join(
        struct.pack("<h", int(12000 * math.sin(2 * math.pi * frequency * i / rate)))
        for i in range(frames)
    )
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples)
    return out.getvalue()


def long_wav(seconds: int, rate: int = 48000, channels: int = 2) -> bytes:
    """A long 16-bit PCM tone made fast (one second repeated): at 192 KB a second, far
    more than a browser buffers ahead, so a seek in it asks for a new range."""
    second = b"".join(struct.pack("<h", int(9000 * math.sin(2 * math.pi * 400 * i / rate)))
                      * channels for i in range(rate))
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(second * seconds)
    return out.getvalue()


def wav_noise(size: int, seed: int = 1) -> bytes:
    """A WAV file of about ``size`` bytes of pseudo-random samples (no repeating runs)."""
    import random

    rng = random.Random(seed)
    body = rng.randbytes(max(0, size - 44) // 2 * 2)
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(body)
    return out.getvalue()


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


FORMATS = {
    "wav": ("audio/wav", lambda: wav_tone(2.0), 2.0),
    "mp3": ("audio/mpeg", lambda: fixture("tone.mp3"), 2.16),
    "opus": ("audio/ogg", lambda: fixture("tone.opus.ogg"), 2.0),
    "vorbis": ("audio/ogg", lambda: fixture("tone.vorbis.ogg"), 2.0),
    "flac": ("audio/flac", lambda: fixture("tone.flac"), 2.0),
}


def riff_wav(payload: bytes, *, format_tag: int = 1, channels: int = 1, rate: int = 8000,
             byte_rate: int = 16000, block_align: int = 2, bits: int = 16,
             riff_size: int | None = None, data_size: int | None = None,
             extra_chunks: bytes = b"") -> bytes:
    """A WAV file written by hand, so its header can say what a recorder or an attacker
    would make it say (sizes 0 or 0xFFFFFFFF, GSM 6.10, many chunks)."""
    fmt = struct.pack("<HHIIHH", format_tag, channels, rate, byte_rate, block_align, bits)
    body = (b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + extra_chunks
            + b"data" + struct.pack("<I", len(payload) if data_size is None else data_size)
            + payload)
    size = len(body) if riff_size is None else riff_size
    return b"RIFF" + struct.pack("<I", size) + body
