from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from storage.signing import open_note, sign_note


def test_signed_note_round_trip_and_forgery() -> None:
    key = Ed25519PrivateKey.generate()
    note = sign_note("origin\n3\nabc=\n", "origin", key)
    assert note.startswith("origin\n3\nabc=\n\n\u2014 origin ")
    assert open_note(note, "origin", key.public_key()) == "origin\n3\nabc=\n"
    assert open_note(note.replace("\n3\n", "\n4\n"), "origin", key.public_key()) is None
    other = Ed25519PrivateKey.generate().public_key()
    assert open_note(note, "origin", other) is None
    assert open_note(note, "another-name", key.public_key()) is None
