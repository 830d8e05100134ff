"""Headless Chromium for the console's end-to-end tests: Debian's ``chromium`` driven by
Playwright through ``executable_path`` (Playwright's own browser download is not used).
Skipped where chromium is missing, unless CI says it must run
(RECORDINGS_TEST_REQUIRE_BROWSER=1)."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright

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


def screenshot_path(name: str) -> str:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return str(SCREENSHOTS / f"{name}.png")
