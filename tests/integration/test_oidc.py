"""Single sign-on against a real OpenID Provider (npm oidc-provider): code flow with PKCE,
roles from the groups claim, and every way a sign-in must fail: no role, a replayed state,
a tampered ID token, a token for another audience, an expired token."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import pytest

from recordings_service import oidc
from recordings_service.auth import create_token
from recordings_service.config import Secret
from storage.limits import NAME
from tests.conftest import Api
from tests.oidc_provider import REDIRECT, Provider, authorize, oidc_provider  # noqa: F401


@pytest.fixture
def sso(api: Api, oidc_provider: Provider) -> Api:  # noqa: F811
    api.services.config = api.services.config.with_overrides(
        oidc_issuer=oidc_provider.issuer, oidc_client_id="recordings",
        oidc_client_secret=Secret("recordings-secret"), oidc_redirect_url=REDIRECT,
        oidc_scopes="openid email groups", oidc_roles_claim="groups",
        oidc_role_map={"callcentre-supervisors": ("supervisor",),
                       "callcentre-compliance": ("compliance", "auditor"),
                       "callcentre-agents": ("agent",)})
    return api


async def sign_in_as(api: Api, user: str) -> tuple[Any, dict[str, str]]:
    start = await api.client.get("/v1/session/oidc/login", allow_redirects=False)
    assert start.status == 302
    answer = await authorize(start.headers["Location"], user)
    return await api.client.get("/v1/session/oidc/callback", params=answer), answer


async def test_a_person_signs_in_through_the_provider_with_mapped_roles(sso: Api) -> None:
    response, _ = await sign_in_as(sso, "sup-anna")
    assert response.status == 200, await response.text()
    body = await response.json()
    assert body["name"] == "sup-anna@example.test" and body["roles"] == ["supervisor"]
    assert "HttpOnly" in response.headers["Set-Cookie"]
    me = await (await sso.client.get("/v1/session")).json()
    assert me["name"] == "sup-anna@example.test"
    entry = (await sso.audit(action="sign_in"))[-1]
    assert (entry["actor"], entry["outcome"], entry["detail"]["method"]) == (
        "sup-anna@example.test", "allowed", "oidc")
    # Another group, other roles.
    other, _ = await sign_in_as(sso, "cmp-bo")
    assert (await other.json())["roles"] == ["auditor", "compliance"]


async def test_a_browser_lands_on_a_page_that_moves_on_to_the_console(sso: Api) -> None:
    start = await sso.client.get("/v1/session/oidc/login", allow_redirects=False)
    answer = await authorize(start.headers["Location"], "sup-anna")
    landing = await sso.client.get("/v1/session/oidc/callback", params=answer,
                                   headers={"Accept": "text/html,application/xhtml+xml"})
    assert landing.status == 200 and landing.content_type == "text/html"
    assert 'http-equiv="refresh" content="0; url=/"' in await landing.text()
    assert "SameSite=Strict" in landing.headers["Set-Cookie"]
    home = await sso.client.get("/", allow_redirects=False)
    assert (home.status, home.headers["Location"]) == (303, "/recordings")


async def test_an_agent_signs_in_as_the_agent_the_provider_names(sso: Api) -> None:
    response, _ = await sign_in_as(sso, "agt-A-7")
    assert response.status == 200, await response.text()
    me = await (await sso.client.get("/v1/session")).json()
    assert (me["roles"], me["agent_id"]) == (["agent"], "A-7")
    mine = await sso.client.get("/v1/evaluations")
    assert mine.status == 200  # their own, without naming themselves
    sso.client.session.cookie_jar.clear()
    nameless, _ = await sign_in_as(sso, "agt-")
    assert nameless.status == 403 and (await nameless.json())["reason"] == "no_agent_id"


async def test_no_mapped_group_no_access(sso: Api) -> None:
    response, _ = await sign_in_as(sso, "plain-person")
    assert response.status == 403 and (await response.json())["reason"] == "no_roles"
    assert (await sso.client.get("/v1/session")).status == 401
    assert (await sso.audit(action="sign_in", outcome="denied"))[-1]["reason"] == "no_roles"


async def test_a_replayed_state_is_refused(sso: Api) -> None:
    first, answer = await sign_in_as(sso, "sup-anna")
    assert first.status == 200
    again = await sso.client.get("/v1/session/oidc/callback", params=answer)
    assert again.status == 400 and (await again.json())["reason"] == "oidc_state"


def _tampered(token: str) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["groups"] = ["callcentre-compliance"]  # a supervisor makes themself compliance
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


async def test_a_tampered_id_token_is_refused(sso: Api,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    exchange = oidc._exchange

    async def tampering(*args: Any) -> str:
        return _tampered(await exchange(*args))

    monkeypatch.setattr(oidc, "_exchange", tampering)
    response, _ = await sign_in_as(sso, "sup-anna")
    assert response.status == 401 and (await response.json())["reason"] == "oidc_invalid"
    denied = (await sso.audit(action="sign_in", outcome="denied"))[-1]
    assert denied["detail"]["error"] == "InvalidSignatureError"


async def test_a_token_for_another_audience_is_refused(sso: Api,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    exchange = oidc._exchange

    async def then_expect_another_client(services: Any, *args: Any) -> str:
        token = await exchange(services, *args)
        services.config = services.config.with_overrides(oidc_client_id="another-client")
        return token

    monkeypatch.setattr(oidc, "_exchange", then_expect_another_client)
    response, _ = await sign_in_as(sso, "sup-anna")
    assert response.status == 401
    denied = (await sso.audit(action="sign_in", outcome="denied"))[-1]
    assert denied["detail"]["error"] == "InvalidAudienceError"


async def test_an_expired_id_token_is_refused(sso: Api,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    # This client's ID tokens live one second.
    sso.services.config = sso.services.config.with_overrides(
        oidc_client_id="recordings-short", oidc_client_secret=Secret("recordings-short-secret"))
    exchange = oidc._exchange

    async def slowly(*args: Any) -> str:
        token = await exchange(*args)
        await asyncio.sleep(2.2)
        return token

    monkeypatch.setattr(oidc, "_exchange", slowly)
    response, _ = await sign_in_as(sso, "sup-anna")
    assert response.status == 401
    denied = (await sso.audit(action="sign_in", outcome="denied"))[-1]
    assert denied["detail"]["error"] == "ExpiredSignatureError"


async def test_a_callback_begun_in_another_browser_signs_no_one_in(sso: Api) -> None:
    # The attacker begins a login in his browser and stops at his own callback URL...
    start = await sso.client.get("/v1/session/oidc/login", allow_redirects=False)
    binding = start.headers["Set-Cookie"]
    assert "HttpOnly" in binding and "SameSite=Lax" in binding
    assert "Path=/v1/session/oidc/" in binding
    answer = await authorize(start.headers["Location"], "sup-anna")
    # ...and makes the victim's browser (without his cookie) open it.
    sso.client.session.cookie_jar.clear()
    opened = await sso.client.get("/v1/session/oidc/callback", params=answer)
    assert opened.status == 400 and (await opened.json())["reason"] == "oidc_state"
    assert (await sso.client.get("/v1/session")).status == 401
    denied = (await sso.audit(action="sign_in", outcome="denied"))[-1]
    assert (denied["reason"], denied["detail"]["error"]) == ("oidc_state",
                                                             "no_binding_cookie")
    # The victim's own, different, login does not fit the attacker's state either.
    await sso.client.get("/v1/session/oidc/login", allow_redirects=False)
    again = await sso.client.get("/v1/session/oidc/callback", params=answer)
    assert again.status == 400 and (await again.json())["reason"] == "oidc_state"


async def test_a_name_a_token_holds_cannot_be_a_persons_through_sso(sso: Api) -> None:
    await create_token(sso.services.database, "sup-anna@example.test", ["compliance"],
                       sso.clock())
    response, _ = await sign_in_as(sso, "sup-anna")
    assert response.status == 403 and (await response.json())["reason"] == "name_taken"
    assert (await sso.client.get("/v1/session")).status == 401
    assert (await sso.audit(action="sign_in", outcome="denied"))[-1]["reason"] == "name_taken"


async def test_a_name_too_long_for_an_account_is_refused_not_cut(
        sso: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    verify = oidc.verify_id_token

    async def with_a_long_name(*args: Any) -> dict[str, Any]:
        claims = await verify(*args)
        return {**claims, "email": "x" * NAME + "@example.test"}

    monkeypatch.setattr(oidc, "verify_id_token", with_a_long_name)
    response, _ = await sign_in_as(sso, "sup-anna")
    assert response.status == 403
    assert (await response.json())["reason"] == "sso_name_unusable"
    assert (await sso.audit(action="sign_in", outcome="denied"))[-1]["reason"] == \
        "sso_name_unusable"


async def test_without_configuration_single_sign_on_is_not_there(api: Api) -> None:
    assert (await api.client.get("/v1/session/oidc/login",
                                 allow_redirects=False)).status == 404
