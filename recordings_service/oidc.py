"""Single sign-on with OpenID Connect: authorization code flow with PKCE, state and nonce.

The provider's metadata and signing keys come from its discovery document; the ID token is
verified with PyJWT (signature against the provider's JWKS, ``iss``, ``aud``, ``exp``,
``iat``, and our ``nonce``). The person's roles come from one claim mapped through
``[auth.oidc.role_map]``: no mapped value, no access. A login's state is single-use and
kept in the catalog for ten minutes, so the provider may return the browser to any
replica. The login is also bound to the browser that began it: a cookie holds a random
value that the stored state is tied to, so a callback URL that an attacker began (his
code, his state) signs no one else's browser into his account (login CSRF). The person
is recorded as an account that can only sign in this way (disable it
with ``users disable`` like any other), and gets the same server-side session.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
from datetime import timedelta
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
import jwt

from recordings_service import auditing, sessions
from recordings_service.auditing import Origin
from recordings_service.errors import BadRequest, Forbidden, NotFound, Unauthenticated
from recordings_service.services import Services
from storage import people_store
from storage.limits import NAME

LOGIN_TTL = timedelta(minutes=10)
ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA"]
_metadata: dict[str, dict[str, Any]] = {}
_jwks: dict[str, jwt.PyJWKClient] = {}


def _enabled(services: Services) -> None:
    if not services.config.oidc_issuer:
        raise NotFound("single sign-on is not configured")


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


async def _discovery(services: Services) -> dict[str, Any]:
    issuer = services.config.oidc_issuer
    if issuer not in _metadata:
        url = f"{issuer}/.well-known/openid-configuration"
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as s, \
                    s.get(url) as response:
                response.raise_for_status()
                document = await response.json()
        except (aiohttp.ClientError, TimeoutError, ValueError):
            raise Unauthenticated("the identity provider cannot be reached",
                                  reason="oidc_unavailable") from None
        if document.get("issuer") != issuer:
            raise Unauthenticated("the identity provider names another issuer",
                                  reason="oidc_invalid")
        _metadata[issuer] = document
    return _metadata[issuer]


# The browser's half of a login: HttpOnly, SameSite=Lax (the provider's redirect back is a
# top-level cross-site GET, which Lax lets through), sent only to the callback.
BINDING_COOKIE = "rs_oidc_login"
BINDING_PATH = "/v1/session/oidc/"


def _login_key(state: str, binding: str) -> str:
    return _hash(f"{state}:{binding}")


async def login_url(services: Services) -> tuple[str, str]:
    """Where to send the browser (the provider's authorization endpoint with a new state,
    nonce and PKCE challenge), and the value for the browser's binding cookie."""
    _enabled(services)
    config = services.config
    meta = await _discovery(services)
    state, nonce = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    binding = secrets.token_urlsafe(32)
    verifier = secrets.token_urlsafe(64)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    async with services.database.write() as conn:
        await people_store.begin_login(conn, _login_key(state, binding), nonce, verifier,
                                       services.clock())
    return binding, str(meta["authorization_endpoint"]) + "?" + urlencode({
        "response_type": "code", "client_id": config.oidc_client_id,
        "redirect_uri": config.oidc_redirect_url, "scope": config.oidc_scopes,
        "state": state, "nonce": nonce,
        "code_challenge": challenge.rstrip(b"=").decode(), "code_challenge_method": "S256"})


async def _exchange(services: Services, meta: dict[str, Any], code: str,
                    verifier: str) -> str:
    config = services.config
    form = {"grant_type": "authorization_code", "code": code,
            "redirect_uri": config.oidc_redirect_url, "code_verifier": verifier}
    headers = {}
    if config.oidc_client_secret:
        # client_secret_basic: each part form-encoded first (RFC 6749, 2.3.1).
        pair = f"{quote(config.oidc_client_id, safe='')}:" \
               f"{quote(config.oidc_client_secret.reveal(), safe='')}"
        headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
    else:
        form["client_id"] = config.oidc_client_id
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as s, \
                s.post(meta["token_endpoint"], data=form, headers=headers) as response:
            answer = await response.json(content_type=None)
            ok = response.status == 200
    except (aiohttp.ClientError, TimeoutError, ValueError):
        raise Unauthenticated("the identity provider cannot be reached",
                              reason="oidc_unavailable") from None
    token = answer.get("id_token") if ok and isinstance(answer, dict) else None
    if not isinstance(token, str):
        raise Unauthenticated("the identity provider refused the sign-in",
                              reason="oidc_invalid")
    return token


async def verify_id_token(services: Services, meta: dict[str, Any], token: str,
                          nonce: str) -> dict[str, Any]:
    """The ID token's claims, or jwt.PyJWTError."""
    uri = meta["jwks_uri"]
    client = _jwks.setdefault(uri, jwt.PyJWKClient(uri, cache_keys=True))
    key = await asyncio.to_thread(client.get_signing_key_from_jwt, token)
    claims: dict[str, Any] = jwt.decode(
        token, key.key, algorithms=ALGORITHMS, audience=services.config.oidc_client_id,
        issuer=services.config.oidc_issuer,
        options={"require": ["exp", "iat", "iss", "aud", "sub", "nonce"]})
    if not secrets.compare_digest(str(claims.get("nonce")), nonce):
        raise jwt.InvalidTokenError("the nonce is not this login's")
    return claims


def roles_of(services: Services, claims: dict[str, Any]) -> tuple[str, ...]:
    values = claims.get(services.config.oidc_roles_claim, [])
    if isinstance(values, str):
        values = [values]
    roles: set[str] = set()
    for value in values if isinstance(values, list) else []:
        roles.update(services.config.oidc_role_map.get(str(value), ()))
    return tuple(sorted(roles))


async def finish(services: Services, code: str | None, state: str | None,
                 binding: str | None, origin: Origin) -> sessions.SignedIn:
    _enabled(services)
    if not code or not state:
        raise BadRequest("oidc_state", "the provider's answer lacks its code or state")
    if not binding:
        await _denied(services, origin, "oidc_state", "no_binding_cookie")
        raise BadRequest("oidc_state", "this browser did not start this sign-in; start again "
                                       "from the sign-in page")
    async with services.database.write() as conn:
        login = await people_store.take_login(conn, _login_key(state, binding))
    now = services.clock()
    if login is None or now - login[2] > LOGIN_TTL:
        await _denied(services, origin, "oidc_state", None)
        raise BadRequest("oidc_state", "this sign-in is unknown, used already or too old; "
                                       "start again")
    nonce, verifier, _ = login
    meta = await _discovery(services)
    token = await _exchange(services, meta, code, verifier)
    try:
        claims = await verify_id_token(services, meta, token, nonce)
    except jwt.PyJWTError as exc:
        await _denied(services, origin, "oidc_invalid", type(exc).__name__)
        raise Unauthenticated("the identity provider's answer did not verify",
                              reason="oidc_invalid") from None
    name = str(claims.get(services.config.oidc_name_claim) or claims["sub"])
    if len(name) > NAME or not name.isprintable() or name.startswith("system:"):
        # Never cut: two identities whose names share a prefix would become one person.
        await _denied(services, origin, "sso_name_unusable", None)
        raise Forbidden("sso_name_unusable",
                        f"the name your identity provider gives is not usable here (1-{NAME} "
                        f"printable characters, not starting with 'system:')")
    roles = roles_of(services, claims)
    if not roles:
        await _denied(services, origin, "no_roles", None, name)
        raise Forbidden("no_roles", "your identity provider grants you no role here")
    agent_id = None
    if "agent" in roles:
        claimed = claims.get(services.config.oidc_agent_id_claim)
        if not isinstance(claimed, str) or not claimed.strip() or len(claimed) > 255 \
                or not claimed.isprintable():
            # An agent who is no agent in particular would see no one's evaluations or
            # everyone's: neither is safe, so the agent role is not given.
            await _denied(services, origin, "no_agent_id", None, name)
            raise Forbidden("no_agent_id", "your identity provider makes you an agent but "
                                           "names no agent id for you")
        agent_id = claimed.strip()
    async with services.database.write() as conn:
        outcome = await people_store.upsert_sso_user(conn, name, list(roles), now, agent_id)
    if outcome == "token":
        await _denied(services, origin, "name_taken", None, name)
        raise Forbidden("name_taken", "a system's token has this name, so no person can sign "
                                      "in under it; ask an administrator")
    if outcome != "ok":
        await _denied(services, origin, outcome, None, name)
        raise Forbidden("account_unusable", "this account cannot sign in through single "
                                            "sign-on (disabled, or a local account)")
    return await sessions.open_session(services, name, roles, origin, "oidc", agent_id)


async def _denied(services: Services, origin: Origin, reason: str, error: str | None,
                  name: str | None = None) -> None:
    await auditing.record(services, auditing.event(
        auditing.ANONYMOUS, origin, "sign_in", "denied", reason=reason,
        detail={"method": "oidc", "account": name, "error": error}))
