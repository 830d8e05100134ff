"""What a real ``serve`` process answers and logs for requests aiohttp cannot parse: the
same problem+json as everything else, no echo of the input, no secret or personal data in
its log."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest

from tests.integration.helpers import free_port, new_service, start_serve

TOKEN_LIKE = "rst_SECRETSECRETSECRETSECRET"
CUSTOMER = "CUST-4711-PRIVATE"
PHONE = "+358401234567"

UNPARSEABLE = {
    "content length not a number": b"POST /v1/recordings HTTP/1.1\r\nHost: x\r\n"
                                   b"Content-Length: abc\r\n\r\n",
    "header line over the limit": b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: "
                                  + b"a" * 20000 + b"\r\n\r\n",
    "control byte after a token": b"GET /v1/policies HTTP/1.1\r\nHost: x\r\n"
                                  b"Authorization: Bearer " + TOKEN_LIKE.encode()
                                  + b"\x01\x02\r\n\r\n",
    "bytes beyond a short content length": b"POST /v1/legal-holds HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: application/json\r\nContent-Length: 2\r\n\r\n"
        b'{"customer_id": "' + CUSTOMER.encode() + b'", "phone_number": "'
        + PHONE.encode() + b'"}\r\n\r\n',
    "binary request line": b"\x16\x03\x01\x02\x00" + TOKEN_LIKE.encode() + b"\r\n\r\n",
    "bare CR in a header": b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: b\rc\r\n\r\n",
    "bare LF ending a header": b"GET /healthz HTTP/1.1\r\nHost: x\nX-A: b\r\n\r\n",
    "obs-fold": b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: b\r\n  folded\r\n\r\n",
}


async def _send(port: int, raw: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw)
    await writer.drain()
    answer = b""
    try:
        while chunk := await asyncio.wait_for(reader.read(65536), 5):
            answer += chunk
    except (TimeoutError, ConnectionResetError):
        pass
    writer.close()
    return answer


@pytest.fixture
async def served(tmp_path: Path):  # type: ignore[no-untyped-def]
    data, config, _ = new_service(tmp_path, "", "auditor")
    port = free_port()
    process = await start_serve(data, config, port, stderr=asyncio.subprocess.PIPE)
    yield port, process
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.wait(), 30)


async def test_unparseable_requests_get_problem_json_and_leave_no_secret_in_the_log(
        served) -> None:  # type: ignore[no-untyped-def]
    port, process = served
    for name, raw in UNPARSEABLE.items():
        answer = await _send(port, raw)
        head = answer.partition(b"\r\n\r\n")[0]
        status_line = head.split(b"\r\n")[0]
        assert any(f" {code} ".encode() in status_line for code in (400, 401, 413)), \
            (name, answer[:300])
        assert b"application/problem+json" in head, (name, head)
        # The headers every answer carries (docs/api.md), this one too.
        for header in (b"X-Request-Id: ", b"Content-Security-Policy: default-src 'none'",
                       b"X-Content-Type-Options: nosniff"):
            assert header in head, (name, header, head)
        assert b"aiohttp" not in head.lower(), name
        for secret in (TOKEN_LIKE.encode(), CUSTOMER.encode(), PHONE.encode()):
            assert secret not in answer, name
    process.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(process.wait(), 30) == 0
    assert process.stderr is not None
    log = (await process.stderr.read()).decode(errors="replace")
    assert "request could not be parsed" in log
    for secret in (TOKEN_LIKE, CUSTOMER, PHONE):
        assert secret not in log
