"""What measuring an upload's levels (waveform, silence check) costs the event loop, per
format: seconds of work per hour of audio, fed in 64 KiB chunks as an upload arrives, and
each format's cost against 16-bit PCM's in the same run. GSM 6.10 is decoded by
libsndfile; the others by tables in the service.

Run: .venv/bin/python bench/decode.py [--minutes N]  (sox makes the audio)
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from recordings_service.waveform import PeakMeter

FORMATS = {"pcm16": ["-b", "16"], "mu-law": ["-e", "u-law", "-b", "8"],
           "gsm": ["-e", "gsm-full-rate"]}
CHUNK = 64 * 1024


def measure(audio: bytes) -> float:
    meter = PeakMeter()
    started = time.perf_counter()
    for at in range(0, len(audio), CHUNK):
        meter.feed(audio[at:at + CHUNK])
    meter.levels()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=10.0)
    args = parser.parse_args()
    seconds = args.minutes * 60
    costs = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, options in FORMATS.items():
            path = Path(tmp) / f"{name}.wav"
            subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", *options, str(path),
                            "synth", str(seconds), "sine", "300-3000"], check=True)
            audio = path.read_bytes()
            costs[name] = min(measure(audio) for _ in range(3))
            print(f"{name:7} {len(audio) / 1e6:7.1f} MB  {costs[name] / seconds * 3600:6.2f} s "
                  f"per hour of audio  ({costs[name] / costs['pcm16']:.1f}x pcm16)")


if __name__ == "__main__":
    main()
