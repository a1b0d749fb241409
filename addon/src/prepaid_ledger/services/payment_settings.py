"""The payment methods Stripe Checkout offers: the landlord's choice over the add-on option.

The add-on option ``payment_methods`` (``Settings.payment_methods``, checked at start) is in
force until the landlord chooses otherwise through ``PUT /api/v1/settings/payment-methods``;
that choice is kept in ``ledger_meta`` (key ``payment_methods``, a JSON object) and wins from
then on, also across restarts. Every choice is checked against the default currency and
audited.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Final

from prepaid_meter_contract.payment_settings import (
    PaymentMethod,
    PaymentMethodInfo,
    PaymentMethodsSettings,
    check_method_names,
)
from prepaid_meter_contract.wire import WireError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from prepaid_ledger.config import Settings
from prepaid_ledger.domain.payment_methods import METHODS, check_methods
from prepaid_ledger.services import audit
from prepaid_ledger.store.models import LedgerMeta

_LOGGER = logging.getLogger(__name__)
#: The ledger_meta row holding the landlord's choice: {"methods": ["card", ...]}.
META_KEY: Final = "payment_methods"
AUDIT_ACTION: Final = "settings.payment_methods"
AUDIT_TARGET: Final = "settings:payment_methods"


async def _stored(session: AsyncSession, *, lock: bool = False) -> LedgerMeta | None:
    query = select(LedgerMeta).where(LedgerMeta.key == META_KEY)
    found: LedgerMeta | None = await session.scalar(query.with_for_update() if lock else query)
    return found


def _methods_of(row: LedgerMeta | None) -> tuple[PaymentMethod, ...] | None:
    """Return the landlord's stored choice, or None (none stored, or unreadable: logged)."""
    if row is None:
        return None
    try:
        value = json.loads(row.value)
        return check_method_names(value.get("methods") if isinstance(value, dict) else None)
    except (ValueError, WireError):
        _LOGGER.warning("ledger_meta %s is unreadable; the add-on option applies", META_KEY)
        return None


def option_methods(settings: Settings) -> tuple[PaymentMethod, ...]:
    """Return what the add-on option says (already checked when the ledger started)."""
    return check_method_names(list(settings.payment_methods))


async def effective_methods(session: AsyncSession, settings: Settings) -> tuple[PaymentMethod, ...]:
    """Return the methods in force: the landlord's choice, else the add-on option."""
    return _methods_of(await _stored(session)) or option_methods(settings)


def _answer(settings: Settings, chosen: tuple[PaymentMethod, ...] | None) -> PaymentMethodsSettings:
    return PaymentMethodsSettings(
        methods=chosen or option_methods(settings),
        source="landlord" if chosen else "add_on_option",
        option_methods=option_methods(settings),
        default_currency=settings.default_currency,
        available=[
            PaymentMethodInfo(
                method=rule.method,
                currencies=None if rule.currencies is None else sorted(rule.currencies),
                confirms_later=rule.confirms_later,
            )
            for rule in METHODS.values()
        ],
    )


async def read(session: AsyncSession, settings: Settings) -> PaymentMethodsSettings:
    """Return the setting as ``GET /api/v1/settings/payment-methods`` answers it."""
    return _answer(settings, _methods_of(await _stored(session)))


async def choose(
    session: AsyncSession, settings: Settings, methods: Sequence[object], actor: str
) -> PaymentMethodsSettings:
    """Store the landlord's choice (checked against the default currency) and audit it.

    InputError (nothing stored) for a method that does not take the default currency, an
    unknown name, a name twice or an empty list.
    """
    chosen = check_methods(methods, settings.default_currency, "methods")
    row = await _stored(session, lock=True)
    before = _answer(settings, _methods_of(row))
    value = json.dumps({"methods": [method.value for method in chosen]})
    if row is None:
        session.add(LedgerMeta(key=META_KEY, value=value))
    else:
        row.value = value
    await session.flush()  # a concurrent first choice fails here (primary key) and is retried
    after = _answer(settings, chosen)
    audit.record(
        session,
        actor=actor,
        action=AUDIT_ACTION,
        target=AUDIT_TARGET,
        before={"methods": [m.value for m in before.methods], "source": before.source},
        after={"methods": [m.value for m in after.methods], "source": after.source},
    )
    return after
