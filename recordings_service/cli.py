"""``recordings-service``: serve, tokens, keys, audit. Same configuration sources as serve."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from recordings_service import auditing, jobs, keys, logs, retention
from recordings_service.auditing import SYSTEM_ORIGIN
from recordings_service.auth import Actor, create_token
from recordings_service.clock import system_clock
from recordings_service.config import ROLES, Config, load_config
from recordings_service.errors import ConfigError, ServiceError
from recordings_service.serve import serve
from recordings_service.services import Services, open_services
from storage import catalog
from storage.errors import KeyFileError
from storage.key_files import KEY_FILES

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
    tokens.add_parser("list", parents=[common], help="list tokens (never their values)")
    revoke = tokens.add_parser("revoke", parents=[common], help="revoke a token by name")
    revoke.add_argument("--name", required=True)

    key_cmds = sub.add_parser("keys", help="key-encryption keys").add_subparsers(
        dest="action", required=True)
    key_cmds.add_parser("init", parents=[common],
                        help="make the key material of a new data directory")
    key_cmds.add_parser("rotate", parents=[common], help="make a new key version current")
    key_cmds.add_parser("rewrap", parents=[common], help="re-wrap data keys to the current "
                                                         "version now")
    key_cmds.add_parser("status", parents=[common], help="versions and their data-key counts")

    purge = sub.add_parser("purge", parents=[common],
                           help="one retention run now, printing what it did")
    purge.add_argument("--dry-run", action="store_true", help="report, change nothing")

    audit = sub.add_parser("audit", help="the audit log").add_subparsers(dest="action",
                                                                         required=True)
    audit.add_parser("verify", parents=[common], help="verify chain and checkpoints")
    audit.add_parser("checkpoint", parents=[common], help="sign a checkpoint of the head now")
    return parser


def _print(data: object) -> None:
    print(json.dumps(data, indent=2, default=str))


async def _tokens_create(services: Services, args: argparse.Namespace) -> int:
    token = await create_token(services.database, args.name, args.role, services.clock())
    await auditing.record(services, auditing.event(
        CLI_ACTOR, SYSTEM_ORIGIN, "token_created", "allowed",
        detail={"name": args.name, "roles": sorted(set(args.role))}))
    print(f"created token {args.name!r} with roles {', '.join(sorted(set(args.role)))}",
          file=sys.stderr)
    print(token)
    return 0


async def _tokens_list(services: Services, args: argparse.Namespace) -> int:
    async with services.database.read() as conn:
        rows = await catalog.list_tokens(conn)
    _print([{"name": r.name, "roles": list(r.roles), "created_at": r.created_at,
             "revoked_at": r.revoked_at} for r in rows])
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
    # open_services made the key files (only a new installation gets them): list them.
    for name in KEY_FILES:
        print(services.config.data_dir.resolve() / name)
    return 0


async def _keys_rotate(services: Services, args: argparse.Namespace) -> int:
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


async def _audit_verify(services: Services, args: argparse.Namespace) -> int:
    report = await jobs.verify_audit(services)
    _print(report.as_json())
    if not report.ok:
        print(f"audit log verification FAILED at seq {report.first_bad_seq}", file=sys.stderr)
        return 1
    return 0


async def _audit_checkpoint(services: Services, args: argparse.Namespace) -> int:
    _print((await jobs.checkpoint(services)).as_json())
    return 0


async def _purge(services: Services, args: argparse.Namespace) -> int:
    await retention.apply_configured_retention(services)
    _print(await retention.run_purge(services, retention.RETENTION_ACTOR, SYSTEM_ORIGIN,
                                     dry_run=args.dry_run))
    return 0


Command = Callable[[Services, argparse.Namespace], Awaitable[int]]

COMMANDS: dict[tuple[str, str | None], Command] = {
    ("tokens", "create"): _tokens_create,
    ("tokens", "list"): _tokens_list,
    ("tokens", "revoke"): _tokens_revoke,
    ("keys", "init"): _keys_init,
    ("keys", "rotate"): _keys_rotate,
    ("keys", "rewrap"): _keys_rewrap,
    ("keys", "status"): _keys_status,
    ("audit", "verify"): _audit_verify,
    ("audit", "checkpoint"): _audit_checkpoint,
    ("purge", None): _purge,
}


async def _run(config: Config, command: Command, args: argparse.Namespace) -> int:
    async with open_services(config, system_clock) as services:
        return await command(services, args)


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
            asyncio.run(serve(config, extra_worker=args.worker,
                              argv=[a for a in argv if a != "--worker"]))
        except (RuntimeError, OSError, KeyFileError) as exc:
            # e.g. the port is taken, another serve holds this data directory, a key file
            # is missing (its message names the file, never its content)
            print(f"cannot start: {exc}", file=sys.stderr)
            return 1
        return 0
    if (args.command, getattr(args, "action", None)) == ("keys", "init") and any(
            (config.data_dir / name).exists() for name in KEY_FILES):
        print(f"error: {config.data_dir} has its key material already; keys init makes it "
              f"only for a new data directory", file=sys.stderr)
        return 1
    try:
        command = COMMANDS[(args.command, getattr(args, "action", None))]
        return asyncio.run(_run(config, command, args))
    except ServiceError as exc:
        print(f"error: {exc.detail}", file=sys.stderr)
        return 2
    except KeyFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
