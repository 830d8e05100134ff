"""Typed keys for app and request state, and the two readers of them every face of the
HTTP layer (API, console, middlewares) uses."""


from aiohttp import web

from recordings_service.auditing import Origin
from recordings_service.auth import Actor
from recordings_service.client_address import client_address
from recordings_service.clock import Clock
from recordings_service.config import Config
from recordings_service.services import Services
from recordings_service.upload_slots import UploadSlots
from storage.people_store import SessionRow

CONFIG = web.AppKey("config", Config)
CLOCK: web.AppKey[Clock] = web.AppKey("clock")
SERVICES = web.AppKey("services", Services)
OPENAPI = web.AppKey("openapi", dict)
# limits.max_concurrent_uploads, per process.
UPLOAD_SLOTS = web.AppKey("upload_slots", UploadSlots)

# Request-scoped values.
ACTOR = web.RequestKey("actor", Actor)
# The person's session when the request came with a session cookie.
SESSION = web.RequestKey("session", SessionRow)
REQUEST_ID = web.RequestKey("request_id", str)


def services(request: web.Request) -> Services:
    return request.app[SERVICES]


def origin(request: web.Request) -> Origin:
    """Where a request came from, as its audit entries record it."""
    proxies = request.app[SERVICES].config.trusted_proxies
    return Origin(client_address(request, proxies), request.get(REQUEST_ID))
