"""Who heard a call: each listening with the parts of the call it was really sent, even
when the listener leaves in the middle of a range."""

from __future__ import annotations

import asyncio

from tests.audio import long_wav
from tests.conftest import Api


async def _leave_after(api: Api, recording_id: str, first_bytes: int) -> None:
    """A player that asks for everything from the start, takes a little and goes."""
    reader, writer = await asyncio.open_connection(api.client.host, api.client.port)
    writer.write((f"GET /v1/recordings/{recording_id}/audio HTTP/1.1\r\nHost: x\r\n"
                  f"Authorization: Bearer {api.tokens['supervisor']}\r\n"
                  f"Access-Purpose: training\r\nRange: bytes=0-\r\n\r\n").encode())
    await writer.drain()
    await reader.readexactly(first_bytes)
    writer.transport.abort()


async def test_who_heard_a_call_and_which_parts(api: Api) -> None:
    audio = long_wav(120)  # 23 MB: far more than the sockets between us hold
    rec = await api.uploaded(audio, call_id="heard-1", purposes=["training", "legal_protection"])
    rid, size = rec["id"], len(audio)
    # The last quarter, whole; then from the start, left after a few hundred kilobytes.
    whole = await api.audio(rid, "training", "supervisor",
                            headers={"Range": f"bytes={size * 3 // 4}-"})
    assert whole.status == 206 and len(await whole.read()) == size - size * 3 // 4
    await _leave_after(api, rid, 300_000)
    for _ in range(200):
        if await api.audit(recording_id=rid, action="stream_cut"):
            break
        await asyncio.sleep(0.05)
    cut = await api.audit(recording_id=rid, action="stream_cut")
    assert len(cut) == 1 and cut[0]["actor"] == "supervisor"
    served = cut[0]["detail"]["served"]
    assert served[0] == 0 and 300_000 <= served[1] < size // 4

    status, body = await api.call("GET", f"/v1/recordings/{rid}/listenings", role="auditor")
    assert status == 200
    [listening] = body["items"]
    assert (listening["actor"], listening["purpose"], listening["requests"]) == \
        ("supervisor", "training", 2)
    assert listening["byte_ranges"] == [[0, served[1]], [size * 3 // 4, size - 1]]
    # As time: the last quarter of two minutes, and the part of the start it was sent.
    assert abs(listening["seconds_heard"] - (30 + 120 * (served[1] + 1) / size)) < 0.2
    assert listening["seconds"][1] == [90.0, 120.0]
    # Reading it is itself in the log; a supervisor may not read it.
    reads = await api.audit(action="audit_read")
    assert [r["actor"] for r in reads
            if r["detail"]["filter"] == {"recording_id": rid, "view": "listenings"}] == ["auditor"]
    status, _ = await api.call("GET", f"/v1/recordings/{rid}/listenings", role="supervisor")
    assert status == 403
    status, _ = await api.call("GET", "/v1/recordings/rec_nosuch/listenings", role="auditor")
    assert status == 404
