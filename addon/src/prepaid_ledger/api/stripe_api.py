"""Calls to Stripe's API with the official client over aiohttp: create and retrieve Checkout.

Nothing here touches the database; callers ask Stripe first and then apply the answer in one
transaction, so no row lock is held while waiting on the network.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import stripe
from prepaid_meter_contract.payment_settings import PaymentMethod

from prepaid_ledger.config import Settings
from prepaid_ledger.domain.payment_methods import DEFAULT_METHODS, offered_for, stripe_amount
from prepaid_ledger.errors import ApiError, ConflictError

_TIMEOUT = aiohttp.ClientTimeout(total=20)


@asynccontextmanager
async def stripe_client(settings: Settings) -> AsyncIterator[stripe.StripeClient]:
    """Open a Stripe client for one exchange; 409 when no API key is configured."""
    if not settings.stripe_api_key:
        raise ConflictError(
            "no_provider_api", "no Stripe API key is configured; cannot talk to Stripe"
        )
    async with aiohttp.ClientSession(timeout=_TIMEOUT) as http:
        yield stripe.StripeClient(
            settings.stripe_api_key,
            http_client=stripe.AIOHTTPClient(session=http),
            base_addresses={"api": settings.stripe_api_base} if settings.stripe_api_base else None,
            max_network_retries=1,
        )


async def fetch_checkout_session(settings: Settings, session_id: str) -> dict[str, Any]:
    """Retrieve a Checkout Session."""
    async with stripe_client(settings) as client:
        try:
            found = await client.v1.checkout.sessions.retrieve_async(session_id)
        except stripe.InvalidRequestError as err:
            raise ConflictError("provider_not_found", f"Stripe does not know it: {err}") from err
        except stripe.StripeError as err:
            raise ApiError(502, "provider_unavailable", f"Stripe did not answer: {err}") from err
    result: dict[str, Any] = found.to_dict()
    return result


async def create_checkout_session(
    settings: Settings,
    *,
    account_number: str,
    account_name: str,
    amount_minor: int,
    currency: str,
    success_url: str,
    cancel_url: str,
    idempotency_key: str,
    payment_methods: Sequence[PaymentMethod] = DEFAULT_METHODS,
) -> dict[str, Any]:
    """Create a one-off payment Checkout Session whose client_reference_id is the account.

    The webhook credits the account named by client_reference_id, so the session carries the
    account number (Damm-checked), never a name or an internal id a typo could redirect.

    The session offers those of PAYMENT_METHODS that take the currency, as
    ``allowed_payment_method_types`` (the API version the official client pins, 2026-10-28,
    no longer accepts ``payment_method_types`` on Checkout Sessions; see docs/payments.md),
    WeChat Pay with ``payment_method_options[wechat_pay][client]=web`` as Checkout requires.
    Refused before anything is sent to Stripe: no offered method takes the currency, or Stripe
    counts the currency differently or needs another amount (domain.payment_methods). A
    request Stripe itself refuses (a currency or method the Stripe account does not take) is a
    409 with Stripe's words; nothing was created.
    """
    offered = offered_for(payment_methods, currency)
    if not offered:
        names = ", ".join(method.value for method in payment_methods) or "none"
        raise ConflictError(
            "no_payment_method_for_currency",
            f"none of the payment methods the landlord offers ({names}) takes {currency}; "
            "nothing was charged (the landlord can add one that does, e.g. card)",
        )
    unit_amount = stripe_amount(amount_minor, currency)
    params: dict[str, Any] = {
        "mode": "payment",
        "client_reference_id": account_number,
        "line_items": [
            {
                "quantity": 1,
                "price_data": {
                    "currency": currency.lower(),
                    "unit_amount": unit_amount,
                    "product_data": {"name": f"Prepaid top-up: {account_name}"[:250]},
                },
            }
        ],
        "metadata": {"account": account_number},
        "success_url": success_url,
        "cancel_url": cancel_url,
        "allowed_payment_method_types": [method.value for method in offered],
    }
    if PaymentMethod.WECHAT_PAY in offered:
        params["payment_method_options"] = {"wechat_pay": {"client": "web"}}
    async with stripe_client(settings) as client:
        try:
            created = await client.v1.checkout.sessions.create_async(
                params,  # type: ignore[arg-type]
                {"idempotency_key": idempotency_key},
            )
        except stripe.InvalidRequestError as err:
            raise ConflictError(
                "provider_refused", f"Stripe refused the payment: {err.user_message or err}"
            ) from err
        except stripe.StripeError as err:
            raise ApiError(502, "provider_unavailable", f"Stripe did not answer: {err}") from err
    result: dict[str, Any] = created.to_dict()
    return result
