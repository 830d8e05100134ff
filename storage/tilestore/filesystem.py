"""Tiles as files under a directory (``<data_dir>/audit-tiles`` for the service; any copy
of one, such as a backup's or a bucket synced to disk, for offline verification)."""

from __future__ import annotations

import asyncio
import os
import secrets
from pathlib import Path

from storage.durable import fsync_path
from storage.tilestore.base import TileStore, check_path


class FilesystemTileStore(TileStore):
    def __init__(self, root: Path) -> None:
        self.root = root

    async def put(self, path: str, data: bytes) -> None:
        target = self.root / check_path(path)

        def write() -> None:
            target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.partial")
            with tmp.open("wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
            fsync_path(target.parent)

        await asyncio.to_thread(write)

    async def get(self, path: str) -> bytes | None:
        target = self.root / check_path(path)
        try:
            return await asyncio.to_thread(target.read_bytes)
        except (FileNotFoundError, NotADirectoryError):
            return None
