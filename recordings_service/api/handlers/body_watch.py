"""The request body's timeouts: silence, and a rate too low to be a real upload. One
timer per request, not one per read.

A timer armed and cancelled around every read of a 100 MB body (400+ reads) cost about a
tenth of ingest throughput (docs/benchmarks.md). Here reads only note the time and the
bytes; a single timer wakes when the body could first have gone idle or a rate window
ends, and either re-arms or expires the request's ``asyncio.timeout`` (which cancels the
waiting read and surfaces as 408 ``body_timeout``).

Silence alone is not enough: a client that sends one byte every 20 s is never silent for
30 s, and held an upload slot for as long as it liked. So the body must also arrive at
``limits.body_min_bytes_per_second`` or faster, measured over windows of
``RATE_WINDOW_SECONDS``. Time the service spends on a chunk it was handed (sealing it,
sending a part to the object store) is not the client's: while the body's reader is
``away``, the watch neither counts silence nor measures the rate, so a stalled store is
answered as one (503), never as the client's 408. Once the body has been read, the watch
stops: a slow commit afterwards is not the client's doing either.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

from recordings_service.errors import RequestTimeout

# Long enough for a TCP window or two on a slow link, short enough that a trickler holds
# its slot for seconds, not forever.
RATE_WINDOW_SECONDS = 10.0


class BodyWatch:
    def __init__(self, idle: float) -> None:
        self._idle = idle
        self._loop = asyncio.get_running_loop()
        self._last = self._loop.time()
        self._done = False
        self.received = 0
        self._away_since: float | None = None
        self.away_seconds = 0.0  # in the current rate window

    def progress(self, size: int = 0) -> None:
        self._last = self._loop.time()
        self.received += size

    @property
    def is_away(self) -> bool:
        return self._away_since is not None

    @contextmanager
    def away(self) -> Iterator[None]:
        """While the service works on what it read (around a generator's ``yield``)."""
        self._away_since = self._loop.time()
        try:
            yield
        finally:
            now = self._loop.time()
            self.away_seconds += now - self._away_since
            self._away_since = None
            self._last = now  # the client's silence, if any, starts now

    def finished(self) -> None:
        self._done = True


@asynccontextmanager
async def watched_body(idle: float, min_rate: float = 0.0,
                       window: float = RATE_WINDOW_SECONDS) -> AsyncIterator[BodyWatch]:
    watch = BodyWatch(idle)
    loop = asyncio.get_running_loop()
    handle: asyncio.TimerHandle | None = None
    window_end = loop.time() + window
    window_start_bytes = 0
    too_slow = False
    try:
        async with asyncio.timeout(None) as deadline:

            def expire() -> None:
                deadline.reschedule(loop.time())  # expire now: cancels the read

            def check() -> None:
                nonlocal handle, window_end, window_start_bytes, too_slow
                if watch._done:
                    return
                now = loop.time()
                if watch.is_away:
                    # Not waiting for the client: nothing to hold against it.
                    window_end, window_start_bytes = now + window, watch.received
                    watch.away_seconds = 0.0
                    handle = loop.call_at(now + min(idle, window), check)
                    return
                if now >= watch._last + idle:
                    expire()
                    return
                if min_rate and now >= window_end:
                    waited = window - watch.away_seconds
                    if waited >= window / 2 and \
                            watch.received - window_start_bytes < min_rate * waited:
                        too_slow = True
                        expire()
                        return
                    window_end, window_start_bytes = now + window, watch.received
                    watch.away_seconds = 0.0
                due = watch._last + idle
                handle = loop.call_at(min(due, window_end) if min_rate else due, check)

            first = watch._last + idle
            handle = loop.call_at(min(first, window_end) if min_rate else first, check)
            try:
                yield watch
            finally:
                handle.cancel()
    except TimeoutError:
        if not deadline.expired():
            raise  # a timeout of something else, not ours
        if too_slow:
            raise RequestTimeout("body_too_slow",
                                 f"the request body arrived slower than {min_rate:g} bytes "
                                 f"per second; send it again") from None
        raise RequestTimeout("body_timeout",
                             "the request body stopped arriving; send it again") from None
