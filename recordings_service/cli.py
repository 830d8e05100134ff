"""``recordings-service``: serve, tokens, keys, audit. Same configuration sources as serve."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import aiohttp

from recordings_service import (
    auditing,
    backup,
    calls,
    jobs,
    keys,
    logs,
    people,
    redaction_verify,
    restore,
    retention,
    waveform_backfill,
)
from recordings_service.auditing import SYSTEM_ORIGIN
from recordings_service.auth import Actor, create_token, parse_duration
from recordings_service.clock import system_clock
from recordings_service.config import ROLES, Config, load_config
from recordings_service.custody import open_root_key
from recordings_service.errors import BackupError, BadRequest, ConfigError, ServiceError
from recordings_service.serve import event_loop_factory, serve
from recordings_service.services import Services, open_services
from recordings_service.uploader import cdr_watch
from recordings_service.uploader.settings import cdr_settings, upload_settings
from recordings_service.uploader.watch import run as watch_spool
from storage import audit_log, catalog, legacy_keys, people_store
from storage.custody import export
from storage.custody.file import decode, write_private
from storage.database import Database, sqlite_url
from storage.errors import CustodyError, StorageError
from storage.migrate import upgrade
from storage.signing import load_public_key
from storage.tilestore.filesystem import FilesystemTileStore

CLI_ACTOR = Actor("system:cli", frozenset())


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", type=Path, help="TOML file laid over the shipped defaults")
    common.add_argument("--data-dir", help="data directory (default ./var)")

    parser = argparse.ArgumentParser(prog="recordings-service", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", parents=[common], help="run the HTTP service")
    serve.add_argument("--host")
    serve.add_argument("--port")
    # Started by serve itself when server.workers > 1 (see recordings_service/serve.py).
    serve.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)

    tokens = sub.add_parser("tokens", help="API tokens").add_subparsers(dest="action",
                                                                        required=True)
    create = tokens.add_parser("create", parents=[common], help="create a token, print it")
    create.add_argument("--name", required=True)
    create.add_argument("--role", action="append", required=True, choices=sorted(ROLES))
    create.add_argument("--agent-id", help="the agent a token of role agent acts as")
    create.add_argument("--expires-in", metavar="DURATION",
                        help="e.g. 90d, 12h, 30m (default: no expiry)")
    tokens.add_parser("list", parents=[common],
                      help="list tokens with expiry and last use (never their values)")
    revoke = tokens.add_parser("revoke", parents=[common], help="revoke a token by name")
    revoke.add_argument("--name", required=True)

    users = sub.add_parser("users", help="people's local accounts").add_subparsers(
        dest="action", required=True)
    user_create = users.add_parser("create", parents=[common], help="a person's account")
    user_create.add_argument("--name", required=True)
    user_create.add_argument("--role", action="append", required=True, choices=sorted(ROLES))
    user_create.add_argument("--agent-id", help="the agent a person of role agent is")
    user_create.add_argument("--password-stdin", action="store_true",
                             help="read the password from stdin (else a prompt)")
    users.add_parser("list", parents=[common], help="accounts (never their passwords)")
    user_disable = users.add_parser("disable", parents=[common], help="disable an account")
    user_disable.add_argument("--name", required=True)
    user_reset = users.add_parser("reset-password", parents=[common],
                                  help="set a new password for an account")
    user_reset.add_argument("--name", required=True)
    user_reset.add_argument("--password-stdin", action="store_true")

    key_cmds = sub.add_parser("keys", help="the key hierarchy").add_subparsers(
        dest="action", required=True)
    key_cmds.add_parser("init", parents=[common],
                        help="make the key material of a new installation")
    rotate = key_cmds.add_parser("rotate", parents=[common],
                                 help="make a new key-encryption key version current")
    rotate.add_argument("--root", action="store_true",
                        help="make a new root key instead, re-sealing the catalog's keys")
    key_cmds.add_parser("rewrap", parents=[common], help="re-wrap data keys to the current "
                                                         "version now")
    key_cmds.add_parser("status", parents=[common],
                        help="root key generations, key versions and their data-key counts")
    key_cmds.add_parser("upgrade", parents=[common],
                        help="move an earlier release's key files under the root key")
    export_cmd = key_cmds.add_parser(
        "export", parents=[common],
        help="write the root key (file backend) encrypted under a passphrase from stdin")
    export_cmd.add_argument("--out", type=Path, required=True)
    import_cmd = key_cmds.add_parser(
        "import", parents=[common],
        help="restore the root key file from an export (passphrase from stdin)")
    import_cmd.add_argument("--in", dest="source", type=Path, required=True)

    backup_cmd = sub.add_parser("backup", parents=[common],
                                help="consistent online backup into a directory")
    backup_cmd.add_argument("dest", type=Path, metavar="DEST")
    backup_cmd.add_argument("--full", action="store_true",
                            help="a full snapshot, not one following the newest in DEST")
    restore_cmd = sub.add_parser(
        "restore", parents=[common],
        help="verify a backup, restore it into a new data directory, replay erasures")
    restore_cmd.add_argument("src", type=Path, metavar="SRC")
    restore_cmd.add_argument("--into", type=Path, required=True, metavar="DIR")
    restore_cmd.add_argument("--snapshot", help="a snapshot name (default: the newest)")
    restore_cmd.add_argument("--erasures", type=Path, action="append", default=[],
                             metavar="LEDGER",
                             help="a newer copy of erasure-ledger.jsonl (repeatable)")

    watch = sub.add_parser(
        "upload-watch", parents=[common],
        help="upload each finished recording in a spool directory, then remove it")
    watch.add_argument("directory", type=Path, metavar="DIR")
    watch.add_argument("--url", required=True, help="the service, e.g. http://127.0.0.1:8080")
    watch.add_argument("--token-file", type=Path, required=True,
                       help="file holding an ingest token (mode 0600)")
    watch.add_argument("--purpose", action="append", default=[],
                       help="purpose for recordings whose metadata names none (repeatable)")
    watch.add_argument("--pattern", help="metadata from file names, e.g. "
                                         "'{call_id}-{started_at}.wav'")
    watch.add_argument("--leg-names", metavar="NAME=LEG,...",
                       help="what the {leg} of --pattern calls each leg, e.g. "
                            "'dec=caller,enc=callee' (LEG: caller, callee, mixed)")
    watch.add_argument("--stable-seconds", type=float, default=5.0,
                       help="a file is finished when unchanged this long (default 5)")
    watch.add_argument("--metadata-grace-seconds", type=float, default=60.0,
                       help="how long a finished file may wait for its sidecar (default 60)")
    watch.add_argument("--keep", type=Path, metavar="DIR",
                       help="move delivered files here instead of deleting them")
    watch.add_argument("--polling", action="store_true",
                       help="poll instead of inotify (network filesystems)")
    watch.add_argument("--metrics-port", type=int,
                       help="serve Prometheus metrics on 127.0.0.1:PORT")
    watch.add_argument("--once", action="store_true",
                       help="deliver what is ready now, then exit")

    cdr = sub.add_parser(
        "cdr-watch", parents=[common],
        help="send each line of Asterisk's CSV call records (cdr_csv, cdr_custom) once")
    cdr.add_argument("file", type=Path, metavar="FILE", help="e.g. .../cdr-csv/Master.csv")
    cdr.add_argument("--url", required=True, help="the service, e.g. http://127.0.0.1:8080")
    cdr.add_argument("--token-file", type=Path, required=True,
                     help="file holding an ingest token (mode 0600)")
    cdr.add_argument("--source", default="asterisk", help="this PBX's name (default asterisk)")
    cdr.add_argument("--columns", help="the file's columns, comma-separated (default: "
                                       "cdr_csv's 18); uniqueid, start, end required")
    cdr.add_argument("--timezone", default="UTC",
                     help="the zone of the file's times (default UTC: cdr.conf usegmtime)")
    cdr.add_argument("--state", type=Path, help="where the offset read is kept (default "
                                                ".FILE.cdr-watch beside it)")
    cdr.add_argument("--once", action="store_true", help="send what is there now, then exit")

    purge = sub.add_parser("purge", parents=[common],
                           help="one retention run now, printing what it did")
    purge.add_argument("--dry-run", action="store_true", help="report, change nothing")

    sub.add_parser("reconcile", parents=[common],
                   help="match the call records past their grace to recordings now, "
                        "printing how many were recorded, missing, short, partial")

    waves = sub.add_parser("waveforms", help="waveforms of calls").add_subparsers(
        dest="action", required=True)
    waves.add_parser("backfill", parents=[common],
                     help="draw the waveform of every WAV recording that has none yet")
    audit = sub.add_parser("audit", help="the audit log").add_subparsers(dest="action",
                                                                         required=True)
    verify = audit.add_parser("verify", parents=[common],
                              help="verify chain and checkpoints since the last verification")
    verify.add_argument("--full", action="store_true",
                        help="verify every entry from the first, printing progress")
    audit.add_parser("checkpoint", parents=[common], help="sign a checkpoint of the head now")
    archive = audit.add_parser(
        "archive", parents=[common],
        help="move entries older than DAYS out of the catalog into the signed tiles now")
    archive.add_argument("--older-than-days", type=int, metavar="DAYS",
                         help="default: [audit] archive_after_days")
    tiles = audit.add_parser(
        "verify-tiles", parents=[common],
        help="check a copy of the audit archive offline, with the public key alone")
    tiles.add_argument("directory", type=Path, metavar="DIR",
                       help="a directory holding checkpoint and tile/ (a copy of the archive)")
    tiles.add_argument("--public-key", type=Path, required=True, metavar="PEM",
                       help="the audit log's public key (GET /v1/audit/public-key)")
    redacted = sub.add_parser(
        "verify-redaction", parents=[common],
        help="check a redaction offline: nothing outside its spans changed since upload")
    redacted.add_argument("--receipt", type=Path, required=True, metavar="FILE",
                          help="the redaction's receipt (JSON, from its answer or list)")
    redacted.add_argument("--proof", type=Path, required=True, metavar="FILE",
                          help="GET /v1/recordings/{id}/redactions/{rid}/proof (JSON)")
    redacted.add_argument("--audio", type=Path, required=True, metavar="FILE",
                          help="the recording's audio as served after the redaction")
    redacted.add_argument("--public-key", type=Path, required=True, metavar="PEM",
                          help="the service's public key (GET /v1/audit/public-key)")
    return parser


def _print(data: object) -> None:
    print(json.dumps(data, indent=2, default=str))


async def _tokens_create(services: Services, args: argparse.Namespace) -> int:
    expires_in = None if args.expires_in is None else parse_duration(args.expires_in)
    token = await create_token(services.database, args.name, args.role, services.clock(),
                               expires_in, args.agent_id)
    await auditing.record(services, auditing.event(
        CLI_ACTOR, SYSTEM_ORIGIN, "token_created", "allowed",
        detail={"name": args.name, "roles": sorted(set(args.role)),
                "expires_in": args.expires_in, "agent_id": args.agent_id}))
    print(f"created token {args.name!r} with roles {', '.join(sorted(set(args.role)))}",
          file=sys.stderr)
    print(token)
    return 0


async def _tokens_list(services: Services, args: argparse.Namespace) -> int:
    async with services.database.read() as conn:
        rows = await catalog.list_tokens(conn)
    _print([{"name": r.name, "roles": list(r.roles), "created_at": r.created_at,
             "expires_at": r.expires_at, "last_used_at": r.last_used_at,
             "revoked_at": r.revoked_at, "agent_id": r.agent_id} for r in rows])
    return 0


def _read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise BadRequest("password_mismatch", "the two passwords differ")
    return first


async def _users_create(services: Services, args: argparse.Namespace) -> int:
    await people.create_user(services.database, args.name, args.role, _read_password(args),
                             services.clock(), args.agent_id)
    await auditing.record(services, auditing.event(
        CLI_ACTOR, SYSTEM_ORIGIN, "user_created", "allowed",
        detail={"name": args.name, "roles": sorted(set(args.role)),
                "agent_id": args.agent_id}))
    print(f"created account {args.name!r} with roles {', '.join(sorted(set(args.role)))}")
    return 0


async def _users_list(services: Services, args: argparse.Namespace) -> int:
    async with services.database.read() as conn:
        rows = await people_store.list_users(conn)
    _print([{"name": r.name, "roles": list(r.roles), "agent_id": r.agent_id,
             "created_at": r.created_at, "last_sign_in_at": r.last_sign_in_at,
             "disabled_at": r.disabled_at} for r in rows])
    return 0


async def _users_disable(services: Services, args: argparse.Namespace) -> int:
    async with services.database.write() as conn:
        disabled = await people_store.disable_user(conn, args.name, services.clock())
        await people_store.delete_sessions_of(conn, args.name)
    if not disabled:
        print(f"no enabled account named {args.name!r}", file=sys.stderr)
        return 1
    await auditing.record(services, auditing.event(
        CLI_ACTOR, SYSTEM_ORIGIN, "user_disabled", "allowed", detail={"name": args.name}))
    print(f"disabled account {args.name!r}")
    return 0


async def _users_reset_password(services: Services, args: argparse.Namespace) -> int:
    if not await people.reset_password(services.database, args.name, _read_password(args)):
        print(f"no account named {args.name!r}", file=sys.stderr)
        return 1
    await auditing.record(services, auditing.event(
        CLI_ACTOR, SYSTEM_ORIGIN, "password_reset", "allowed", detail={"name": args.name}))
    print(f"new password set for {args.name!r}")
    return 0


async def _tokens_revoke(services: Services, args: argparse.Namespace) -> int:
    async with services.database.write() as conn:
        revoked = await catalog.revoke_token(conn, args.name, services.clock())
    if not revoked:
        print(f"no active token named {args.name!r}", file=sys.stderr)
        return 1
    await auditing.record(services, auditing.event(
        CLI_ACTOR, SYSTEM_ORIGIN, "token_revoked", "allowed", detail={"name": args.name}))
    print(f"revoked token {args.name!r}")
    return 0


async def _keys_init(services: Services, args: argparse.Namespace) -> int:
    # open_services made the key material (only a new installation gets it).
    print(f"key material created: {services.keyring.root.describe()}, key-encryption keys "
          f"and secrets sealed in the catalog")
    return 0


async def _keys_rotate(services: Services, args: argparse.Namespace) -> int:
    if args.root:
        result = await keys.rotate_root(services, CLI_ACTOR)
        _print(result)
        print("the root key is new: take a new key backup now (keys export); backups made "
              "before this rotation need the old root key", file=sys.stderr)
        return 0
    version = await keys.rotate(services, CLI_ACTOR)
    print(f"key-encryption key version {version} is now current; data keys move to it on "
          f"the next re-wrap (or run: recordings-service keys rewrap)")
    return 0


async def _keys_rewrap(services: Services, args: argparse.Namespace) -> int:
    result = await keys.rewrap(services, CLI_ACTOR)
    _print({"rewrapped": result.rewrapped, "retired_versions": result.retired})
    return 0


async def _keys_status(services: Services, args: argparse.Namespace) -> int:
    _print(await keys.status(services))
    return 0


async def _keys_export(services: Services, args: argparse.Namespace) -> int:
    config = services.config
    if config.keys_backend != "file":
        print(f"nothing exported: the root key stays in {services.keyring.root.describe()}; "
              f"back it up with the HSM's own procedure")
        return 0
    passphrase = sys.stdin.readline().rstrip("\n")
    content = config.root_key_path.read_bytes()
    decode(content, str(config.root_key_path))
    write_private(args.out, export.export_key_file(content, passphrase))
    await auditing.record(services, auditing.event(
        CLI_ACTOR, SYSTEM_ORIGIN, "root_key_exported", "allowed"))
    print(f"root key exported to {args.out}, encrypted under the passphrase; keep it apart "
          f"from the data backups")
    return 0


async def _backup(services: Services, args: argparse.Namespace) -> int:
    result = await backup.backup(services, args.dest,
                                 lambda line: print(line, file=sys.stderr), full=args.full)
    for message in result.messages:
        print(message, file=sys.stderr)
    _print({"snapshot": result.snapshot, "path": str(result.path),
            "base": (result.manifest["base"] or {}).get("snapshot"),
            "blobs": result.blobs, "copied_blobs": result.copied_blobs,
            "recordings": result.manifest["recordings"], "audit": result.manifest["audit"]})
    return 0


async def _waveforms_backfill(services: Services, args: argparse.Namespace) -> int:
    made = await waveform_backfill.backfill(
        services, CLI_ACTOR, lambda n: print(f"{n:,} waveforms drawn", file=sys.stderr))
    _print({"waveforms": made})
    return 0


async def _audit_verify(services: Services, args: argparse.Namespace) -> int:
    def progress(done: int, total: int) -> None:
        if done == total or done % 100_000 < 500:
            print(f"verified {done:,} of {total:,} entries", file=sys.stderr, flush=True)

    report = await jobs.verify_audit(services, full=args.full,
                                     progress=progress if args.full else lambda _d, _t: None)
    _print(report.as_json())
    if not report.ok:
        print(f"audit log verification FAILED at seq {report.first_bad_seq}", file=sys.stderr)
        return 1
    return 0


async def _audit_checkpoint(services: Services, args: argparse.Namespace) -> int:
    _print((await jobs.checkpoint(services)).as_json())
    return 0


async def _audit_archive(services: Services, args: argparse.Namespace) -> int:
    days = (services.config.audit_archive_after_days if args.older_than_days is None
            else args.older_than_days)
    if days <= 0:
        print("error: say how old entries must be: --older-than-days DAYS (or set [audit] "
              "archive_after_days)", file=sys.stderr)
        return 2
    try:
        _print(await jobs.archive_audit(services, days))
    except StorageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def _verify_tiles(args: argparse.Namespace) -> int:
    try:
        key = load_public_key(args.public_key.read_bytes())
    except (OSError, ValueError) as exc:
        print(f"error: cannot read the public key: {exc}", file=sys.stderr)
        return 2
    report = asyncio.run(audit_log.verify_tiles(FilesystemTileStore(args.directory), key))
    _print({"ok": report.ok, "entries": report.entries, "chain_hash": report.head_hash,
            "checkpoint_at": report.newest_checkpoint_at, "problems": report.problems})
    return 0 if report.ok else 1


def _verify_redaction(args: argparse.Namespace) -> int:
    try:
        key = load_public_key(args.public_key.read_bytes())
        receipt = json.loads(args.receipt.read_bytes())
        proof = json.loads(args.proof.read_bytes())
        audio = args.audio.read_bytes()
    except (OSError, ValueError) as exc:
        print(f"error: cannot read the files: {exc}", file=sys.stderr)
        return 2
    try:
        problems = redaction_verify.verify(receipt, proof, audio, key)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        problems = [f"receipt or proof: not in the form the service writes "
                    f"({type(exc).__name__})"]
    _print({"ok": not problems, "problems": problems})
    return 0 if not problems else 1


async def _purge(services: Services, args: argparse.Namespace) -> int:
    await retention.apply_configured_retention(services)
    _print(await retention.run_purge(services, retention.RETENTION_ACTOR, SYSTEM_ORIGIN,
                                     dry_run=args.dry_run))
    return 0


async def _reconcile(services: Services, args: argparse.Namespace) -> int:
    _print(await calls.reconcile(services))
    return 0


Command = Callable[[Services, argparse.Namespace], Awaitable[int]]

COMMANDS: dict[tuple[str, str | None], Command] = {
    ("tokens", "create"): _tokens_create,
    ("tokens", "list"): _tokens_list,
    ("tokens", "revoke"): _tokens_revoke,
    ("users", "create"): _users_create,
    ("users", "list"): _users_list,
    ("users", "disable"): _users_disable,
    ("users", "reset-password"): _users_reset_password,
    ("keys", "init"): _keys_init,
    ("keys", "rotate"): _keys_rotate,
    ("keys", "rewrap"): _keys_rewrap,
    ("keys", "status"): _keys_status,
    ("keys", "export"): _keys_export,
    ("backup", None): _backup,
    ("audit", "verify"): _audit_verify,
    ("audit", "checkpoint"): _audit_checkpoint,
    ("audit", "archive"): _audit_archive,
    ("purge", None): _purge,
    ("reconcile", None): _reconcile,
    ("waveforms", "backfill"): _waveforms_backfill,
}


async def _run(config: Config, command: Command, args: argparse.Namespace) -> int:
    async with open_services(config, system_clock) as services:
        return await command(services, args)


async def _keys_upgrade(config: Config) -> int:
    database = Database(config.database_url.reveal() or sqlite_url(config.data_dir))
    root = None
    try:
        await upgrade(database)
        root = open_root_key(config)
        report = await legacy_keys.upgrade(database, root, config.data_dir, system_clock())
    finally:
        if root is not None:
            root.close()
        await database.dispose()
    async with open_services(config, system_clock) as services:
        await auditing.record(services, auditing.event(
            CLI_ACTOR, SYSTEM_ORIGIN, "keys_upgraded", "allowed",
            detail={"key_versions": report["key_versions"]}))
    _print(report)
    print("the key files are now sealed in the catalog under the root key; back up the "
          "root key (keys export) apart from the data", file=sys.stderr)
    return 0


def _keys_import(config: Config, source: Path) -> int:
    if config.keys_backend != "file":
        print("error: keys import is for the file backend", file=sys.stderr)
        return 2
    path = config.root_key_path
    if path.exists():
        print(f"error: {path} exists; not overwriting a root key", file=sys.stderr)
        return 1
    passphrase = sys.stdin.readline().rstrip("\n")
    content = export.import_key_file(source.read_bytes(), passphrase)
    decode(content, str(source))
    write_private(path, content)
    print(f"root key restored to {path}")
    return 0


async def _restore(config: Config, args: argparse.Namespace) -> int:
    report = await restore.restore(config, system_clock, args.src, args.snapshot,
                                   args.erasures, lambda line: print(line, file=sys.stderr))
    for warning in report.warnings:
        print(f"\n!!! {warning}\n", file=sys.stderr)
    _print(report.as_json())
    return 0 if report.audit_ok else 1


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    # Everything the service writes (catalog, keys, blobs) is for its own user only.
    os.umask(0o077)
    try:
        config = load_config(args.config, data_dir=args.data_dir,
                             host=getattr(args, "host", None), port=getattr(args, "port", None))
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    logs.configure(config.log_level)
    if args.command == "serve":
        try:
            with asyncio.Runner(loop_factory=event_loop_factory(config)) as runner:
                runner.run(serve(config, extra_worker=args.worker,
                                 argv=[a for a in argv if a != "--worker"]))
        except (RuntimeError, OSError, CustodyError) as exc:
            # e.g. the port is taken, another serve holds this data directory, a key file
            # is missing (its message names the file, never its content)
            print(f"cannot start: {exc}", file=sys.stderr)
            return 1
        return 0
    if args.command == "upload-watch":
        return _upload_watch(args)
    if args.command == "cdr-watch":
        return _cdr_watch(args)
    if (args.command, getattr(args, "action", None)) == ("audit", "verify-tiles"):
        return _verify_tiles(args)
    if args.command == "verify-redaction":
        return _verify_redaction(args)
    which = (args.command, getattr(args, "action", None))
    try:
        if which == ("keys", "init") and _has_root_key(config):
            print("error: the root key exists already; keys init makes key material only "
                  "for a new installation", file=sys.stderr)
            return 1
        if which == ("keys", "upgrade"):
            return asyncio.run(_keys_upgrade(config))
        if which == ("keys", "import"):
            return _keys_import(config, args.source)
        if which == ("restore", None):
            return asyncio.run(_restore(config.with_overrides(data_dir=args.into), args))
        return asyncio.run(_run(config, COMMANDS[which], args))
    except ServiceError as exc:
        print(f"error: {exc.detail}", file=sys.stderr)
        return 2
    except (CustodyError, BackupError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _upload_watch(args: argparse.Namespace) -> int:
    try:
        settings = upload_settings(args)
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    asyncio.run(watch_spool(settings, once=args.once))
    return 0


def _cdr_watch(args: argparse.Namespace) -> int:
    try:
        settings = cdr_settings(args)
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        asyncio.run(cdr_watch.run(settings, once=args.once))
    except (aiohttp.ClientError, TimeoutError) as exc:
        print(f"error: the service did not take the call records ({type(exc).__name__}); "
              f"the next run sends them", file=sys.stderr)
        return 1
    return 0


def _has_root_key(config: Config) -> bool:
    root = open_root_key(config)
    try:
        return root.exists()
    finally:
        root.close()


if __name__ == "__main__":
    sys.exit(main())
