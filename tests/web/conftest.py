"""A real browser for the web-page tests: Debian's headless Chromium driven by Playwright.

Nothing downloads a browser: Playwright launches the system `chromium` binary by path. Each
test gets a fresh context (no shared cookies) and can save a screenshot to `docs/images/`.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from tests.ledger.conftest import Ledger, make_settings
from tests.ledger.test_pay_page import running_public_ledger

IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"


def chromium_path() -> str:
    """The system Chromium (scripts/setup installs Debian's `chromium`)."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail("Debian's chromium is not installed: run scripts/setup")
    return found


@pytest.fixture
async def ledger(tmp_path: Path) -> AsyncIterator[Ledger]:
    """A ledger over HTTP in EUR and UTC whose pay links point at its own public listener.

    A test module that needs other settings defines its own ``ledger``.
    """
    settings = make_settings(tmp_path, None, default_currency="EUR", default_timezone="UTC")
    async with running_public_ledger(settings) as running:
        yield running


@pytest.fixture
async def browser(socket_enabled: None) -> AsyncIterator[Browser]:
    """A headless Chromium for one test (function scope: each test has its own event loop)."""
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=chromium_path(), args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def context(browser: Browser) -> AsyncIterator[BrowserContext]:
    """A fresh browser profile at desktop size; tests may open phone-sized pages themselves."""
    created = await browser.new_context(viewport={"width": 1280, "height": 800})
    created.set_default_timeout(10_000)
    try:
        yield created
    finally:
        await created.close()


@pytest.fixture
async def page(context: BrowserContext) -> Page:
    """One page in the test's browser context."""
    return await context.new_page()


async def screenshot(page: Page, name: str, *, full_page: bool = True) -> Path:
    """Save the page (or only what is in view) as docs/images/<name>.png for the README."""
    IMAGES.mkdir(parents=True, exist_ok=True)
    target = IMAGES / f"{name}.png"
    await page.screenshot(path=str(target), full_page=full_page)
    return target
