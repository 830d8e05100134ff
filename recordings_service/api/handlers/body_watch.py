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
``RATE_WINDOW_SECONDS``.

Only the time the service spends *waiting for the client* (inside ``reading()``) is held
against it. Everything else is the service's: looking the call up and opening the blob
before the first audio byte is read, sealing a chunk, sending a part to the object store,
the commit after the last byte. A PostgreSQL catalog that took 10 s to answer before the
audio was read once turned a 1 kB upload into a 408 ``body_too_slow``; a stalled store
must be answered as one (503), never as the client's fault. Likewise when the event loop
itself was held (the timer fires late): the client's bytes were waiting in the socket
while nobody read them, so the watch starts afresh instead of judging.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Iterator
from contextlib import asynccontextmanager, contextmanager

from recordings_service.errors import RequestTimeout

# Long enough for a TCP window or two on a slow link, short enough that a trickler holds
# its slot for seconds, not forever.
RATE_WINDOW_SECONDS = 10.0
# A timer this late means the loop was busy elsewhere, not that the client was slow.
LOOP_HELD_SECONDS = 1.0


class BodyWatch:
    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._last = self._loop.time()  # the client's silence, while reading, runs from here
        self._reading_since: float | None = None
        self._counted_from = 0.0
        self._done = False
        self.received = 0
        self.read_seconds = 0.0  # spent waiting for the client in the current rate window

    def progress(self, size: int = 0) -> None:
        self._last = self._loop.time()
        self.received += size

    @property
    def is_reading(self) -> bool:
        return self._reading_since is not None

    @contextmanager
    def reading(self) -> Iterator[None]:
        """Around each wait for the client's bytes."""
        now = self._loop.time()
        self._reading_since = self._counted_from = self._last = now
        try:
            yield
        finally:
            now = self._loop.time()
            self.read_seconds += now - self._counted_from
            self._reading_since = None
            self._last = now

    async def read(self, pending: Awaitable[bytes]) -> bytes:
        with self.reading():
            chunk = await pending
        self.progress(len(chunk))
        return chunk

    def waited(self, now: float) -> float:
        return self.read_seconds + (now - self._counted_from if self.is_reading else 0.0)

    def new_window(self, now: float) -> None:
        self.read_seconds = 0.0
        self._counted_from = now

    def forgive(self, now: float) -> None:
        """The loop was held: what looked like the client's silence was ours."""
        self.new_window(now)
        self._last = now

    def finished(self) -> None:
        self._done = True


@asynccontextmanager
async def watched_body(idle: float, min_rate: float = 0.0,
                       window: float = RATE_WINDOW_SECONDS) -> AsyncIterator[BodyWatch]:
    watch = BodyWatch()
    loop = asyncio.get_running_loop()
    handle: asyncio.TimerHandle | None = None
    window_end = loop.time() + window
    window_start_bytes = 0
    too_slow = False
    due_at = 0.0  # when the armed timer should fire
    try:
        async with asyncio.timeout(None) as deadline:

            def expire() -> None:
                deadline.reschedule(loop.time())  # expire now: cancels the read

            def arm(now: float) -> None:
                nonlocal handle, due_at
                due = watch._last + idle if watch.is_reading else now + idle
                due_at = min(due, window_end) if min_rate else due
                handle = loop.call_at(due_at, check)

            def check() -> None:
                nonlocal window_end, window_start_bytes, too_slow
                if watch._done:
                    return
                now = loop.time()
                if now - due_at > LOOP_HELD_SECONDS:
                    watch.forgive(now)
                    window_end, window_start_bytes = now + window, watch.received
                    arm(now)
                    return
                if watch.is_reading and now >= watch._last + idle:
                    expire()
                    return
                if min_rate and now >= window_end:
                    waited = watch.waited(now)
                    if waited >= window / 2 and \
                            watch.received - window_start_bytes < min_rate * waited:
                        too_slow = True
                        expire()
                        return
                    window_end, window_start_bytes = now + window, watch.received
                    watch.new_window(now)
                arm(now)

            arm(loop.time())
            try:
                yield watch
            finally:
                assert handle is not None
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
