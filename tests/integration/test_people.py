"""People's local accounts (``users`` commands) and machine token hygiene (expiry, last
use). Sign-in sessions build on these."""

from __future__ import annotations

import json
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest

from recordings_service import people
from recordings_service.auth import create_token
from recordings_service.errors import BadRequest
from storage import catalog, people_store
from tests.conftest import Api
from tests.integration.helpers import new_service, run_cli

GOOD = "plum-orchard-vinegar-42"


def test_accounts_are_created_listed_disabled_and_reset_from_the_command_line(
        tmp_path: Path) -> None:
    data, config, _ = new_service(tmp_path)

    def users(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return run_cli(data, "users", *args, "--config", str(config), stdin=stdin)

    made = users("create", "--name", "Maija Supervisor", "--role", "supervisor",
                 "--password-stdin", stdin=GOOD + "\n")
    assert made.returncode == 0, made.stderr
    again = users("create", "--name", "Maija Supervisor", "--role", "auditor",
                  "--password-stdin", stdin=GOOD + "\n")
    assert again.returncode == 2 and "exists already" in again.stderr
    listed = json.loads(users("list").stdout)
    assert [(u["name"], u["roles"], u["disabled_at"]) for u in listed] == [
        ("Maija Supervisor", ["supervisor"], None)]
    reset = users("reset-password", "--name", "Maija Supervisor", "--password-stdin",
                  stdin="another-long-passphrase\n")
    assert reset.returncode == 0
    assert users("reset-password", "--name", "nobody", "--password-stdin",
                 stdin="another-long-passphrase\n").returncode == 1
    assert users("disable", "--name", "Maija Supervisor").returncode == 0
    assert users("disable", "--name", "Maija Supervisor").returncode == 1
    assert json.loads(users("list").stdout)[0]["disabled_at"]
    # Neither password reached the output, the audit log or the catalog in the clear.
    audit = run_cli(data, "audit", "verify", "--config", str(config))
    assert audit.returncode == 0
    catalog_bytes = (data / "catalog.sqlite3").read_bytes()
    for secret in (GOOD, "another-long-passphrase"):
        assert secret.encode() not in catalog_bytes
        assert secret not in made.stdout + made.stderr


@pytest.mark.parametrize(("password", "why"), [
    ("short-one", "at least 12"),
    ("x" * 1025, "at most 1024"),
    ("Password1234", "too common"),
    ("QWERTY123456", "too common"),
    ("maija.virtanen", "the account's name"),
])
async def test_weak_passwords_are_refused_with_the_rule(api: Api, password: str,
                                                        why: str) -> None:
    with pytest.raises(BadRequest, match=why) as raised:
        await people.create_user(api.services.database, "maija.virtanen", ["supervisor"],
                                 password, api.clock())
    assert raised.value.reason == "weak_password"
    async with api.services.database.read() as conn:
        assert await people_store.get_user(conn, "maija.virtanen") is None


async def test_passwords_are_stored_as_argon2id_and_long_ones_are_welcome(api: Api) -> None:
    long_password = "a sentence that is far longer than sixty-four characters, as people like"
    await people.create_user(api.services.database, "ari", ["auditor"], long_password,
                             api.clock())
    async with api.services.database.read() as conn:
        row = await people_store.get_user(conn, "ari")
    assert row is not None and row.password_hash.startswith("$argon2id$")
    assert people.verify_password(row.password_hash, long_password)
    assert not people.verify_password(row.password_hash, long_password + "!")
    assert not people.verify_password("not a hash", long_password)


async def test_an_expired_token_is_refused_and_last_use_is_recorded(api: Api) -> None:
    token = await create_token(api.services.database, "pbx-1", ["ingest", "auditor"],
                               api.clock(), expires_in=timedelta(hours=1))
    headers = {"Authorization": f"Bearer {token}"}
    assert (await api.client.get("/v1/policies", headers=headers)).status == 200
    async with api.services.database.read() as conn:
        row = await catalog.token_by_name(conn, "pbx-1")
    assert row is not None and row.last_used_at == api.clock()
    assert row.expires_at == api.clock() + timedelta(hours=1)
    api.clock.advance(hours=1)
    refused = await api.client.get("/v1/policies", headers=headers)
    assert refused.status == 401
    assert "expired" in (await refused.json())["detail"]


def test_tokens_take_an_expiry_and_list_their_last_use(tmp_path: Path) -> None:
    data, config, _ = new_service(tmp_path)
    bad = run_cli(data, "tokens", "create", "--name", "t", "--role", "auditor",
                  "--expires-in", "forever", "--config", str(config))
    assert bad.returncode == 2 and "duration" in bad.stderr
    made = run_cli(data, "tokens", "create", "--name", "t", "--role", "auditor",
                   "--expires-in", "90d", "--config", str(config))
    assert made.returncode == 0, made.stderr
    listed = json.loads(run_cli(data, "tokens", "list", "--config", str(config)).stdout)
    assert listed[0]["expires_at"] and listed[0]["last_used_at"] is None
