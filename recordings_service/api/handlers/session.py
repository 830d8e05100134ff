"""People's sessions: sign in, who am I, sign out."""

from __future__ import annotations

from aiohttp import web

from recordings_service import oidc, sessions
from recordings_service.api.handlers.common import json_body, json_response
from recordings_service.appkeys import ACTOR, SESSION, origin, services
from recordings_service.client_address import same_origin, scheme
from recordings_service.errors import BadRequest, Forbidden, UnsupportedMediaType
from recordings_service.times import rfc3339
from storage.people_store import SessionRow


def _secure(request: web.Request) -> bool:
    return scheme(request) == "https"


def _session_json(request: web.Request, session: SessionRow) -> dict[str, object]:
    return {"name": session.user_name, "roles": sorted(session.roles),
            "agent_id": session.agent_id,
            "expires_at": rfc3339(sessions.expires_at(services(request), session)),
            "csrf_token": session.csrf_token}


async def post_session(request: web.Request) -> web.StreamResponse:
    # A cross-site page could otherwise sign a visitor into the attacker's account (login
    # CSRF): an HTML form cannot send application/json without a CORS preflight, and a
    # browser names the page's origin.
    if request.content_type != "application/json":
        raise UnsupportedMediaType("unsupported_media_type",
                                   "sign in with a JSON body (application/json)")
    sent_from = request.headers.get("Origin")
    if sent_from is not None and not same_origin(sent_from, request):
        raise Forbidden("csrf", "sign-in from another site is refused")
    body = await json_body(request)
    name, password = body.get("name"), body.get("password")
    if not isinstance(name, str) or not isinstance(password, str) or not name \
            or len(name) > 128 or len(password) > 1024:
        raise BadRequest("invalid_credentials_format",
                         "give the account's name and password as strings")
    signed_in = await sessions.sign_in(services(request), name, password, origin(request))
    return _with_cookie(request, signed_in)


def _with_cookie(request: web.Request, signed_in: sessions.SignedIn) -> web.Response:
    response = json_response(_session_json(request, signed_in.session))
    response.set_cookie(sessions.COOKIE, signed_in.cookie_value, httponly=True,
                        samesite="Strict", secure=_secure(request), path="/",
                        max_age=services(request).config.auth_session_lifetime_hours * 3600)
    return response


async def oidc_login(request: web.Request) -> web.StreamResponse:
    binding, location = await oidc.login_url(services(request))
    response = web.Response(status=302, headers={"Location": location})
    response.set_cookie(oidc.BINDING_COOKIE, binding, httponly=True, samesite="Lax",
                        secure=_secure(request), path=oidc.BINDING_PATH,
                        max_age=int(oidc.LOGIN_TTL.total_seconds()))
    return response


# The session cookie is SameSite=Strict, and a redirect chain that began at the identity
# provider is cross-site: a browser would not send the new cookie on a redirect to the
# console. A page of our own that moves on by itself is same-site, so it does.
_LANDING = (b'<!doctype html><html lang="en"><head><meta charset="utf-8">'
            b'<meta http-equiv="refresh" content="0; url=/"><title>Signed in</title></head>'
            b'<body><p>Signed in. <a href="/">Continue to the console</a>.</p></body></html>')


async def oidc_callback(request: web.Request) -> web.StreamResponse:
    signed_in = await oidc.finish(services(request), request.query.get("code"),
                                  request.query.get("state"),
                                  request.cookies.get(oidc.BINDING_COOKIE), origin(request))
    response = _with_cookie(request, signed_in)
    response.del_cookie(oidc.BINDING_COOKIE, path=oidc.BINDING_PATH)
    if "text/html" in request.headers.get("Accept", ""):
        response.body = _LANDING
        response.content_type = "text/html"
    return response


async def get_session(request: web.Request) -> web.StreamResponse:
    session = request.get(SESSION)
    if session is not None:
        return json_response(_session_json(request, session))
    actor = request[ACTOR]  # a bearer token: who it is, no session
    return json_response({"name": actor.name, "roles": sorted(actor.roles),
                          "agent_id": actor.agent_id, "expires_at": None, "csrf_token": None})


async def delete_session(request: web.Request) -> web.StreamResponse:
    session = request.get(SESSION)
    if session is not None:
        await sessions.sign_out(services(request), session, origin(request))
    response = web.Response(status=204)
    response.del_cookie(sessions.COOKIE, path="/")
    return response
