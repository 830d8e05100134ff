"""What a redaction costs against the upload of the same call, in one run: a call of N
minutes (16-bit mono at 8 kHz) is uploaded, then 30 s of it redacted (silence), then
another 30 s (tone): each redaction reads, rewrites and re-encrypts the whole call and
checks it against the upload's commitment.

Run: .venv/bin/python bench/redaction.py [--minutes N]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import MB, service, wav_bytes


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=60.0)
    args = parser.parse_args()
    size = int(args.minutes * 60 * 16000) + 44
    audio = wav_bytes(size, seed=7)
    with service(workers=1) as svc:
        started = time.perf_counter()
        recording_id = svc.upload(audio, "bench-redaction")
        upload = time.perf_counter() - started
        took = []
        for start_s, fill in ((60, "silence"), (300, "tone")):
            body = json.dumps({"spans": [{"start_ms": start_s * 1000,
                                          "end_ms": (start_s + 30) * 1000}],
                               "reason": "pci", "fill": fill}).encode()
            request = urllib.request.Request(
                f"{svc.url}/v1/recordings/{recording_id}/redactions", data=body,
                method="POST", headers={"Authorization": f"Bearer {svc.tokens['compliance']}",
                                        "Content-Type": "application/json"})
            started = time.perf_counter()
            with urllib.request.urlopen(request, timeout=600) as response:
                assert response.status == 201
            took.append(time.perf_counter() - started)
    print(f"call: {args.minutes:.0f} min, {size / MB:.0f} MB")
    print(f"upload: {upload:.2f} s ({size / MB / upload:.0f} MB/s)")
    for n, seconds in enumerate(took, 1):
        print(f"redaction {n}: {seconds:.2f} s ({size / MB / seconds:.0f} MB/s), "
              f"{seconds / upload:.2f}x the upload")


if __name__ == "__main__":
    main()
