"""Assembling the aiohttp applications: middlewares, routes, database lifecycle, watchdog.

Two applications share one LedgerState: the private one (ingress, LAN, the integration) serves
everything; the public one, the only one a landlord maps or proxies to the internet, serves just
the payment webhooks, the tenants' pay pages and health, so the admin login is never published.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Final

from aiohttp import web
from aiohttp.typedefs import Middleware

from prepaid_ledger import backlog_worker
from prepaid_ledger.api import (
    provider_check,
    routes_accounting,
    routes_accounts,
    routes_admin,
    routes_meters,
    routes_promotions,
    routes_readings,
    routes_settings,
    routes_sites,
    routes_tariffs,
    routes_topups,
    routes_vouchers,
    stream,
    webhooks,
)
from prepaid_ledger.api.admission import AdmissionGate, admission_middleware
from prepaid_ledger.api.auth import auth_middleware_factory
from prepaid_ledger.api.context import SETTINGS_KEY, STATE_KEY, LedgerState
from prepaid_ledger.api.error_middleware import Handler, error_middleware, error_response
from prepaid_ledger.api.openapi import openapi_handler
from prepaid_ledger.config import Settings
from prepaid_ledger.services import events, outbox_delivery
from prepaid_ledger.services.accounts import reevaluate_supply
from prepaid_ledger.services.loop_errors import log_round_failure
from prepaid_ledger.services.topups import watchdog
from prepaid_ledger.store import partitions
from prepaid_ledger.store.database import Database
from prepaid_ledger.store.migrate import migrate
from prepaid_ledger.store.models import utcnow
from prepaid_ledger.web import landlord_ui, receipts, tenant_page, voucher_cards

_LOGGER = logging.getLogger(__name__)
#: Largest request body of the private app (readings batches from the integration).
MAX_BODY_BYTES: Final = 4 * 1024 * 1024
#: Largest request body of the public app: webhooks and the pay page's forms are small.
MAX_PUBLIC_BODY_BYTES: Final = 256 * 1024
#: Seconds a client has to deliver a whole request body once its headers arrived.
BODY_TIMEOUT_S: Final = 10.0
#: The Server header of every response: no product version for a scanner to match.
SERVER_NAME: Final = "prepaid-ledger"
#: For responses that set no policy of their own (JSON, CSV, redirects, errors).
DEFAULT_CSP: Final = "default-src 'none'; frame-ancestors 'none'"
_MULTIPART = "multipart/form-data"
#: How often the watchdog makes sure the coming months' partitions of readings exist.
PARTITIONS_INTERVAL: Final = timedelta(days=1)


async def security_headers(_request: web.Request, response: web.StreamResponse) -> None:
    """Add the headers every response carries (on_response_prepare, so errors get them too).

    A policy a handler chose (the landlord and pay pages set their own CSP) is kept.
    """
    headers = response.headers
    headers["Server"] = SERVER_NAME
    headers["X-Content-Type-Options"] = "nosniff"
    headers.setdefault("Content-Security-Policy", DEFAULT_CSP)
    headers.setdefault("Referrer-Policy", "no-referrer")


def transport_middleware(max_body: int) -> Middleware:
    """Build the middleware that bounds a request body in size and in time.

    A declared Content-Length above ``max_body`` is refused with 413 before any of the body is
    read. Otherwise the whole body is read here, within BODY_TIMEOUT_S (aiohttp has no body
    timeout of its own), so a client that stops sending mid-body gets 408 instead of holding a
    handler; handlers then get the buffered body from request.read()/json()/post(). Multipart
    bodies are refused (415): no route takes them, and post() would read them past the deadline.
    """

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        declared = request.content_length
        if declared is not None and declared > max_body:
            return _closing(
                413, "payload_too_large", f"the request body may be at most {max_body} bytes"
            )
        if request.can_read_body and request.match_info.http_exception is None:
            if request.content_type == _MULTIPART:
                return _closing(415, "unsupported_media_type", "multipart bodies are not accepted")
            try:
                async with asyncio.timeout(BODY_TIMEOUT_S):
                    await request.read()
            except TimeoutError:
                _LOGGER.info("request body timed out: %s %s", request.method, request.path)
                return _closing(
                    408,
                    "request_timeout",
                    f"the request body did not arrive in {BODY_TIMEOUT_S:g} s",
                )
        return await handler(request)

    return middleware


def _closing(status: int, code: str, message: str) -> web.Response:
    """Return an error that also closes the connection (the rest of the body is not wanted)."""
    response = error_response(status, code, message)
    response.force_close()
    return response


async def _ensure_partitions(db: Database) -> bool:
    """Create the coming months' partitions of readings (PostgreSQL); False if that failed.

    A failure is logged, not raised: until the partitions exist, readings go to the default
    partition (store/partitions.py), and the next try moves them.
    """
    try:
        created = await partitions.ensure_coming_months(db)
    except Exception as err:  # noqa: BLE001 - the service runs on; tried again later
        log_round_failure(_LOGGER, "readings partitions", err)
        return False
    if created:
        _LOGGER.info("readings: created partition(s) %s", ", ".join(created))
    return True


async def _watchdog_loop(db: Database, settings: Settings, *, partitions_ok: bool = True) -> None:
    """Flag (or, with Stripe reconciliation on, first re-check) stuck orders, periodically.

    Once a day (every round until it succeeds, if it failed at start) it also makes sure the
    coming months' partitions of readings exist.
    """
    partitions_due = utcnow() + (PARTITIONS_INTERVAL if partitions_ok else timedelta(0))
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
        except Exception as err:  # noqa: BLE001 - one failed round must not end the loop
            log_round_failure(_LOGGER, "watchdog run", err)
        if utcnow() >= partitions_due and await _ensure_partitions(db):
            partitions_due = utcnow() + PARTITIONS_INTERVAL
        await asyncio.sleep(settings.watchdog_interval_s)


async def _reconcile_loop(db: Database, settings: Settings) -> None:
    """Reconcile with Stripe's event list at start, then every reconcile_minutes."""
    while True:
        try:
            await provider_check.reconcile_now(db, settings)
        except Exception as err:  # noqa: BLE001 - one failed round must not end the loop
            log_round_failure(_LOGGER, "reconcile run", err)
        await asyncio.sleep(settings.reconcile_minutes * 60)


def _backlogs_written(settings: Settings, state: LedgerState) -> str:
    """Where the start-up log says backlogs are written (backlog_worker.py)."""
    if state.backlog_workers is not None:
        return f"written by {len(state.backlog_workers.workers)} more processes"
    return "written in this process " + (
        "(SQLite in memory)" if settings.backlog_worker else "(backlog_worker off)"
    )


def create_app(settings: Settings) -> web.Application:
    """Return the ledger application; the database is opened and migrated on startup."""
    app = web.Application(
        middlewares=[
            error_middleware,
            transport_middleware(MAX_BODY_BYTES),
            admission_middleware,
            auth_middleware_factory(settings.admin_token, settings.ingress_proxy),
        ],
        client_max_size=MAX_BODY_BYTES,
    )
    app[SETTINGS_KEY] = settings
    app[STATE_KEY] = state = LedgerState(admission=AdmissionGate.from_settings(settings))
    app[stream.CLOSING_KEY] = asyncio.Event()
    for module in (
        routes_admin,
        routes_accounts,
        routes_tariffs,
        routes_meters,
        routes_readings,
        routes_topups,
        routes_vouchers,
        routes_promotions,
        routes_settings,
        routes_sites,
    ):
        app.router.add_routes(module.routes)
    app.router.add_routes(routes_accounting.routes)
    app.router.add_routes(webhooks.routes)
    app.router.add_routes(stream.routes)
    app.router.add_routes(tenant_page.routes)
    app.router.add_routes(receipts.tenant_routes)
    app.router.add_routes(receipts.landlord_routes)
    app.router.add_routes(landlord_ui.routes)
    app.router.add_routes(voucher_cards.routes)
    app.router.add_get("/api/v1/openapi.json", openapi_handler)
    app.on_response_prepare.append(security_headers)

    async def lifecycle(_app: web.Application) -> AsyncIterator[None]:
        db = Database(
            settings.database_url,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            pool_timeout_s=settings.db_pool_timeout_s,
        )
        try:
            state.ledger_id = await migrate(db)
            partitions_ok = await _ensure_partitions(db)
        except BaseException:
            await db.close()
            raise
        state.db = db
        if settings.backlog_worker and backlog_worker.can_serve(settings.database_url):
            state.backlog_workers = backlog_worker.BacklogWorkers(settings.database_url)
        _LOGGER.info(
            "load limits: %d requests at once (%d of them reading batches), "
            "database connections %d + %d under load, backlogs %s",
            settings.max_active_requests,
            settings.max_active_readings,
            db.pool_size,
            db.max_overflow,
            _backlogs_written(settings, state),
        )
        tasks = [
            asyncio.create_task(
                _watchdog_loop(db, settings, partitions_ok=partitions_ok), name="ledger-watchdog"
            )
        ]
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
        if state.stream_tail is not None:
            await state.stream_tail.close()
        if state.backlog_workers is not None:
            await state.backlog_workers.close()
            state.backlog_workers = None
        state.db = None
        await db.close()

    async def on_shutdown(app: web.Application) -> None:
        app[stream.CLOSING_KEY].set()

    async def accounting_events(_app: web.Application) -> AsyncIterator[None]:
        # Delivers the accounting outbox; entered after lifecycle opened the database.
        async with outbox_delivery.running(state.db):
            yield

    app.cleanup_ctx.append(lifecycle)
    app.cleanup_ctx.append(accounting_events)
    app.on_shutdown.append(on_shutdown)
    return app


def create_public_app(settings: Settings, private_app: web.Application) -> web.Application:
    """Return the public application: webhooks, pay pages and health; 404 for everything else.

    It shares the private app's settings and LedgerState (the database is opened and closed by
    the private app, so start it first and stop it last); it has no auth middleware because
    none of its routes takes a bearer token.
    """
    app = web.Application(
        middlewares=[
            error_middleware,
            transport_middleware(MAX_PUBLIC_BODY_BYTES),
            admission_middleware,
        ],
        client_max_size=MAX_PUBLIC_BODY_BYTES,
    )
    app[SETTINGS_KEY] = settings
    app[STATE_KEY] = private_app[STATE_KEY]
    app.router.add_routes(webhooks.routes)
    app.router.add_routes(tenant_page.routes)
    app.router.add_routes(receipts.tenant_routes)
    app.router.add_get("/api/v1/health", routes_admin.health)
    app.on_response_prepare.append(security_headers)
    return app
