"""Memory does not grow with the size of an upload or a stream."""

from __future__ import annotations

import hashlib
import struct
import tracemalloc
from collections.abc import AsyncIterator

import pytest

from tests.conftest import Api

MB = 1024 * 1024


def _wav_header(data_size: int) -> bytes:
    return (b"RIFF" + struct.pack("<I", 36 + data_size) + b"WAVEfmt "
            + struct.pack("<IHHIIHH", 16, 1, 1, 8000, 16000, 2, 16)
            + b"data" + struct.pack("<I", data_size))


async def _body(size: int, digest: hashlib._Hash) -> AsyncIterator[bytes]:
    header = _wav_header(size - 44)
    digest.update(header)
    yield header
    block = bytes(range(256)) * 1024  # 256 KiB
    remaining = size - 44
    while remaining:
        chunk = block[: min(len(block), remaining)]
        digest.update(chunk)
        remaining -= len(chunk)
        yield chunk


async def _peak_for(api: Api, size: int, call_id: str) -> tuple[int, int, int]:
    digest = hashlib.sha256()
    tracemalloc.start()
    try:
        response = await api.client.put(
            f"/v1/calls/{call_id}/recording", data=_body(size, digest),
            params={"started_at": "2026-11-24T09:00:00Z", "purpose": "training",
                    "customer_id": f"subject-{call_id}"},
            headers=api.auth("ingest"))
        assert response.status == 201, await response.text()
        rec = await response.json()
        upload_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        streamed = hashlib.sha256()
        async with api.client.get(f"/v1/recordings/{rec['id']}/audio",
                                  headers={**api.auth("supervisor"),
                                           "Access-Purpose": "training"}) as audio:
            async for chunk in audio.content.iter_chunked(256 * 1024):
                streamed.update(chunk)
        stream_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        exported = 0
        async with api.client.post(f"/v1/subjects/subject-{call_id}/export",
                                   headers=api.auth("compliance")) as zipped:
            assert zipped.status == 200
            async for chunk in zipped.content.iter_chunked(256 * 1024):
                exported += len(chunk)
        export_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert rec["sha256"] == digest.hexdigest() == streamed.hexdigest()
    assert exported > size
    return upload_peak, stream_peak, export_peak


@pytest.mark.slow
async def test_peak_memory_is_flat_from_20_mb_to_200_mb(api: Api) -> None:
    small_upload, small_stream, small_export = await _peak_for(api, 20 * MB, "small")
    big_upload, big_stream, big_export = await _peak_for(api, 200 * MB, "big")
    print(f"peak traced memory: upload 20 MB {small_upload / MB:.1f} MiB, "
          f"200 MB {big_upload / MB:.1f} MiB; stream 20 MB {small_stream / MB:.1f} MiB, "
          f"200 MB {big_stream / MB:.1f} MiB; export 20 MB {small_export / MB:.1f} MiB, "
          f"200 MB {big_export / MB:.1f} MiB")
    # Ten times the data may not cost more than a few buffers more memory.
    assert big_upload < small_upload + 8 * MB
    assert big_stream < small_stream + 8 * MB
    assert big_export < small_export + 8 * MB
    assert big_upload < 32 * MB and big_stream < 32 * MB and big_export < 32 * MB
