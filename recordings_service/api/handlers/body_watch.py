"""The request body idle timeout: one timer per request, not one per read.

A timer armed and cancelled around every read of a 100 MB body (400+ reads) cost about a
tenth of ingest throughput (docs/benchmarks.md). Here reads only note the time; a single
timer wakes when the body could first have gone idle, and either re-arms at the next such
moment or, if nothing arrived meanwhile, expires the request's ``asyncio.timeout`` (which
cancels the waiting read and surfaces as 408 ``body_timeout``). Once the body has been
read, the watch stops: a slow commit afterwards is not the client's silence.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from recordings_service.errors import RequestTimeout


class BodyWatch:
    def __init__(self, idle: float) -> None:
        self._idle = idle
        self._loop = asyncio.get_running_loop()
        self._last = self._loop.time()
        self._done = False

    def progress(self) -> None:
        self._last = self._loop.time()

    def finished(self) -> None:
        self._done = True


@asynccontextmanager
async def watched_body(idle: float) -> AsyncIterator[BodyWatch]:
    watch = BodyWatch(idle)
    loop = asyncio.get_running_loop()
    handle: asyncio.TimerHandle | None = None
    try:
        async with asyncio.timeout(None) as deadline:

            def check() -> None:
                nonlocal handle
                if watch._done:
                    return
                due = watch._last + idle
                if loop.time() >= due:
                    deadline.reschedule(loop.time())  # expire now: cancels the read
                else:
                    handle = loop.call_at(due, check)

            handle = loop.call_at(watch._last + idle, check)
            try:
                yield watch
            finally:
                handle.cancel()
    except TimeoutError:
        if not deadline.expired():
            raise  # a timeout of something else, not ours
        raise RequestTimeout("body_timeout",
                             "the request body stopped arriving; send it again") from None
