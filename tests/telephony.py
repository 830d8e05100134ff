"""Real telephony for the uploader's end-to-end tests: baresip (Debian ``baresip-core``)
answers on 127.0.0.1 and records each call leg to WAV into a spool directory; sipp
(Debian ``sip-tester``) places a call that sends G.711 A-law RTP from a capture.
Skipped where either is missing, unless CI says they must run
(RECORDINGS_TEST_REQUIRE_TELEPHONY=1)."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.helpers import free_port

PCAP = Path("/usr/share/sip-tester/g711a.pcap")
# The uac_pcap scenario also sends a DTMF digit from this capture.
DTMF_PCAP = Path("/usr/share/sip-tester/dtmf_2833_1.pcap")

BARESIP_CONFIG = """\
poll_method\t\tepoll
sip_listen\t\t127.0.0.1:{sip_port}
call_local_timeout\t120
audio_player\t\taubridge,rec
audio_source\t\taubridge,rec
audio_alert\t\taubridge,rec
audio_srate\t\t8000
audio_channels\t\t1
rtp_ports\t\t{rtp_low}-{rtp_high}
module_path\t\t/usr/lib/baresip/modules
module\t\t\tg711.so
module\t\t\taubridge.so
module\t\t\tsndfile.so
module_app\t\taccount.so
module_app\t\tmenu.so
snd_path\t\t{spool}
"""


def require_telephony() -> None:
    missing = [tool for tool in ("baresip", "sipp") if shutil.which(tool) is None]
    if missing or not PCAP.exists() or not DTMF_PCAP.exists():
        if os.environ.get("RECORDINGS_TEST_REQUIRE_TELEPHONY") == "1":
            pytest.fail("baresip and sipp are required here "
                        "(apt-get install baresip-core sip-tester)")
        pytest.skip("baresip or sipp is not installed (apt-get install baresip-core sip-tester)")


@dataclass(frozen=True)
class Recorder:
    """A baresip that auto-answers calls to ``sip:rec@127.0.0.1:<sip_port>``."""

    sip_port: int
    work: Path

    def _scenario(self) -> tuple[Path, Path]:
        """sipp's own uac_pcap scenario and the captures it plays, in a work directory."""
        run = self.work / "sipp"
        (run / "pcap").mkdir(parents=True, exist_ok=True)
        for capture in (PCAP, DTMF_PCAP):
            link = run / "pcap" / capture.name
            if not link.exists():
                link.symlink_to(capture)
        scenario = run / "uac_pcap.xml"
        if not scenario.exists():
            dumped = subprocess.run(["sipp", "-sd", "uac_pcap"], capture_output=True,
                                    text=True, check=False)
            scenario.write_text(dumped.stdout)
        return run, scenario

    async def call(self) -> str:
        """One call from sipp with A-law RTP; sipp's summary."""
        run, scenario = self._scenario()
        process = await asyncio.create_subprocess_exec(
            "sipp", "-sf", str(scenario), f"127.0.0.1:{self.sip_port}", "-s", "rec",
            "-i", "127.0.0.1", "-p", str(free_port()), "-mp", str(_even_free_port()),
            "-m", "1", "-timeout", "60s", "-trace_err", cwd=run,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT)
        out, _ = await asyncio.wait_for(process.communicate(), 90)
        assert process.returncode == 0, out.decode(errors="replace")[-2000:]
        return out.decode(errors="replace")


def _even_free_port() -> int:
    """RTP wants an even port (RTCP takes the next one). Linux gives bind() odd ports."""
    for _ in range(100):
        port = free_port() - 1
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                udp.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
    raise AssertionError("no even UDP port is free")


def _sip_port() -> int:
    """A port for baresip below the ephemeral range, free for UDP and TCP, with the next
    one free for TCP too: baresip also listens for SIP over TLS on port + 1, and a port
    taken from the ephemeral range had that neighbour in use by some client connection
    now and then ("ua: init failed (Address already in use)")."""
    base = 15000 + (os.getpid() % 500) * 8
    for port in range(base, base + 4000, 2):
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp, \
                    socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp, \
                    socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tls:
                udp.bind(("127.0.0.1", port))
                tcp.bind(("127.0.0.1", port))
                tls.bind(("127.0.0.1", port + 1))
            return port
        except OSError:
            continue
    raise AssertionError("no SIP port pair is free")


@pytest.fixture
async def recorder(tmp_path: Path) -> AsyncIterator[tuple[Recorder, Path]]:
    """A running baresip recording into a fresh spool directory."""
    require_telephony()
    spool = tmp_path / "spool"
    spool.mkdir()
    config = tmp_path / "baresip"
    config.mkdir()
    sip_port = _sip_port()
    rtp_low = 20000 + (os.getpid() % 200) * 100
    (config / "config").write_text(BARESIP_CONFIG.format(
        sip_port=sip_port, rtp_low=rtp_low, rtp_high=rtp_low + 98, spool=spool))
    (config / "accounts").write_text(
        f"<sip:rec@127.0.0.1:{sip_port}>;regint=0;answermode=auto;audio_codecs=PCMA,PCMU\n")
    (config / "contacts").write_text("")
    log = (tmp_path / "baresip.log").open("wb")
    process = await asyncio.create_subprocess_exec(
        "baresip", "-f", str(config), "-4", "-n", "127.0.0.1",
        stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log)
    try:
        for _ in range(100):
            if f"127.0.0.1:{sip_port:d}" in _udp_listeners():
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("baresip did not start listening")
        yield Recorder(sip_port, tmp_path), spool
    finally:
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            process.kill()
            await process.wait()
        log.close()


def _udp_listeners() -> set[str]:
    found = set()
    for row in Path("/proc/net/udp").read_text().splitlines()[1:]:
        local = row.split()[1]
        address, port = local.split(":")
        octets = [str(int(address[i:i + 2], 16)) for i in (6, 4, 2, 0)]
        found.add(f"{'.'.join(octets)}:{int(port, 16)}")
    return found
