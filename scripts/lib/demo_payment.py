"""Pay into a demo room the way Stripe would: a signed checkout.session.completed webhook.

Used by ``scripts/demo-payment ROOM AMOUNT`` against the ledger scripts/develop runs. The
event has the shape of Stripe's documented payload (the same builder the ledger's tests use)
and is signed with the develop ledger's Stripe webhook secret, so the ledger verifies and
credits it exactly as it would a real payment.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.request
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import stripe

from tests.ledger.webhook_helpers import checkout_completed

MAX_AMOUNT = Decimal(10_000)


def parse_amount(text: str) -> int:
    """Euros as typed ("10", "2.50") to cents; anything else is a clear error."""
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise SystemExit(f"demo-payment: amount must be a number of euros, got {text!r}") from None
    if not amount.is_finite() or amount <= 0 or amount > MAX_AMOUNT:
        raise SystemExit(f"demo-payment: amount must be above 0 and at most {MAX_AMOUNT} EUR")
    cents = amount * 100
    if cents != cents.to_integral_value():
        raise SystemExit("demo-payment: amount has more than 2 decimals")
    return int(cents)


def _get(url: str, token: str) -> Any:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})  # noqa: S310
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        return json.load(response)


def main(room: str, amount_text: str) -> int:
    """Send the payment; print the account's balance after it."""
    dev = Path(os.environ.get("PREPAID_DEVELOP_DIR", ".dev"))
    ledger = f"http://127.0.0.1:{os.environ.get('PREPAID_DEVELOP_LEDGER_PORT', '8099')}"
    # Stripe reaches the public listener only: the webhook goes there, as in production.
    public = f"http://127.0.0.1:{os.environ.get('PREPAID_DEVELOP_LEDGER_PUBLIC_PORT', '8100')}"
    if not room.isdigit():
        raise SystemExit(f"demo-payment: ROOM is a room number such as 1, got {room!r}")
    cents = parse_amount(amount_text)
    try:
        token = (dev / "ledger" / "admin-token").read_text(encoding="utf-8").strip()
        secret = (dev / "stripe_webhook_secret").read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise SystemExit("demo-payment: start scripts/develop first") from None
    try:
        accounts = _get(f"{ledger}/api/v1/accounts", token)["accounts"]
    except urllib.error.URLError as err:
        raise SystemExit(f"demo-payment: the ledger at {ledger} does not answer ({err})") from None
    account = next((a for a in accounts if a["name"] == f"Room {room}"), None)
    if account is None:
        names = ", ".join(sorted(a["name"] for a in accounts))
        raise SystemExit(f"demo-payment: no Room {room} in the ledger (there are: {names})")
    body = json.dumps(checkout_completed(account["number"], cents))
    header = stripe.WebhookSignature.generate_signature_header(
        body, secret, timestamp=int(time.time())
    )
    request = urllib.request.Request(  # noqa: S310
        f"{public}/webhooks/stripe",
        data=body.encode(),
        method="POST",
        headers={"Stripe-Signature": header, "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            response.read()
    except urllib.error.HTTPError as err:
        detail = err.read().decode(errors="replace")
        raise SystemExit(
            f"demo-payment: the ledger refused the payment ({err.code}: {detail})"
        ) from None
    after = _get(f"{ledger}/api/v1/accounts/{account['id']}", token)
    print(
        f"demo-payment: Room {room} paid {cents / 100:.2f} EUR; balance now "
        f"{after['balance_minor'] / 100:.2f} EUR, supply "
        f"{'allowed' if after['supply']['allowed'] else 'not allowed'}"
    )
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(
            "usage: scripts/demo-payment ROOM AMOUNT   (e.g. scripts/demo-payment 1 10)"
        )
    sys.exit(main(sys.argv[1], sys.argv[2]))
