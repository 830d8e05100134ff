"""aiohttp's server with problem+json for requests it cannot parse.

Errors raised while aiohttp parses a request (a bad Content-Length, a header line over the
limit, binary in a header) never reach the application: aiohttp answers them itself with
text/plain that echoes the offending bytes (a bearer token among them) and logs the
exception's message. Here they get the same problem+json as every other error, echo
nothing, and log only the exception's type.
"""

from __future__ import annotations

import logging
import uuid
from http import HTTPStatus

from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from recordings_service.api.problems import problem
from recordings_service.middlewares import SECURITY_HEADERS

log = logging.getLogger("recordings_service.http")


class _ProblemRequestHandler(RequestHandler):
    def handle_error(self, request: BaseRequest, status: int = 500,
                     exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        if isinstance(exc, ConnectionError):
            log.debug("connection lost", extra={"error": type(exc).__name__})
        else:
            log.warning("request could not be parsed", extra={
                "status": status, "error": type(exc).__name__ if exc else None})
        if request.writer.output_size > 0:
            raise ConnectionError("response already started; the connection is closed")
        title = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ \
            else "Error"
        reason = "invalid_request" if 400 <= status < 500 else "internal_error"
        response = problem(status, title, reason,
                           "the request could not be parsed as HTTP/1.1"
                           if reason == "invalid_request" else "an unexpected error occurred",
                           {**SECURITY_HEADERS, "Cache-Control": "no-store",
                            "X-Request-Id": uuid.uuid4().hex})
        response.force_close()
        return response


class _ProblemServer(web.Server):
    def __call__(self) -> RequestHandler:
        return _ProblemRequestHandler(self, loop=self._loop, **self._kwargs)


class AppRunner(web.AppRunner):
    """``web.AppRunner`` whose connections answer unparseable requests with problem+json."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        # aiohttp builds its Server inside Application._make_handler with no hook for the
        # connection class; the subclass only changes which handler each connection gets.
        server.__class__ = _ProblemServer
        return server
