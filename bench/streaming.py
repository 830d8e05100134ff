"""Streaming benchmarks against nginx serving the same plaintext from disk, in one run.

1. Throughput: 5 MB recordings, 16 concurrent clients, full GETs with a purpose.
2. Seek latency: 64 KiB ranges of a 200 MB recording (random offsets, offset 0, near the
   end), one client, p50/p99 time to last byte.
5. Audited accesses: 64 KiB range GETs, 32 concurrent clients, each committed to the
   audit log before its bytes.

Run: .venv/bin/python bench/streaming.py [--seconds N]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import MB, figure, nginx, service, wav_bytes, wrk

RANGE = 65536


def cycle_lua(paths: list[str], random_range_of: int | None = None) -> str:
    items = ", ".join(f'"{p}"' for p in paths)
    ranged = ""
    if random_range_of:
        ranged = (f'  local off = math.random(0, {random_range_of - RANGE})\n'
                  f'  wrk.headers["Range"] = "bytes=" .. off .. "-" .. (off + {RANGE - 1})\n')
    return (f"local paths = {{{items}}}\nlocal i = 0\nmath.randomseed(42)\n"
            f"request = function()\n  i = i + 1\n{ranged}"
            f"  return wrk.format(\"GET\", paths[(i % #paths) + 1])\nend\n")


def fixed_range_lua(path: str, start: int) -> str:
    return (f'wrk.headers["Range"] = "bytes={start}-{start + RANGE - 1}"\n'
            f'request = function() return wrk.format("GET", "{path}") end\n')


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=8)
    args = parser.parse_args()
    s = args.seconds
    lines: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-files-", dir="/work") as plain_dir, \
            service() as svc, nginx(Path(plain_dir)) as nginx_url:
        small = [wav_bytes(5 * MB, seed) for seed in range(8)]
        big = wav_bytes(200 * MB, 99)
        ids = [svc.upload(a, f"small-{i}") for i, a in enumerate(small)]
        big_id = svc.upload(big, "big")
        for i, a in enumerate(small):
            Path(plain_dir, f"small-{i}.wav").write_bytes(a)
        Path(plain_dir, "big.wav").write_bytes(big)
        del small, big
        # Flush the files just written now: the kernel would otherwise write them back
        # ~30 s later, in the middle of a latency measurement whose accesses each fsync.
        os.sync()
        auth = {"Authorization": f"Bearer {svc.tokens['supervisor']}",
                "Access-Purpose": "training"}
        svc_paths = [f"/v1/recordings/{rid}/audio" for rid in ids]
        nginx_paths = [f"/small-{i}.wav" for i in range(8)]

        # 1. throughput
        n1 = wrk(nginx_url, 16, s, lua=cycle_lua(nginx_paths), threads=2)
        s1 = wrk(svc.url, 16, s, headers=auth, lua=cycle_lua(svc_paths), threads=2)
        ratio = s1.bytes_per_s / n1.bytes_per_s
        lines.append(figure("1. streaming throughput service/nginx",
                            f"{s1.bytes_per_s / MB:.0f} MB/s vs {n1.bytes_per_s / MB:.0f} MB/s"
                            f" = {ratio:.2f}", ">= 0.6", ratio >= 0.6))

        # 2. seek latency at random offsets, offset 0 and near the end
        big_svc, big_nginx = f"/v1/recordings/{big_id}/audio", "/big.wav"
        seek = {}
        for label, lua_svc, lua_nginx in (
            ("random", cycle_lua([big_svc], 200 * MB), cycle_lua([big_nginx], 200 * MB)),
            ("offset 0", fixed_range_lua(big_svc, 0), fixed_range_lua(big_nginx, 0)),
            ("near end", fixed_range_lua(big_svc, 200 * MB - RANGE - 100),
             fixed_range_lua(big_nginx, 200 * MB - RANGE - 100)),
        ):
            seek[label] = (wrk(svc.url, 1, s, headers=auth, lua=lua_svc),
                           wrk(nginx_url, 1, s, lua=lua_nginx))
        for label, (sv, ng) in seek.items():
            ratio = sv.p99_ms / ng.p99_ms
            lines.append(figure(f"2. seek 64 KiB {label}: p50 service/nginx",
                                f"{sv.p50_ms:.2f} ms vs {ng.p50_ms:.2f} ms; p99 "
                                f"{sv.p99_ms:.2f} ms vs {ng.p99_ms:.2f} ms = {ratio:.1f}x",
                                "p99 <= 3x nginx", ratio <= 3))
        spread = max(v[0].p99_ms for v in seek.values()) / min(v[0].p99_ms
                                                                for v in seek.values())
        lines.append(figure("2. seek cost anywhere in the file (service p99 max/min)",
                            f"{spread:.2f}", "about 1 (constant-cost seek)", None))

        # 5. audited accesses
        s5 = wrk(svc.url, 32, s, headers=auth, lua=cycle_lua(svc_paths, 5 * MB), threads=2)
        n5 = wrk(nginx_url, 32, s, lua=cycle_lua(nginx_paths, 5 * MB), threads=2)
        ratio5 = s5.requests_per_s / n5.requests_per_s
        lines.append(figure("5. audited 64 KiB range accesses/s (32 clients)",
                            f"{s5.requests_per_s:.0f}/s (nginx, unaudited: "
                            f"{n5.requests_per_s:.0f}/s, ratio {ratio5:.2f})",
                            ">= 1500/s", s5.requests_per_s >= 1500))
        errors = s1.errors + s5.errors + sum(v[0].errors for v in seek.values())
        nginx_errors = n1.errors + n5.errors + sum(v[1].errors for v in seek.values())
        lines.append(f"errors (non-2xx, socket): service {errors}, nginx {nginx_errors}")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
