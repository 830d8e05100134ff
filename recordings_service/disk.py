"""Free space where the data directory lives: uploads keep a reserve, /readyz reports it."""

from __future__ import annotations

import os
from pathlib import Path


def free_bytes(path: Path) -> int:
    # statvfs is one system call on a cached inode: cheap enough for every upload.
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def readiness(path: Path, reserve: int) -> str:
    free = free_bytes(path)
    if free < reserve:
        return f"disk nearly full: {free} bytes free, {reserve} kept in reserve"
    return "ok"
