"""An upload that sends part of its body and then nothing: what a stalled PBX (or a
client holding a slot on purpose) makes the service hold. Used by the memory test and
bench/memory.py."""

from __future__ import annotations

import asyncio

SENT = 1_500_000


async def stalled_upload(host: str, port: int, token: str, call_id: str, audio: bytes,
                         release: asyncio.Event,
                         sent: asyncio.Event | None = None) -> None:
    """A PUT of ``audio`` that sends its first 1.5 MB, then nothing until ``release``;
    ``sent`` is set once all those bytes have left this process for the socket."""
    _, writer = await asyncio.open_connection(host, port)
    writer.transport.set_write_buffer_limits(high=0)  # drain() returns once all is sent
    writer.write((f"PUT /v1/calls/{call_id}/recording?started_at=2026-11-24T09:00:00Z"
                  f"&purpose=training HTTP/1.1\r\nHost: x\r\n"
                  f"Authorization: Bearer {token}\r\n"
                  f"Content-Length: {len(audio)}\r\n\r\n").encode() + audio[:SENT])
    await writer.drain()
    if sent is not None:
        sent.set()
    await release.wait()
    writer.transport.abort()
