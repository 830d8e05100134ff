"""Shared pieces of the benchmarks: run the real service, nginx and wrk on loopback.

Every server started here listens on 127.0.0.1 only and is stopped when the script ends;
every load run is bounded in time.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

MB = 1024 * 1024
# Serve processes and nginx workers: one per core, as each would be run on this machine.
WORKERS = os.cpu_count() or 1


def cpu_seconds(names: tuple[str, ...], pids: dict[str, int]) -> dict[str, float]:
    """CPU time (user + system) used so far by every process whose command is one of
    ``names`` (``/proc/<pid>/comm``), summed per name (what a database server or a store
    on the same machine spends for the service), and by each of ``pids`` by its name."""
    tick = os.sysconf("SC_CLK_TCK")
    used = dict.fromkeys([*names, *pids], 0.0)
    wanted = {str(pid): name for name, pid in pids.items()}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue  # gone meanwhile
        comm = text[text.index("(") + 1:text.rindex(")")]
        fields = text[text.rindex(")") + 2:].split()
        name = wanted.get(stat.parent.name) or (comm if comm in names else None)
        if name is not None:
            used[name] += (int(fields[11]) + int(fields[12])) / tick
    return used


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wav_bytes(size: int, seed: int) -> bytes:
    """A WAV file of ``size`` bytes of pseudo-random 16-bit samples."""
    import random
    import struct

    data = random.Random(seed).randbytes(size - 44)
    header = (b"RIFF" + struct.pack("<I", size - 8) + b"WAVEfmt "
              + struct.pack("<IHHIIHH", 16, 1, 1, 8000, 16000, 2, 16)
              + b"data" + struct.pack("<I", len(data)))
    return header + data


@dataclass
class Service:
    url: str
    pid: int
    data_dir: Path
    tokens: dict[str, str]

    def cli(self, *args: str) -> str:
        return subprocess.run([sys.executable, "-m", "recordings_service", *args,
                               "--data-dir", str(self.data_dir)], check=True,
                              capture_output=True, text=True).stdout

    def rss_kib(self) -> int:
        """Resident memory of the serve process and its extra workers together."""
        pids = [self.pid, *map(int, Path(f"/proc/{self.pid}/task/{self.pid}/children")
                               .read_text().split())]
        total = 0
        for pid in pids:
            match = re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
            total += int(match.group(1)) if match else 0
        return total

    def upload(self, audio: bytes, call_id: str, customer_id: str = "bench") -> str:
        request = urllib.request.Request(
            f"{self.url}/v1/calls/{call_id}/recording?started_at=2026-11-24T09:00:00Z"
            f"&purpose=training&purpose=legal_protection&customer_id={customer_id}",
            data=audio, method="PUT",
            headers={"Authorization": f"Bearer {self.tokens['ingest']}"})
        with urllib.request.urlopen(request, timeout=300) as response:
            return str(json.load(response)["id"])


def _listening_pids(port: int) -> set[str]:
    out = subprocess.run(["ss", "-ltnpH", f"( sport = :{port} )"], capture_output=True,
                         text=True, check=False).stdout
    return set(re.findall(r"pid=(\d+)", out))


@contextlib.contextmanager
def service(extra_config: str = "", tokens: dict[str, str] | None = None,
            workers: int = WORKERS,
            event_loop: str = os.environ.get("BENCH_EVENT_LOOP", "asyncio"),
            scheduler: bool = False) -> Iterator[Service]:
    """``serve`` on a new data directory (the catalog and blob store are the environment's:
    RECORDINGS_DATABASE_URL, RECORDINGS_BLOB_STORE…); ``tokens`` when they exist already
    (a second replica on a shared catalog)."""
    root = Path(tempfile.mkdtemp(prefix="bench-svc-", dir="/work" if os.path.isdir("/work")
                                 else None))
    data = root / "data"
    config = root / "bench.toml"
    # One serve process per core, as an operator would run it on this machine.
    config.write_text(f"[server]\nworkers = {workers}\nevent_loop = \"{event_loop}\"\n"
                      f"[scheduler]\nenabled = {str(scheduler).lower()}\n"
                      "[logging]\nlevel = \"WARNING\"\n"
                      + extra_config)
    port = free_port()
    if tokens is None:
        tokens = {}
        for role in ("ingest", "supervisor", "compliance"):
            out = subprocess.run([sys.executable, "-m", "recordings_service", "tokens",
                                  "create", "--name", role, "--role", role, "--data-dir",
                                  str(data), "--config", str(config)],
                                 check=True, capture_output=True, text=True).stdout
            tokens[role] = out.strip().splitlines()[-1]
    process = subprocess.Popen(
        [sys.executable, "-m", "recordings_service", "serve", "--data-dir", str(data),
         "--config", str(config), "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(f"{url}/readyz", timeout=1)
                break
            except OSError:
                time.sleep(0.05)
        # The first process answers before its extra workers listen: wait for them, or the
        # first measurement runs on one process.
        for _ in range(300):
            if len(_listening_pids(port)) >= workers:
                break
            time.sleep(0.05)
        yield Service(url, process.pid, data, tokens)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def nginx(root: Path) -> Iterator[str]:
    """Debian's nginx serving ``root`` on a loopback port, with a config written here."""
    # nginx's workers run as an unprivileged user: let them read the files.
    root.chmod(0o755)
    for path in root.iterdir():
        path.chmod(0o644)
    port = free_port()
    work = Path(tempfile.mkdtemp(prefix="bench-nginx-"))
    conf = work / "nginx.conf"
    conf.write_text(f"""
worker_processes {WORKERS};
daemon off;
pid {work}/nginx.pid;
error_log {work}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nodelay on;
    client_body_temp_path {work}/body;
    proxy_temp_path {work}/proxy;
    fastcgi_temp_path {work}/fastcgi;
    uwsgi_temp_path {work}/uwsgi;
    scgi_temp_path {work}/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location / {{ }}
    }}
}}
""")
    process = subprocess.Popen(["nginx", "-c", str(conf), "-p", str(work)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(url, timeout=1)
            except urllib.error.HTTPError:
                break
            except OSError:
                time.sleep(0.05)
            else:
                break
        yield url
    finally:
        process.terminate()
        process.wait(10)
        shutil.rmtree(work, ignore_errors=True)


@dataclass
class WrkResult:
    requests_per_s: float
    bytes_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}
_SIZES = {"B": 1, "KB": 1024, "MB": MB, "GB": 1024 * MB}


def wrk(url: str, connections: int, seconds: int, headers: dict[str, str] | None = None,
        lua: str | None = None, threads: int = 1) -> WrkResult:
    args = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s",
            "--latency", "--timeout", "30s"]
    for name, value in (headers or {}).items():
        args += ["-H", f"{name}: {value}"]
    script = None
    if lua:
        script = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)  # noqa: SIM115
        script.write(lua)
        script.close()
        args += ["-s", script.name]
    out = subprocess.run([*args, url], capture_output=True, text=True, check=True,
                         timeout=seconds + 60).stdout
    if script:
        os.unlink(script.name)

    def latency(pct: str) -> float:
        match = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.M)
        return float(match.group(1)) * _UNITS[match.group(2)] if match else float("nan")

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    transfer = re.search(r"Transfer/sec:\s+([\d.]+)(B|KB|MB|GB)", out)
    bps = float(transfer.group(1)) * _SIZES[transfer.group(2)] if transfer else 0.0
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors += int(non2xx.group(1)) if non2xx else 0
    return WrkResult(rps, bps, latency("50"), latency("99"), errors)


def figure(name: str, value: str, target: str, met: bool | None) -> str:
    verdict = "" if met is None else ("  [target met]" if met else "  [TARGET MISSED]")
    return f"{name}: {value} (target {target}){verdict}"
