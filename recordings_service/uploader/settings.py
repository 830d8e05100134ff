"""``upload-watch``'s settings from its command line, checked before anything runs."""

from __future__ import annotations

import argparse
import stat
from urllib.parse import urlsplit

from recordings_service.uploader.names import compile_pattern
from recordings_service.uploader.watch import Settings


def upload_settings(args: argparse.Namespace) -> Settings:
    url = urlsplit(args.url)
    if url.scheme not in ("http", "https") or not url.hostname or url.username \
            or url.password or url.query:
        raise ValueError("--url is the service's base URL, e.g. http://127.0.0.1:8080 "
                         "(credentials go in --token-file)")
    mode = args.token_file.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ValueError(f"{args.token_file} is readable by others: chmod 600 it")
    token = args.token_file.read_text().strip()
    if not token:
        raise ValueError(f"{args.token_file} is empty")
    if args.stable_seconds < 0 or args.metadata_grace_seconds < 0:
        raise ValueError("times must not be negative")
    return Settings(
        directory=args.directory, url=args.url, token=token, purposes=args.purpose,
        pattern=compile_pattern(args.pattern) if args.pattern else None,
        stable_seconds=args.stable_seconds,
        metadata_grace_seconds=args.metadata_grace_seconds, keep=args.keep,
        polling=args.polling, metrics_port=args.metrics_port)
