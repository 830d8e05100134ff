"""Where the audit archive's tiles live: small immutable objects under slash-separated
paths (the C2SP tlog-tiles layout, storage/tlog_tiles.py), readable without any key."""

from __future__ import annotations

from abc import ABC, abstractmethod


class TileStore(ABC):
    @abstractmethod
    async def put(self, path: str, data: bytes) -> None:
        """Stores ``data`` under ``path`` durably and atomically (a reader sees the whole
        object or none); storing the same path again replaces it."""

    @abstractmethod
    async def get(self, path: str) -> bytes | None:
        """The object under ``path``, or None when there is none."""


def check_path(path: str) -> str:
    """Paths are relative, made of the layout's own characters: never a way out of the
    store's root or prefix."""
    parts = path.split("/")
    if not path or any(p in ("", ".", "..") for p in parts) or not all(
            c.isascii() and (c.isalnum() or c in "._-") for p in parts for c in p):
        raise ValueError(f"not a tile path: {path!r}")
    return path
