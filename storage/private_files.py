"""Key material written once at first start: readable by the service's user only."""

from __future__ import annotations

import os


def create_private_file(path: os.PathLike[str], data: bytes) -> None:
    """Creates ``path`` (0600; fails if it exists) holding ``data``, fsynced."""
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
