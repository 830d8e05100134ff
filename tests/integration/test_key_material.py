"""The root key and the catalog's keys: made only for a new installation, never minted
over data; a lost, damaged or wrong root key stops every command and says what to restore."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import delete, update

from recordings_service.config import Config
from recordings_service.services import Services, open_services
from storage.custody.file import FileRootKey
from storage.errors import KeyFileError
from storage.schema import key_secrets, key_versions
from tests.audio import wav_tone
from tests.conftest import Api, FrozenClock
from tests.integration.helpers import run_cli

DAMAGE = {
    "missing": None,
    "empty": b"",
    "garbage": b"\x00\xffnot a key\n",
    "truncated json": b'{"format": "recordings-root-key/1", "generations": [',
}


def _damage(path: Path, how: str) -> None:
    content = DAMAGE[how]
    if content is None:
        path.unlink()
    else:
        path.write_bytes(content)


async def test_a_new_installation_gets_a_private_root_key_and_sealed_keys(
        config: Config, clock: FrozenClock) -> None:
    async with open_services(config, clock) as services:
        first_link_secret = services.link_secret
    root_file = config.root_key_path
    assert root_file.stat().st_mode & 0o777 == 0o600
    before = root_file.read_bytes()
    async with open_services(config, clock) as services:
        assert services.link_secret == first_link_secret
        assert services.keyring.current_version() == 1
    assert root_file.read_bytes() == before
    # Nothing but the root key is key material on disk: no plaintext key files.
    assert not any((config.data_dir / n).exists()
                   for n in ("keyring.json", "audit-signing.key", "playback-link.key"))


@pytest.mark.parametrize("how", sorted(DAMAGE))
async def test_a_lost_or_damaged_root_key_stops_the_start_and_names_the_file(
        api: Api, config: Config, clock: FrozenClock, how: str) -> None:
    await api.uploaded(wav_tone(0.2))
    path = config.root_key_path
    _damage(path, how)
    with pytest.raises(KeyFileError) as raised:
        async with open_services(config, clock):
            pass
    assert str(path) in str(raised.value) and "backup" in str(raised.value)
    # Nothing was made in its place.
    if how == "missing":
        assert not path.exists()
    else:
        assert path.read_bytes() == DAMAGE[how]


async def test_a_root_key_of_another_installation_is_refused(
        api: Api, config: Config, clock: FrozenClock, tmp_path: Path) -> None:
    await api.uploaded(wav_tone(0.2))
    other = FileRootKey(tmp_path / "other.key")
    other.add_generation(first=True)
    config.root_key_path.write_bytes((tmp_path / "other.key").read_bytes())
    with pytest.raises(KeyFileError, match="Is this the root key this catalog was made with"):
        async with open_services(config, clock):
            pass


async def test_a_root_key_lost_over_a_catalog_with_only_audit_entries_is_refused(
        api: Api, config: Config, clock: FrozenClock) -> None:
    await api.call("GET", "/v1/audit", role="auditor")  # only an audit entry is stored
    config.root_key_path.unlink()
    with pytest.raises(KeyFileError, match=r"root\.key is missing"):
        async with open_services(config, clock):
            pass
    assert not config.root_key_path.exists()


async def test_readyz_fails_when_the_root_key_is_gone(api: Api, config: Config) -> None:
    await api.uploaded(wav_tone(0.2))
    assert (await api.client.get("/readyz")).status == 200
    config.root_key_path.unlink()
    # The running process keeps its unsealed keys; readiness looks at the custody.
    response = await api.client.get("/readyz")
    assert response.status == 503
    assert "keys: root key or key-encryption keys unavailable" in (
        await response.json())["detail"]


async def _damage_catalog_keys(services: Services, how: str) -> None:
    async with services.database.write() as conn:
        if how == "sealed key nulled":
            await conn.execute(update(key_versions).values(sealed_key=None))
        elif how == "key versions deleted":
            await conn.execute(delete(key_versions))
        else:
            await conn.execute(delete(key_secrets))


@pytest.mark.parametrize("how", ["sealed key nulled", "key versions deleted",
                                 "secrets deleted"])
async def test_a_catalog_missing_key_rows_stops_the_start_and_fails_readiness(
        api: Api, config: Config, clock: FrozenClock, how: str) -> None:
    await api.uploaded(wav_tone(0.2))
    assert (await api.client.get("/readyz")).status == 200
    await _damage_catalog_keys(api.services, how)
    with pytest.raises(KeyFileError, match="damaged; restore it from a backup"):
        async with open_services(config, clock):
            pass
    if how != "secrets deleted":  # a running process keeps its secrets; the keys it reads
        response = await api.client.get("/readyz")
        assert response.status == 503
        assert "keys:" in (await response.json())["detail"]


def test_every_command_refuses_a_data_directory_without_its_root_key(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert run_cli(data, "tokens", "create", "--name", "a", "--role", "auditor").returncode == 0
    (data / "root.key").unlink()
    for command in (["audit", "verify"], ["keys", "status"], ["tokens", "list"],
                    ["purge", "--dry-run"], ["backup", str(tmp_path / "b")],
                    ["serve", "--port", "0"]):
        result = run_cli(data, *command)
        assert result.returncode in (1, 2), command
        assert "root.key is missing" in result.stderr, command
        assert "Traceback" not in result.stderr
        assert not (data / "root.key").exists(), command


def test_keys_init_makes_key_material_once_and_never_over_data(tmp_path: Path) -> None:
    data = tmp_path / "data"
    made = run_cli(data, "keys", "init")
    assert made.returncode == 0, made.stderr
    assert (data / "root.key").stat().st_mode & 0o777 == 0o600
    before = (data / "root.key").read_bytes()
    again = run_cli(data, "keys", "init")
    assert again.returncode == 1 and "already" in again.stderr
    assert (data / "root.key").read_bytes() == before
    # A data directory holding data whose root key is gone is refused, not re-keyed.
    assert run_cli(data, "tokens", "create", "--name", "a", "--role", "auditor").returncode == 0
    (data / "root.key").unlink()
    refused = run_cli(data, "keys", "init")
    assert refused.returncode == 2 and "root.key is missing" in refused.stderr
    assert not (data / "root.key").exists()


def test_the_root_key_file_may_live_outside_the_data_directory(tmp_path: Path) -> None:
    data, secrets = tmp_path / "data", tmp_path / "secrets" / "callrec-root.key"
    config = tmp_path / "c.toml"
    config.write_text(f'[keys]\nroot_key_file = "{secrets}"\n')
    made = run_cli(data, "tokens", "create", "--name", "a", "--role", "auditor",
                   "--config", str(config))
    assert made.returncode == 0, made.stderr
    assert secrets.exists() and not (data / "root.key").exists()
    status = run_cli(data, "keys", "status", "--config", str(config))
    assert status.returncode == 0 and str(secrets) in status.stdout
