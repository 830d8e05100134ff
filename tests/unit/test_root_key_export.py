"""The root key export: only the passphrase opens it, and a hostile file is refused
before it can make scrypt allocate gigabytes."""

from __future__ import annotations

import json

import pytest

from storage.custody.export import export_key_file, import_key_file
from storage.errors import CustodyError

CONTENT = b'{"format": "recordings-root-key/1", "generations": []}'


def test_round_trip_and_the_wrong_passphrase() -> None:
    exported = export_key_file(CONTENT, "correct horse battery")
    assert CONTENT not in exported
    assert import_key_file(exported, "correct horse battery") == CONTENT
    with pytest.raises(CustodyError, match="wrong passphrase"):
        import_key_file(exported, "correct horse batterY")


def test_a_short_passphrase_is_refused() -> None:
    with pytest.raises(CustodyError, match="at least 12"):
        export_key_file(CONTENT, "short")


@pytest.mark.parametrize("change", [
    {"kdf": {"name": "scrypt", "n": 2**30, "r": 8, "p": 1, "salt": "AAAA"}},
    {"kdf": {"name": "pbkdf2"}},
    {"format": "something/1"},
    {"nonce": "not base64!"},
])
def test_a_hostile_or_foreign_export_is_refused(change: dict[str, object]) -> None:
    exported = json.loads(export_key_file(CONTENT, "correct horse battery"))
    exported.update(change)
    with pytest.raises(CustodyError, match="not a root key export"):
        import_key_file(json.dumps(exported).encode(), "correct horse battery")
