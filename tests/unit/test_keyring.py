from datetime import UTC, datetime
from pathlib import Path

import pytest

from storage.errors import KeyringError
from storage.keyring import FileKeyring, new_dek

NOW = datetime(2026, 11, 24, tzinfo=UTC)


def test_wrap_unwrap_bound_to_recording_and_version(tmp_path: Path) -> None:
    keyring = FileKeyring.create(tmp_path / "keyring.json", NOW)
    assert (tmp_path / "keyring.json").stat().st_mode & 0o777 == 0o600
    dek = new_dek()
    version, wrapped = keyring.wrap(dek, "rec_a")
    assert version == 1 and dek not in wrapped
    assert keyring.unwrap(wrapped, 1, "rec_a") == dek
    with pytest.raises(KeyringError):
        keyring.unwrap(wrapped, 1, "rec_b")


def test_rotation_is_seen_by_another_process(tmp_path: Path) -> None:
    serving = FileKeyring.create(tmp_path / "keyring.json", NOW)
    cli = FileKeyring.open(tmp_path / "keyring.json")
    assert cli.rotate(NOW) == 2
    version, wrapped = cli.wrap(new_dek(), "rec_a")
    assert version == 2
    # The serving process has not refreshed yet, but unwrapping an unknown version
    # reloads the file.
    assert len(serving.unwrap(wrapped, 2, "rec_a")) == 32
    serving.refresh()
    assert serving.current_version() == 2


def test_retired_version_unwraps_nothing_and_current_cannot_retire(tmp_path: Path) -> None:
    keyring = FileKeyring.create(tmp_path / "keyring.json", NOW)
    _, wrapped = keyring.wrap(new_dek(), "rec_a")
    keyring.rotate(NOW)
    with pytest.raises(KeyringError):
        keyring.retire(2, NOW)
    keyring.retire(1, NOW)
    assert [v.retired for v in keyring.versions()] == [True, False]
    with pytest.raises(KeyringError):
        keyring.unwrap(wrapped, 1, "rec_a")
