from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from storage.signing import load_or_create_signing_key, open_note, sign_note


def test_signed_note_round_trip_and_forgery() -> None:
    key = Ed25519PrivateKey.generate()
    note = sign_note("origin\n3\nabc=\n", "origin", key)
    assert note.startswith("origin\n3\nabc=\n\n\u2014 origin ")
    assert open_note(note, "origin", key.public_key()) == "origin\n3\nabc=\n"
    assert open_note(note.replace("\n3\n", "\n4\n"), "origin", key.public_key()) is None
    other = Ed25519PrivateKey.generate().public_key()
    assert open_note(note, "origin", other) is None
    assert open_note(note, "another-name", key.public_key()) is None


def test_signing_key_file_is_private_and_stable(tmp_path: Path) -> None:
    path = tmp_path / "k.pem"
    first = load_or_create_signing_key(path)
    assert path.stat().st_mode & 0o777 == 0o600
    second = load_or_create_signing_key(path)
    assert first.public_key() == second.public_key()
