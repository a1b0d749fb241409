"""A tenant on a phone in Chinese pays 500 yuan with WeChat Pay and gets the promotion's bonus.

Issue 23's acceptance, in a real browser: the phone asks for zh-Hans (Accept-Language
``zh-CN``), the account is in CNY, the landlord offers WeChat Pay and "top up 500, get 100".
Stripe is a stand-in at its HTTP boundary that completes the session unpaid and confirms it
later (``checkout.session.async_payment_succeeded``), so the page must say "processing" first.
Expected values: the issue's own example (500 + 100 bonus = 600 yuan) and CLDR's Chinese way
of writing yuan (¥600.00).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from tests.ledger.conftest import make_settings
from tests.ledger.test_pay_page import running_public_ledger
from tests.ledger.webhook_helpers import serve_fake_stripe

pytestmark = pytest.mark.usefixtures("socket_enabled")


async def test_wechat_pay_in_yuan_processing_then_bonus_and_receipt_in_chinese(
    browser: Browser, tmp_path: Path
) -> None:
    async with serve_fake_stripe() as (fake, base):
        fake.delayed_methods = frozenset({"wechat_pay"})  # confirmed later, as the issue asks
        settings = make_settings(
            tmp_path,
            None,
            stripe_api_key="sk_test_zh",
            stripe_api_base=base,
            default_currency="CNY",
            default_timezone="Asia/Shanghai",
            max_topup_minor=100_000,
        )
        async with running_public_ledger(settings) as ledger:
            fake.webhook_url = f"{ledger.base_url}/webhooks/stripe"
            fake.webhook_delay_s = 0.2
            await ledger.ok(
                "PUT", "/api/v1/settings/payment-methods", json={"methods": ["wechat_pay"]}
            )
            await ledger.ok(
                "POST",
                "/api/v1/promotions",
                json={
                    "name": "充500送100",
                    "currency": "CNY",
                    "min_topup_minor": 50_000,
                    "bonus_minor": 10_000,
                },
            )
            account = await ledger.account(
                name="302 室 王芳", currency="CNY", timezone="Asia/Shanghai"
            )
            link = (await ledger.ok("POST", f"/api/v1/accounts/{account['id']}/pay-link"))["url"]

            phone = await browser.new_context(
                viewport={"width": 390, "height": 844}, locale="zh-CN"
            )
            phone.set_default_timeout(10_000)
            page = await phone.new_page()
            await page.goto(link)
            await expect(page.locator("html")).to_have_attribute("lang", "zh-Hans")
            await expect(page.locator("#balance")).to_have_text("¥0.00")
            await expect(page.locator(".offer")).to_have_text(
                "充500送100：充值满 ¥500.00，额外赠送 ¥100.00。"
            )
            await page.get_by_label("金额（CNY）").fill("500")
            await page.get_by_role("button", name="支付").click()

            # On "Stripe": WeChat Pay is the one method offered, for the web client.
            await expect(page.locator("#total")).to_have_text("500.00 CNY")
            created = fake.created[-1]
            assert created["allowed_payment_method_types[0]"] == "wechat_pay"
            assert created["payment_method_options[wechat_pay][client]"] == "web"
            await page.locator("#pay-wechat_pay").click()

            # Back on the pay page: processing, said in Chinese, nothing credited yet.
            await expect(page.locator("[role=status]")).to_contain_text("谢谢")
            await expect(page.locator("#orders .status").first).to_have_text("处理中")
            await expect(page.locator("#orders")).to_contain_text("等待支付服务商确认")
            assert await ledger.balance(account["id"]) == 0

            # Days later Stripe confirms it: the page updates itself.
            session_id = next(iter(fake.sessions))
            await fake.settle(session_id, succeeded=True)
            await expect(page.locator("#balance")).to_have_text("¥600.00")
            await expect(page.locator("#orders .status").first).to_have_text("成功")
            await expect(page.locator("#orders .bonus").first).to_have_text("+ ¥100.00 赠送")
            assert await ledger.balance(account["id"]) == 60_000

            # The receipt, in Chinese.
            await page.get_by_role("link", name="收据 1").click()
            await expect(page.locator("h1")).to_have_text("收据")
            await expect(page.locator("table th")).to_have_text(
                ["金额", "赠送金额", "到账金额", "充值后余额"]
            )
            await expect(page.locator("table td")).to_have_text(
                ["¥500.00", "¥100.00", "¥600.00", "¥600.00"]
            )
            await expect(page.locator("dl")).to_contain_text("微信支付")
            await expect(page.locator("dl")).to_contain_text("302 室 王芳")
            await phone.close()
