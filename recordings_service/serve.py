"""Running the app with a shutdown that lets requests in flight finish.

aiohttp's own graceful shutdown marks every connection closing first, and a closing
connection ignores incoming bytes: an upload still sending its body would stall until the
timeout and be cancelled. So on SIGTERM/SIGINT we stop listening, answer new requests
with 503, wait (up to ``shutdown_timeout``) until the requests in flight are done, and only
then hand over to aiohttp's cleanup. An upload cut at the timeout leaves nothing visible;
its temporary file is removed at the next start.
"""

from __future__ import annotations

import asyncio
import logging
import signal

from aiohttp import web

from recordings_service.app import DRAINING, IN_FLIGHT, create_app
from recordings_service.config import Config

log = logging.getLogger(__name__)


async def serve(config: Config) -> None:
    app = create_app(config)
    runner = web.AppRunner(app, access_log=None, handle_signals=False,
                           shutdown_timeout=config.shutdown_timeout)
    await runner.setup()
    site = web.TCPSite(runner, config.host, config.port)
    await site.start()
    log.info("listening", extra={"host": config.host, "port": config.port})

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
        log.info("shutting down: finishing requests in flight",
                 extra={"in_flight": app[IN_FLIGHT].count})
        await site.stop()
        app[DRAINING].set()
        try:
            await asyncio.wait_for(app[IN_FLIGHT].idle(), config.shutdown_timeout)
        except TimeoutError:
            log.warning("shutdown timeout: cancelling requests still in flight",
                        extra={"in_flight": app[IN_FLIGHT].count})
    finally:
        await runner.cleanup()
