"""Key custody in a PKCS#11 token (SoftHSM2): the service runs its whole key life cycle
with the root key inside the token, the key cannot be read out, and a wrong PIN stops the
start before anything is served."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pkcs11
import pytest
from pkcs11 import Attribute, ObjectClass

from recordings_service import keys
from recordings_service.app import create_app
from recordings_service.appkeys import SERVICES
from recordings_service.auth import create_token
from recordings_service.config import Config, load_config
from recordings_service.services import open_services
from storage.errors import CustodyError
from tests.audio import wav_tone
from tests.conftest import Api, FrozenClock
from tests.hsm import SoftHsm
from tests.integration.helpers import run_cli


def hsm_config(hsm: SoftHsm, tmp_path: Path, pin: str | None = None) -> Config:
    path = tmp_path / "hsm.toml"
    path.write_text(hsm.config_text())
    return load_config(path, environ={"RECORDINGS_PKCS11_PIN": pin or hsm.pin},
                       data_dir=str(tmp_path / "data")).with_overrides(scheduler_enabled=False)


async def started(aiohttp_client: Any, config: Config, clock: FrozenClock) -> Api:
    api = Api(await aiohttp_client(create_app(config, clock)), clock)
    for role in ("ingest", "supervisor", "compliance", "auditor"):
        api.tokens[role] = await create_token(api.services.database, f"{role}-{id(api)}",
                                              [role], clock())
    return api


async def test_the_whole_key_life_cycle_with_the_root_key_in_the_token(
        softhsm: SoftHsm, tmp_path: Path, aiohttp_client: Any, clock: FrozenClock) -> None:
    config = hsm_config(softhsm, tmp_path)
    api = await started(aiohttp_client, config, clock)
    a = wav_tone(0.5, frequency=330)
    b = wav_tone(0.5, frequency=550)
    rec_a = await api.uploaded(a, call_id="a")
    rec_b = await api.uploaded(b, call_id="b")
    assert (await (await api.audio(rec_a["id"], "training", "supervisor")).read()) == a
    assert not config.root_key_path.exists()  # no root key file: it is in the token

    svc = api.services
    assert await keys.rotate(svc) == 2
    assert (await keys.rewrap(svc)).rewrapped == 2
    root = await keys.rotate_root(svc)
    assert root == {"root_generation": 2, "destroyed_generations": [1]}
    status = await keys.status(svc)
    assert status["root_key"]["custody"] == "pkcs11"
    assert status["root_key"]["generations"] == [2]
    assert "recordings-root" in status["root_key"]["where"]
    status_code, _ = await api.call("DELETE", f"/v1/recordings/{rec_b['id']}",
                                    {"reason": "customer asked"})
    assert status_code == 200
    await api.client.close()

    # A restart opens the same token: what was kept plays, what was erased stays gone.
    api = await started(aiohttp_client, config, clock)
    assert api.app[SERVICES].keyring.current_version() == 2
    assert (await (await api.audio(rec_a["id"], "training", "supervisor")).read()) == a
    assert (await api.audio(rec_b["id"], "training", "supervisor")).status == 410


def test_the_root_key_cannot_be_read_out_of_the_token(softhsm: SoftHsm,
                                                      tmp_path: Path) -> None:
    assert run_cli(tmp_path / "data", "keys", "init",
                   "--config", str(_config_file(softhsm, tmp_path)),
                   env=softhsm.env()).returncode == 0
    token = pkcs11.lib(softhsm.module).get_token(token_label=softhsm.token_label)
    with token.open(user_pin=softhsm.pin) as session:
        keys_found = list(session.get_objects({Attribute.CLASS: ObjectClass.SECRET_KEY,
                                               Attribute.LABEL: "recordings-root"}))
        assert len(keys_found) == 1
        key = keys_found[0]
        assert key[Attribute.SENSITIVE] and not key[Attribute.EXTRACTABLE]
        with pytest.raises(pkcs11.PKCS11Error):
            key[Attribute.VALUE]


def _config_file(hsm: SoftHsm, tmp_path: Path) -> Path:
    path = tmp_path / "hsm.toml"
    path.write_text("[scheduler]\nenabled = false\n" + hsm.config_text())
    return path


async def test_a_wrong_pin_fails_closed_at_start(softhsm: SoftHsm, tmp_path: Path,
                                                 clock: FrozenClock) -> None:
    async with open_services(hsm_config(softhsm, tmp_path), clock):
        pass
    with pytest.raises(CustodyError) as raised:
        async with open_services(hsm_config(softhsm, tmp_path, pin="0000-wrong"), clock):
            pass
    assert "PinIncorrect" in str(raised.value) and "0000-wrong" not in str(raised.value)
    config_file = _config_file(softhsm, tmp_path)
    for command in (["serve", "--port", "0"], ["keys", "status"]):
        result = run_cli(tmp_path / "data", *command, "--config", str(config_file),
                         env=softhsm.env() | {"RECORDINGS_PKCS11_PIN": "0000-wrong"})
        assert result.returncode in (1, 2), command
        assert "PinIncorrect" in result.stderr and "0000-wrong" not in result.stderr
        assert "Traceback" not in result.stderr
    # Without any PIN the configuration itself is refused.
    result = run_cli(tmp_path / "data", "keys", "status", "--config", str(config_file),
                     env={"SOFTHSM2_CONF": str(softhsm.conf)})
    assert result.returncode == 2 and "RECORDINGS_PKCS11_PIN" in result.stderr


def test_keys_export_with_an_hsm_exports_nothing(softhsm: SoftHsm, tmp_path: Path) -> None:
    config_file = _config_file(softhsm, tmp_path)
    result = run_cli(tmp_path / "data", "keys", "export", "--out", str(tmp_path / "x"),
                     "--config", str(config_file), env=softhsm.env())
    assert result.returncode == 0 and "stays in" in result.stdout
    assert not (tmp_path / "x").exists()


