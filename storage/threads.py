"""Blocking calls handed to a worker thread that must finish even if the caller is cancelled."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


async def run_to_end(fn: Callable[[], T]) -> T:
    """Runs ``fn`` in a worker thread; if the caller is cancelled meanwhile, waits for ``fn``
    to return before the cancellation goes on.

    A thread cannot be stopped: returning early would let the caller close a descriptor the
    thread still writes to (whose number may already belong to another file) or hand back a
    connection that is mid-commit.
    """
    future = asyncio.get_running_loop().run_in_executor(None, fn)
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        while not future.done():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait([future])
        if not future.cancelled():
            future.exception()  # retrieved: the cancellation is what the caller gets
        raise
