"""``cdr-watch``: Asterisk's Master.csv, written line by line and rotated, arrives in the
service once per line, whatever the file was doing when it was read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from recordings_service.uploader.cdr_watch import Settings, run
from tests.conftest import Api

# One stack is enough: the watcher is a client of POST /v1/calls, tested on both.
SQLITE = pytest.mark.parametrize("config", ["sqlite"], indirect=True)


def line(n: int, answered: bool = True, start: str | None = None) -> str:
    """One cdr_csv line as Asterisk writes it (18 columns, quoted text)."""
    begin = start or f"2026-11-24 09:{n:02d}:00"
    answer = f"2026-11-24 09:{n:02d}:05" if answered else ""
    return (f'"","100{n}","2000","from-internal","""Jane"" <100{n}>","SIP/100{n}-0000000{n}",'
            f'"SIP/2000-0000000{n}","Dial","SIP/2000,30","{begin}","{answer}",'
            f'"2026-11-24 09:{n:02d}:45",45,40,"{"ANSWERED" if answered else "NO ANSWER"}",'
            f'"DOCUMENTATION","1732438800.{n}",""\n')


def settings(api: Api, csv: Path, **more: Any) -> Settings:
    return Settings(file=csv, url=str(api.client.make_url("/")), token=api.tokens["ingest"],
                    source="ast-1", poll_seconds=0.05, **more)


async def calls_stored(api: Api) -> dict[str, dict[str, Any]]:
    status, body = await api.call("GET", "/v1/calls?from=2026-11-24T00:00:00Z"
                                         "&to=2026-11-25T00:00:00Z&limit=500")
    assert status == 200
    return {c["call_id"]: c for c in body["items"]}


async def lines_received(api: Api) -> int:
    return sum(e["detail"]["received"] for e in await api.audit(action="call_records"))


@SQLITE
async def test_lines_written_one_by_one_and_rotated_arrive_once_each(
        api: Api, tmp_path: Path) -> None:
    csv = tmp_path / "Master.csv"
    with csv.open("w") as out:  # two lines and the start of a third, still being written
        out.write(line(1) + line(2) + line(3)[:30])
    await run(settings(api, csv), once=True)
    assert sorted(await calls_stored(api)) == ["1732438800.1", "1732438800.2"]

    with csv.open("a") as out:
        out.write(line(3)[30:] + line(4, answered=False))
    await run(settings(api, csv), once=True)
    assert len(await calls_stored(api)) == 4

    # Rotation: the file is renamed (its writer still adds a last line), a new one begun.
    rotated = csv.rename(tmp_path / "Master.csv.1")
    with rotated.open("a") as out:
        out.write(line(5))
    csv.write_text(line(6) + line(7))
    await run(settings(api, csv), once=True)
    stored = await calls_stored(api)
    assert sorted(stored) == [f"1732438800.{n}" for n in range(1, 8)]
    assert await lines_received(api) == 7  # each line sent once
    one = stored["1732438800.1"]
    assert (one["source"], one["started_at"], one["answered_at"], one["phone_number"]) == (
        "ast-1", "2026-11-24T09:01:00Z", "2026-11-24T09:01:05Z", "1001")
    assert stored["1732438800.4"]["status"] == "not_expected"  # NO ANSWER

    await run(settings(api, csv), once=True)  # nothing new
    assert await lines_received(api) == 7
    # A lost state file sends the current file again: the service keeps one of each.
    (tmp_path / ".Master.csv.cdr-watch").unlink()
    await run(settings(api, csv), once=True)
    assert len(await calls_stored(api)) == 7


@SQLITE
async def test_a_bad_line_is_skipped_and_the_rest_taken(api: Api, tmp_path: Path) -> None:
    csv = tmp_path / "Master.csv"
    csv.write_text(line(1) + line(2, start="yesterday") + '"too","few"\n' + line(3))
    await run(settings(api, csv), once=True)
    assert sorted(await calls_stored(api)) == ["1732438800.1", "1732438800.3"]


@SQLITE
async def test_times_in_the_pbx_zone_and_custom_columns(api: Api, tmp_path: Path) -> None:
    csv = tmp_path / "cdr_custom.csv"
    csv.write_text('"c-9","2026-11-24 11:00:00","2026-11-24 11:00:02",'
                   '"2026-11-24 11:01:00","A-7","billing"\n')
    await run(settings(api, csv, timezone="Europe/Helsinki",
                       columns=("uniqueid", "start", "answer", "end", "agent_id", "queue")),
              once=True)
    stored = (await calls_stored(api))["c-9"]
    assert (stored["started_at"], stored["agent_id"], stored["queue"]) == (
        "2026-11-24T09:00:00Z", "A-7", "billing")


@pytest.mark.parametrize("flags, complaint", [
    ({"columns": "start,end"}, "uniqueid"),
    ({"timezone": "Mars/Olympus"}, "time zone"),
    ({"url": "http://user:pw@host"}, "base URL"),
])
def test_the_command_line_is_checked_before_anything_runs(
        tmp_path: Path, flags: dict[str, str], complaint: str) -> None:
    import argparse

    from recordings_service.uploader.settings import cdr_settings

    token = tmp_path / "token"
    token.write_text("rst_x")
    token.chmod(0o600)
    args = argparse.Namespace(**{"file": tmp_path / "Master.csv", "url": "http://127.0.0.1:1",
                                 "token_file": token, "source": "ast", "columns": None,
                                 "timezone": "UTC", "state": None, **flags})
    with pytest.raises(ValueError, match=complaint):
        cdr_settings(args)
