"""Take docs/images/dashboard.png from the running scripts/develop demo in headless Chromium.

    scripts/run python scripts/lib/screenshot_dashboard.py [http://127.0.0.1:8123]

Logs in with the owner scripts/develop created (.dev/ha_login) through Home Assistant's own
login page, opens the dashboard and saves a full-page screenshot.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
from pathlib import Path

from playwright.async_api import async_playwright

REPO = Path(__file__).resolve().parents[2]


async def main(base: str) -> int:
    """Log in, wait for the meters' cards, save the screenshot."""
    user, password = (REPO / ".dev" / "ha_login").read_text(encoding="utf-8").split()[:2]
    chromium = shutil.which("chromium")
    if chromium is None:
        raise SystemExit("screenshot: Debian's chromium is not installed (scripts/setup)")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=chromium, args=["--no-sandbox", "--disable-gpu"]
        )
        page = await browser.new_page(viewport={"width": 1400, "height": 1000})
        await page.goto(base, wait_until="networkidle")
        await page.get_by_label("Username").fill(user)
        await page.get_by_label("Password", exact=True).fill(password)
        await page.keyboard.press("Enter")
        await page.wait_for_url(
            lambda url: "auth_callback" not in url and "/auth/" not in url, timeout=60_000
        )
        await asyncio.sleep(2)
        await page.goto(f"{base}/prepaid-meters/meters", wait_until="networkidle")
        await page.get_by_text("Room 1").first.wait_for(timeout=30_000)
        await asyncio.sleep(3)  # let the tiles fill in
        target = REPO / "docs" / "images" / "dashboard.png"
        await page.screenshot(path=str(target), full_page=True)
        await browser.close()
    print(f"screenshot: {target.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8123")))
