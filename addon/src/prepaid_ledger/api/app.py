"""Assembling the aiohttp application: middlewares, routes, database lifecycle, watchdog."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator
from datetime import timedelta

from aiohttp import web

from prepaid_ledger.api import (
    provider_check,
    routes_accounts,
    routes_admin,
    routes_metering,
    routes_topups,
    stream,
    webhooks,
)
from prepaid_ledger.api.auth import auth_middleware_factory
from prepaid_ledger.api.context import SETTINGS_KEY, STATE_KEY, LedgerState
from prepaid_ledger.api.errors import error_middleware
from prepaid_ledger.api.openapi import openapi_handler
from prepaid_ledger.config import Settings
from prepaid_ledger.services import events
from prepaid_ledger.services.accounts import reevaluate_supply
from prepaid_ledger.services.topups import watchdog
from prepaid_ledger.store.database import Database
from prepaid_ledger.store.migrate import migrate
from prepaid_ledger.store.models import utcnow
from prepaid_ledger.web import landlord_ui, tenant_page

_LOGGER = logging.getLogger(__name__)
MAX_BODY_BYTES = 4 * 1024 * 1024


async def _watchdog_loop(db: Database, settings: Settings) -> None:
    """Flag (or, with Stripe reconciliation on, first re-check) stuck orders, periodically."""
    while True:
        try:
            if provider_check.reconcile_enabled(settings):
                await provider_check.recheck_stuck_orders(db, settings)
            else:
                flagged = await db.write(lambda s: watchdog(s, settings.processing_timeout_s))
                if flagged:
                    _LOGGER.warning("watchdog: %d order(s) need attention", flagged)
            horizon = utcnow() - timedelta(seconds=settings.stream_retention_s)
            await db.write(functools.partial(events.prune, before=horizon))
            cut = await db.write(lambda s: reevaluate_supply(s, utcnow()))
            if cut:
                _LOGGER.info("supply: %d account(s) reached their scheduled cut", cut)
        except Exception:
            _LOGGER.exception("watchdog run failed")
        await asyncio.sleep(settings.watchdog_interval_s)


async def _reconcile_loop(db: Database, settings: Settings) -> None:
    """Reconcile with Stripe's event list at start, then every reconcile_minutes."""
    while True:
        try:
            await provider_check.reconcile_now(db, settings)
        except Exception:
            _LOGGER.exception("reconcile run failed")
        await asyncio.sleep(settings.reconcile_minutes * 60)


def create_app(settings: Settings) -> web.Application:
    """Return the ledger application; the database is opened and migrated on startup."""
    app = web.Application(
        middlewares=[
            error_middleware,
            auth_middleware_factory(settings.admin_token, settings.ingress_proxy),
        ],
        client_max_size=MAX_BODY_BYTES,
    )
    app[SETTINGS_KEY] = settings
    app[STATE_KEY] = state = LedgerState()
    app[stream.CLOSING_KEY] = asyncio.Event()
    for module in (routes_admin, routes_accounts, routes_metering, routes_topups):
        app.router.add_routes(module.routes)
    app.router.add_routes(webhooks.routes)
    app.router.add_routes(stream.routes)
    app.router.add_routes(tenant_page.routes)
    app.router.add_routes(landlord_ui.routes)
    app.router.add_get("/api/v1/openapi.json", openapi_handler)

    async def lifecycle(_app: web.Application) -> AsyncIterator[None]:
        db = Database(settings.database_url)
        try:
            state.ledger_id = await migrate(db)
        except BaseException:
            await db.close()
            raise
        state.db = db
        tasks = [asyncio.create_task(_watchdog_loop(db, settings), name="ledger-watchdog")]
        if provider_check.reconcile_enabled(settings):
            tasks.append(
                asyncio.create_task(_reconcile_loop(db, settings), name="ledger-reconcile")
            )
        yield
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        state.db = None
        await db.close()

    async def on_shutdown(app: web.Application) -> None:
        app[stream.CLOSING_KEY].set()

    app.cleanup_ctx.append(lifecycle)
    app.on_shutdown.append(on_shutdown)
    return app
