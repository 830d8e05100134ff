"""Who may call a route, declared once per route and enforced in one middleware.

Both faces of the HTTP layer (the JSON API and the console) register their routes here
with a ``Guard``; the authentication middleware looks the matched route up and applies
it, so no handler checks roles itself.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Face = Literal["api", "console"]


@dataclass(frozen=True)
class Guard:
    face: Face
    roles: frozenset[str]  # empty: public, no credentials needed
    action: str  # the audit log's name for a refused call
    # HTTP Basic with a token (username = the token's name) besides Bearer: only for
    # clients that can put credentials nowhere but in a URL's user-info (a PBX's curl).
    basic: bool = False
    # Refusals of a valid caller's request (4xx from the handler) are audited too: the
    # data-subject routes, where a refused request is itself evidence.
    audit_refusals: bool = False

    @property
    def public(self) -> bool:
        return not self.roles


GUARDS = web.AppKey("guards", dict)  # (method, canonical path) -> Guard


# A path parameter matches any characters but "/" (aiohttp's default also refuses "{"
# and "}", so an id the service accepted could not be named by its routes); a "/" in an
# id is sent encoded as %2F, which aiohttp decodes after matching.
_PARAMETER = re.compile(r"\{(\w+)\}")


def add_route(app: web.Application, method: str, path: str, handler: Handler,
              guard: Guard) -> None:
    route = app.router.add_route(method, _PARAMETER.sub(r"{\1:[^/]+}", path), handler)
    assert route.resource is not None
    app.setdefault(GUARDS, {})[(method, route.resource.canonical)] = guard


def guard_of(request: web.Request) -> Guard | None:
    """The matched route's guard; None when nothing matched (404/405 follow)."""
    resource = request.match_info.route.resource
    if resource is None:
        return None
    guards: dict[tuple[str, str], Guard] = request.app[GUARDS]
    return guards.get((request.method, resource.canonical))
