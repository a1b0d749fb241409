"""The browser harness itself works: Debian's Chromium renders a page served over HTTP."""

from __future__ import annotations

from aiohttp import web
from playwright.async_api import Page


async def test_chromium_renders_a_served_page(page: Page) -> None:
    """A page served by aiohttp on a real socket is fetched and rendered by Chromium."""

    async def handler(_: web.Request) -> web.Response:
        return web.Response(text="<h1 id=t>Saldo 12,00</h1>", content_type="text/html")

    app = web.Application()
    app.router.add_get("/", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        await page.goto(f"http://127.0.0.1:{port}/")
        assert await page.inner_text("#t") == "Saldo 12,00"
    finally:
        await runner.cleanup()
