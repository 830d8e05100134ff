"""Who may call a route, declared once per route and enforced in one middleware.

Both faces of the HTTP layer (the JSON API and the console) register their routes here
with a ``Guard``; the authentication middleware looks the matched route up and applies
it, so no handler checks roles itself.
"""

from __future__ import annotations

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

    @property
    def public(self) -> bool:
        return not self.roles


GUARDS = web.AppKey("guards", dict)  # (method, canonical path) -> Guard


def add_route(app: web.Application, method: str, path: str, handler: Handler,
              guard: Guard) -> None:
    app.router.add_route(method, path, handler)
    app.setdefault(GUARDS, {})[(method, path)] = guard


def guard_of(request: web.Request) -> Guard | None:
    """The matched route's guard; None when nothing matched (404/405 follow)."""
    resource = request.match_info.route.resource
    if resource is None:
        return None
    guards: dict[tuple[str, str], Guard] = request.app[GUARDS]
    return guards.get((request.method, resource.canonical))
