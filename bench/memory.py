"""6. Memory: peak RSS of the service above idle during a 1 GB upload and during 64
concurrent streams of a 200 MB recording; and RSS with 64 stalled uploads (1.5 MB of each
sent, then nothing) against the same process idle, in a second service of one process.

Run: .venv/bin/python bench/memory.py [--seconds N]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp
from common import MB, Service, figure, service, wav_bytes, wrk
from ingest import _chunks, _put

from tests.stalls import stalled_upload


class PeakRss:
    """Samples the service's resident set size every 20 ms in a thread."""

    def __init__(self, svc: Service) -> None:
        self.svc = svc
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.svc.rss_kib())
            time.sleep(0.02)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


async def upload_1gb(svc: Service) -> None:
    template = wav_bytes(MB, 7)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=900)) as session:
        await _put(session, svc, "one-gigabyte",
                   _chunks((template[:44], template[44:] + template[44:88]), 1024 * MB))


async def stalled_uploads(svc: Service, count: int = 64) -> tuple[int, int]:
    """RSS (KiB) idle after one warm-up upload, and with ``count`` uploads stalled."""
    audio = wav_bytes(2 * MB, 3)
    svc.upload(audio, "warm-up")
    await asyncio.sleep(1)
    idle = svc.rss_kib()
    release, sent = asyncio.Event(), [asyncio.Event() for _ in range(count)]
    port = int(svc.url.rsplit(":", 1)[1])
    stalled = [asyncio.ensure_future(stalled_upload("127.0.0.1", port, svc.tokens["ingest"],
                                                    f"stalled-{i}", audio, release,
                                                    sent[i]))
               for i in range(count)]
    # A fixed wait undercounts on a slow host: wait until every client has sent its part.
    await asyncio.gather(*(each.wait() for each in sent))
    await asyncio.sleep(1)  # the service reads the last of it from the socket
    held = svc.rss_kib()
    release.set()
    await asyncio.gather(*stalled)
    return idle, held


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=8)
    args = parser.parse_args()
    with service() as svc:
        rid = svc.upload(wav_bytes(200 * MB, 5), "stream-me")
        time.sleep(1)
        idle = svc.rss_kib()
        with PeakRss(svc) as upload_peak:
            asyncio.run(upload_1gb(svc))
        with PeakRss(svc) as stream_peak:
            result = wrk(svc.url, 64, args.seconds, threads=2, headers={
                "Authorization": f"Bearer {svc.tokens['supervisor']}",
                "Access-Purpose": "training"}, lua=(
                f'request = function() return wrk.format("GET", '
                f'"/v1/recordings/{rid}/audio") end\n'))
    up = (upload_peak.peak - idle) / 1024
    st = (stream_peak.peak - idle) / 1024
    print(f"idle RSS: {idle / 1024:.0f} MiB; streams served: {result.bytes_per_s / MB:.0f} MB/s,"
          f" errors {result.errors}")
    print(figure("6. RSS above idle during a 1 GB upload", f"{up:.0f} MiB", "< 150 MB",
                 up * 1.048576 < 150))
    print(figure("6. RSS above idle during 64 streams of 200 MB", f"{st:.0f} MiB", "< 150 MB",
                 st * 1.048576 < 150))
    limits = ("[limits]\nbody_idle_timeout_seconds = 120\nbody_min_bytes_per_second = 0\n"
              "max_uploads_per_client = 64\n")
    with service(limits, workers=1) as svc:
        idle, held = asyncio.run(stalled_uploads(svc))
    print(figure("6. RSS with 64 stalled uploads / idle",
                 f"{held / idle:.2f} ({idle / 1024:.0f} -> {held / 1024:.0f} MiB, "
                 f"{(held - idle) / 64:.0f} KiB each)", "< 1.4", held / idle < 1.4))


if __name__ == "__main__":
    main()
