"""Headless Chromium for the console's end-to-end tests: Debian's ``chromium`` driven by
Playwright through ``executable_path`` (Playwright's own browser download is not used).
Skipped where chromium is missing, unless CI says it must run
(RECORDINGS_TEST_REQUIRE_BROWSER=1)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright

CHROMIUM = os.environ.get("RECORDINGS_TEST_CHROMIUM", "/usr/bin/chromium")
# Screenshots of each main page, for a reviewer to look at (not committed).
SCREENSHOTS = Path(os.environ.get("RECORDINGS_TEST_SCREENSHOTS",
                                  Path(__file__).parent.parent / "test-screenshots"))

_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run", "--disable-quic", "--autoplay-policy=no-user-gesture-required"]


def _installed() -> bool:
    return Path(CHROMIUM).exists() or shutil.which("chromium") is not None


@pytest.fixture
async def chromium() -> AsyncIterator[Browser]:
    if not _installed():
        if os.environ.get("RECORDINGS_TEST_REQUIRE_BROWSER") == "1":
            pytest.fail("chromium is required here (apt-get install chromium)")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                                   args=_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


A11Y = Path(__file__).parent / "a11y"
# The WCAG 2.1 A and AA rules, as an accessibility audit of a public-sector service asks.
_AXE_RUN = """async () => (await axe.run(document, {runOnly: {type: "tag", values:
    ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}})).violations.map(
    v => v.id + ": " + v.nodes.map(n => n.target.join(" ")).join(", "))"""


def _axe_source() -> str:
    """npm's axe-core, installed into tests/a11y on first use."""
    script = A11Y / "node_modules" / "axe-core" / "axe.min.js"
    if not script.exists():
        if shutil.which("npm") is None:
            pytest.fail("npm is needed for axe-core (apt-get install npm)")
        installed = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--silent"],
                                   cwd=A11Y, capture_output=True, text=True, timeout=600)
        assert installed.returncode == 0, installed.stderr[-500:]
    return script.read_text()


async def axe_violations(page: Page) -> list[str]:
    """What axe-core finds wrong on the page as it is now. Evaluated from the driver,
    which the console's Content-Security-Policy does not bind (a page script could not)."""
    if not await page.evaluate("() => typeof axe !== 'undefined'"):
        await page.evaluate(_axe_source())
    found: list[str] = await page.evaluate(_AXE_RUN)
    return found


def screenshot_path(name: str) -> str:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return str(SCREENSHOTS / f"{name}.png")
