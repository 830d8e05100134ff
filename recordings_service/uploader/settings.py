"""``upload-watch``'s and ``cdr-watch``'s settings from their command lines, checked before
anything runs."""

from __future__ import annotations

import argparse
import stat
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from recordings_service.uploader import cdr_watch
from recordings_service.uploader.names import compile_pattern, parse_leg_names
from recordings_service.uploader.watch import Settings


def service_token(args: argparse.Namespace) -> str:
    """The checked ``--url`` and the token of ``--token-file`` (private, not empty)."""
    url = urlsplit(args.url)
    if url.scheme not in ("http", "https") or not url.hostname or url.username \
            or url.password or url.query:
        raise ValueError("--url is the service's base URL, e.g. http://127.0.0.1:8080 "
                         "(credentials go in --token-file)")
    mode = args.token_file.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ValueError(f"{args.token_file} is readable by others: chmod 600 it")
    token = str(args.token_file.read_text().strip())
    if not token:
        raise ValueError(f"{args.token_file} is empty")
    return token


def cdr_settings(args: argparse.Namespace) -> cdr_watch.Settings:
    token = service_token(args)
    columns = tuple(c.strip() for c in args.columns.split(",")) if args.columns \
        else cdr_watch.CSV_COLUMNS
    missing = {"uniqueid", "start", "end"} - set(columns)
    if missing:
        raise ValueError(f"--columns must name {', '.join(sorted(missing))}")
    try:
        ZoneInfo(args.timezone)
    except (ValueError, ZoneInfoNotFoundError):
        raise ValueError(f"--timezone {args.timezone!r} is not a time zone name") from None
    return cdr_watch.Settings(file=args.file, url=args.url, token=token, source=args.source,
                              columns=columns, timezone=args.timezone, state=args.state)


def upload_settings(args: argparse.Namespace) -> Settings:
    token = service_token(args)
    if args.stable_seconds < 0 or args.metadata_grace_seconds < 0:
        raise ValueError("times must not be negative")
    if args.leg_names and (not args.pattern or "{leg}" not in args.pattern):
        raise ValueError("--leg-names names the {leg} of a --pattern")
    return Settings(
        directory=args.directory, url=args.url, token=token, purposes=args.purpose,
        pattern=compile_pattern(args.pattern, parse_leg_names(args.leg_names or ""))
        if args.pattern else None,
        stable_seconds=args.stable_seconds,
        metadata_grace_seconds=args.metadata_grace_seconds, keep=args.keep,
        polling=args.polling, metrics_port=args.metrics_port)
