"""A private SoftHSM2 token for the tests: its own SOFTHSM2_CONF and token directory."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

MODULE = "/usr/lib/softhsm/libsofthsm2.so"
PIN = "1234-test-pin"
TOKEN = "recordings-test"


@dataclass(frozen=True)
class SoftHsm:
    conf: Path
    module: str = MODULE
    token_label: str = TOKEN
    pin: str = PIN

    def env(self) -> dict[str, str]:
        return {"SOFTHSM2_CONF": str(self.conf), "RECORDINGS_PKCS11_PIN": self.pin}

    def config_text(self, key_label: str = "recordings-root") -> str:
        return (f'[keys]\nbackend = "pkcs11"\n[keys.pkcs11]\nmodule = "{self.module}"\n'
                f'token_label = "{self.token_label}"\nkey_label = "{key_label}"\n')


def make_token(directory: Path) -> SoftHsm:
    """A fresh token; skipped where SoftHSM2 is not installed, unless CI says it must be
    (RECORDINGS_TEST_REQUIRE_HSM=1)."""
    if not Path(MODULE).exists() or shutil.which("softhsm2-util") is None:
        if os.environ.get("RECORDINGS_TEST_REQUIRE_HSM") == "1":
            pytest.fail("SoftHSM2 is required here (apt-get install softhsm2)")
        pytest.skip("SoftHSM2 is not installed (apt-get install softhsm2)")
    tokens = directory / "tokens"
    tokens.mkdir(parents=True)
    conf = directory / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\n"
                    f"log.level = ERROR\nslots.removable = false\n")
    subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", TOKEN,
                    "--so-pin", "5678-test-so", "--pin", PIN], check=True,
                   capture_output=True, env={**os.environ, "SOFTHSM2_CONF": str(conf)})
    return SoftHsm(conf)


@pytest.fixture
def softhsm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SoftHsm:
    """A token, with SOFTHSM2_CONF pointing at it for this process."""
    hsm = make_token(tmp_path / "hsm")
    monkeypatch.setenv("SOFTHSM2_CONF", str(hsm.conf))
    return hsm
