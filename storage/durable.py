"""Making what was written survive a crash."""

from __future__ import annotations

import os


def fsync_path(path: os.PathLike[str] | str) -> None:
    """fsyncs a file's data, or a directory's entries (after a create, rename or unlink in
    it), by path."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
