"""Running the app with a shutdown that lets requests in flight finish, in one or more
processes.

aiohttp's own graceful shutdown marks every connection closing first, and a closing
connection ignores incoming bytes: an upload still sending its body would stall until the
timeout and be cancelled. So on SIGTERM/SIGINT we stop listening, answer new requests
with 503, wait (up to ``shutdown_timeout``) until the requests in flight are done, and only
then hand over to aiohttp's cleanup. An upload cut at the timeout leaves nothing visible;
its temporary file is removed at the next start.

With ``server.workers`` above 1, this process starts the others once it has cleaned up
the data directory and is listening; all of them accept on the same port (SO_REUSEPORT).
One Python process keeps one core busy at most (docs/benchmarks.md). A worker that exits
on its own is started again. The extra workers stop when this one forwards SIGTERM, and by
themselves if it dies: their stdin is a pipe from it, which closes with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence

from aiohttp import web

from recordings_service.api.http_server import AppRunner
from recordings_service.app import create_app
from recordings_service.config import Config
from recordings_service.metrics import share_between_processes
from recordings_service.middlewares import DRAINING, IN_FLIGHT

log = logging.getLogger(__name__)

# How long the first process waits for the others after its own shutdown, beyond theirs.
WORKER_EXIT_GRACE = 10.0
# Back-off between restarts of a worker that exited; reset once one ran this long.
RESTART_DELAY = 1.0
MAX_RESTART_DELAY = 60.0


def event_loop_factory(config: Config) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """``[server] event_loop``: asyncio's own loop, or uvloop's (libuv)."""
    if config.event_loop == "uvloop":
        import uvloop

        return uvloop.new_event_loop
    return None


async def serve(config: Config, extra_worker: bool = False,
                argv: Sequence[str] = ()) -> None:
    """``argv``: the serve command line, so that extra workers get the same configuration."""
    if config.workers > 1 and not extra_worker:
        share_between_processes(config.data_dir / "metrics")
    app = create_app(config, extra_worker=extra_worker)
    runner = AppRunner(app, access_log=None, handle_signals=False,
                           shutdown_timeout=config.shutdown_timeout)
    await runner.setup()
    site = web.TCPSite(runner, config.host, config.port, reuse_port=config.workers > 1)
    await site.start()
    host, port = runner.addresses[0][:2]
    log.info("listening", extra={"host": host, "port": port, "extra_worker": extra_worker})

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    workers: list[asyncio.subprocess.Process] = []
    watchers: list[asyncio.Task[None]] = []
    try:
        if extra_worker:
            _stop_when_parent_goes(stop)
        else:
            # The port actually bound: with --port 0 every worker must share this one.
            command = [sys.executable, "-m", "recordings_service", *argv,
                       "--port", str(port), "--worker"]
            for slot in range(config.workers - 1):
                workers.append(await _start_worker(command))
                watchers.append(asyncio.create_task(_keep(workers, slot, command, stop)))
        await stop.wait()
        log.info("shutting down: finishing requests in flight",
                 extra={"in_flight": app[IN_FLIGHT].count})
        _terminate(workers)  # they drain while we do
        await site.stop()
        app[DRAINING].set()
        try:
            await asyncio.wait_for(app[IN_FLIGHT].idle(), config.shutdown_timeout)
        except TimeoutError:
            log.warning("shutdown timeout: cancelling requests still in flight",
                        extra={"in_flight": app[IN_FLIGHT].count})
    finally:
        await runner.cleanup()
        for task in watchers:
            task.cancel()
        await _wait_for(workers, config.shutdown_timeout + WORKER_EXIT_GRACE)


async def _start_worker(command: Sequence[str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(*command, stdin=asyncio.subprocess.PIPE)


async def _keep(workers: list[asyncio.subprocess.Process], slot: int,
                command: Sequence[str], stop: asyncio.Event) -> None:
    """Starts a worker again when it exits before shutdown, waiting longer each time it
    keeps failing (a worker that cannot start must not spin)."""
    delay = RESTART_DELAY
    while True:
        started = _now()
        code = await workers[slot].wait()
        if stop.is_set():
            return
        log.error("a worker process exited; starting another",
                  extra={"pid": workers[slot].pid, "exit_code": code})
        if _now() - started > MAX_RESTART_DELAY:
            delay = RESTART_DELAY  # it had been running a good while
        await asyncio.sleep(delay)
        delay = min(delay * 2, MAX_RESTART_DELAY)
        if stop.is_set():
            return
        workers[slot] = await _start_worker(command)


def _now() -> float:
    return asyncio.get_running_loop().time()


def _stop_when_parent_goes(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    fd = sys.stdin.fileno()

    def readable() -> None:
        try:
            data = os.read(fd, 4096)
        except OSError:
            data = b""
        if not data:
            loop.remove_reader(fd)
            log.warning("the first serve process is gone: shutting down")
            stop.set()

    loop.add_reader(fd, readable)


def _terminate(workers: list[asyncio.subprocess.Process]) -> None:
    for process in workers:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)


async def _wait_for(workers: list[asyncio.subprocess.Process], grace: float) -> None:
    if not workers:
        return
    _terminate(workers)  # again, harmless, for a start-up that failed half way
    waits = [asyncio.ensure_future(p.wait()) for p in workers]
    _, pending = await asyncio.wait(waits, timeout=grace)
    for process in workers:
        if process.returncode is None:
            log.error("a worker did not stop in time: killed", extra={"pid": process.pid})
            with contextlib.suppress(ProcessLookupError):
                process.kill()
    if pending:
        await asyncio.wait(pending)
