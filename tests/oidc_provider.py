"""A real OpenID Provider for the tests: npm's oidc-provider on the machine's Node.js
(tests/oidc/idp.mjs), installed into tests/oidc/node_modules on first use and started
once per session on a free loopback port."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urljoin, urlsplit

import aiohttp
import pytest

HERE = Path(__file__).parent / "oidc"
REDIRECT = "http://127.0.0.1:9/v1/session/oidc/callback"


@dataclass(frozen=True)
class Provider:
    issuer: str


def _unavailable(why: str) -> None:
    if os.environ.get("RECORDINGS_TEST_REQUIRE_OIDC") == "1":
        pytest.fail(why)
    pytest.skip(why)


@pytest.fixture(scope="session")
def oidc_provider() -> Iterator[Provider]:
    if shutil.which("node") is None or shutil.which("npm") is None:
        _unavailable("Node.js and npm are needed for the OpenID Provider")
    if not (HERE / "node_modules" / "oidc-provider").exists():
        installed = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--silent"],
                                   cwd=HERE, capture_output=True, text=True, timeout=600)
        if installed.returncode != 0:
            _unavailable(f"npm install failed: {installed.stderr[-500:]}")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    process = subprocess.Popen(["node", "idp.mjs"], cwd=HERE, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True,
                               env={**os.environ, "PORT": str(port), "REDIRECT_URI": REDIRECT})
    issuer = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{issuer}/.well-known/openid-configuration", timeout=1)
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the OpenID Provider did not start") from None
                time.sleep(0.1)
        yield Provider(issuer)
    finally:
        process.terminate()
        process.wait(timeout=10)


async def authorize(login_url: str, user: str) -> dict[str, str]:
    """Plays the browser at the provider: follows its redirects and fills its login and
    consent forms as ``user``; returns the query the provider sends back (code, state)."""
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar) as browser:
        response = await browser.get(login_url, allow_redirects=False)
        for _ in range(20):
            location = response.headers.get("Location")
            if location and location.startswith(REDIRECT):
                return dict(parse_qsl(urlsplit(location).query))
            if location:
                response = await browser.get(urljoin(str(response.url), location),
                                             allow_redirects=False)
                continue
            page = await response.text()
            action = re.search(r'action="([^"]+)"', page)
            prompt = re.search(r'name="prompt" value="(\w+)"', page)
            assert action and prompt, page[:500]
            form = {"prompt": prompt.group(1)}
            if prompt.group(1) == "login":
                form |= {"login": user, "password": "any"}
            response = await browser.post(urljoin(str(response.url), action.group(1)),
                                          data=form, allow_redirects=False)
    raise AssertionError("the provider never sent the browser back")
