"""Lost or damaged key files: the service refuses loudly and never mints keys over data."""

from __future__ import annotations

from pathlib import Path

import pytest

from recordings_service.config import Config
from recordings_service.services import open_services
from storage.errors import KeyFileError
from storage.key_files import KEY_FILES
from tests.audio import wav_tone
from tests.conftest import Api, FrozenClock
from tests.integration.helpers import run_cli

DAMAGE = {
    "missing": None,
    "empty": b"",
    "garbage": b"\x00\xffnot a key\n",
    "truncated json": b'{"current": 1, "versions": [',
}


def _damage(path: Path, how: str) -> None:
    content = DAMAGE[how]
    if content is None:
        path.unlink()
    else:
        path.write_bytes(content)


async def test_a_new_data_directory_gets_private_key_files(config: Config,
                                                         clock: FrozenClock) -> None:
    async with open_services(config, clock):
        pass
    for name in KEY_FILES:
        assert (config.data_dir / name).stat().st_mode & 0o777 == 0o600
    before = {name: (config.data_dir / name).read_bytes() for name in KEY_FILES}
    async with open_services(config, clock):
        pass
    assert before == {name: (config.data_dir / name).read_bytes() for name in KEY_FILES}


@pytest.mark.parametrize("how", sorted(DAMAGE))
@pytest.mark.parametrize("name", KEY_FILES)
async def test_a_lost_or_damaged_key_file_stops_the_start_and_names_the_file(
        api: Api, config: Config, clock: FrozenClock, name: str, how: str) -> None:
    await api.uploaded(wav_tone(0.2))
    path = config.data_dir / name
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


async def test_all_key_files_lost_over_a_used_catalog_is_refused_too(
        api: Api, config: Config, clock: FrozenClock) -> None:
    await api.call("GET", "/v1/audit", role="auditor")  # only an audit entry is stored
    for name in KEY_FILES:
        (config.data_dir / name).unlink()
    with pytest.raises(KeyFileError, match=r"keyring\.json is missing"):
        async with open_services(config, clock):
            pass
    assert not any((config.data_dir / name).exists() for name in KEY_FILES)


async def test_readyz_fails_when_a_stored_recordings_key_version_is_gone(
        api: Api, config: Config) -> None:
    await api.uploaded(wav_tone(0.2))
    assert (await api.client.get("/readyz")).status == 200
    (config.data_dir / "keyring.json").unlink()
    response = await api.client.get("/readyz")
    assert response.status == 503
    assert "keys: keyring file missing or damaged" in (await response.json())["detail"]


def test_every_command_refuses_a_data_directory_without_its_keyring(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert run_cli(data, "tokens", "create", "--name", "a", "--role", "auditor").returncode == 0
    (data / "keyring.json").unlink()
    for command in (["audit", "verify"], ["keys", "status"], ["tokens", "list"],
                    ["purge", "--dry-run"], ["serve", "--port", "0"]):
        result = run_cli(data, *command)
        assert result.returncode in (1, 2), command
        assert "keyring.json is missing" in result.stderr, command
        assert "Traceback" not in result.stderr
        assert not (data / "keyring.json").exists(), command


def test_keys_init_makes_key_material_once_and_never_over_data(tmp_path: Path) -> None:
    data = tmp_path / "data"
    made = run_cli(data, "keys", "init")
    assert made.returncode == 0, made.stderr
    assert sorted(Path(line).name for line in made.stdout.split()) == sorted(KEY_FILES)
    assert all((data / name).stat().st_mode & 0o777 == 0o600 for name in KEY_FILES)
    before = (data / "keyring.json").read_bytes()
    again = run_cli(data, "keys", "init")
    assert again.returncode == 1 and "already" in again.stderr
    assert (data / "keyring.json").read_bytes() == before
    # A data directory holding data whose key files are gone is refused, not re-keyed.
    assert run_cli(data, "tokens", "create", "--name", "a", "--role", "auditor").returncode == 0
    for name in KEY_FILES:
        (data / name).unlink()
    refused = run_cli(data, "keys", "init")
    assert refused.returncode == 2 and "keyring.json is missing" in refused.stderr
    assert not (data / "keyring.json").exists()
