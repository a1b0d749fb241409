"""Service settings: command-line options plus secrets from the environment."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from pydantic import BeforeValidator, Field, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from prepaid_ledger.domain.payment_methods import DEFAULT_METHODS, check_methods
from prepaid_ledger.errors import InputError
from prepaid_ledger.store.database import sqlite_url

#: Every environment variable of the ledger starts with this (``PREPAID_LEDGER_STRIPE_API_KEY``).
ENV_PREFIX = "PREPAID_LEDGER_"
ADMIN_TOKEN_ENV = f"{ENV_PREFIX}ADMIN_TOKEN"
ADMIN_TOKEN_FILE = "admin-token"  # noqa: S105


def _blank_is_none(value: object) -> object:
    return None if isinstance(value, str) and not value.strip() else value


def _comma_separated(value: object) -> object:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


type _Optional = Annotated[str | None, BeforeValidator(_blank_is_none)]


class EnvironmentSettings(BaseSettings):
    """What the environment sets (``PREPAID_LEDGER_*``); a wrong value stops the start clearly.

    The add-on's ``run.sh`` exports them from the add-on's options; a service started by hand
    takes them from its environment.
    """

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    admin_token: _Optional = None
    stripe_webhook_secret: _Optional = None
    standard_webhook_secret: _Optional = None
    stripe_api_key: _Optional = None
    #: Another Stripe API, e.g. a stripe-mock for testing.
    stripe_api_base: _Optional = None
    #: Where tenants reach their pay page (used exactly as given, without a trailing slash).
    public_base_url: _Optional = None
    #: The Supervisor's address in the add-on (its ingress requests are trusted).
    ingress_proxy: _Optional = None
    currency: Annotated[str, BeforeValidator(lambda v: _blank_is_none(v) or "EUR")] = "EUR"
    timezone: Annotated[str, BeforeValidator(lambda v: _blank_is_none(v) or "UTC")] = "UTC"
    tenant_min_topup_minor: Annotated[int, Field(ge=0)] = 100
    #: 0: never list Stripe's events nor re-check stuck orders with it.
    reconcile_minutes: Annotated[float, Field(ge=0)] = 10.0
    #: Comma-separated reverse-proxy addresses whose forwarding headers are believed.
    trusted_proxies: Annotated[tuple[str, ...], NoDecode, BeforeValidator(_comma_separated)] = ()
    #: Comma-separated Stripe payment method types Checkout offers ("card,alipay"); each must
    #: take the default currency (declared above, so it is read first). Set but blank: refused.
    payment_methods: Annotated[tuple[str, ...], NoDecode, BeforeValidator(_comma_separated)] = (
        tuple(DEFAULT_METHODS)
    )

    # Admission control under load (api/admission.py; docs/performance.md, "Overload").
    max_active_requests: Annotated[int, Field(ge=1, le=1000)] = 12
    max_active_readings: Annotated[int, Field(ge=1, le=1000)] = 6
    max_queued_requests: Annotated[int, Field(ge=0, le=100_000)] = 200
    max_queued_readings: Annotated[int, Field(ge=0, le=100_000)] = 50
    max_queue_wait_s: Annotated[float, Field(gt=0, le=600)] = 10.0
    max_readings_wait_s: Annotated[float, Field(gt=0, le=600)] = 5.0
    db_pool_size: Annotated[int, Field(ge=1, le=1000)] = 10
    db_max_overflow: Annotated[int, Field(ge=0, le=1000)] = 10
    db_pool_timeout_s: Annotated[float, Field(gt=0, le=600)] = 10.0
    backlog_worker: bool = True

    @field_validator("payment_methods")
    @classmethod
    def _methods_take_the_currency(
        cls, value: tuple[str, ...], info: ValidationInfo
    ) -> tuple[str, ...]:
        currency = info.data.get("currency")
        if not isinstance(currency, str):
            return value  # the currency itself was refused; that is the error to show
        try:
            return tuple(method.value for method in check_methods(value, currency))
        except InputError as err:
            raise ValueError(err.message) from None

    @field_validator("public_base_url")
    @classmethod
    def _no_trailing_slash(cls, value: str | None) -> str | None:
        return None if value is None else value.strip().rstrip("/") or None


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the service needs to run."""

    data_dir: Path
    database_url: str
    admin_token: str
    admin_token_path: Path | None = None
    stripe_webhook_secret: str | None = None
    standard_webhook_secret: str | None = None
    max_topup_minor: int = 1_000_000
    processing_timeout_s: float = 900.0
    watchdog_interval_s: float = 30.0
    webhook_tolerance_s: int = 300
    stream_retention_s: float = 90 * 24 * 3600.0
    stripe_api_key: str | None = None
    stripe_api_base: str | None = None
    # Where tenants and Stripe reach the ledger (pay links, QR codes, Checkout return URLs),
    # used exactly as given; None: no pay links (never guessed from a Host header or a port).
    public_base_url: str | None = None
    # Requests from this address carrying X-Ingress-Path come through Home Assistant's ingress
    # (the Supervisor has authenticated an admin user); None: ingress is never trusted.
    ingress_proxy: str | None = None
    default_currency: str = "EUR"
    default_timezone: str = "UTC"
    tenant_min_topup_minor: int = 100
    # Reconciliation with Stripe (with an API key): list its paid-checkout events this often
    # and re-check stuck orders with it; 0 turns both off (services/reconcile.py).
    reconcile_minutes: float = 10.0
    # Bounds on what the public port can make the ledger store or hold (docs/security.md).
    webhook_rejections_kept: int = 1000
    webhook_rejections_per_minute: int = 60
    max_streams_per_token: int = 5
    # The landlord's browser sessions end after this long without a request (idle) and this
    # long after sign-in whatever happens (absolute); services/web_sessions.py.
    session_idle_s: float = 30 * 60.0
    session_absolute_s: float = 12 * 3600.0
    # Reverse proxies whose X-Forwarded-Proto / X-Forwarded-For / X-Forwarded-Host are believed
    # (exact request.remote addresses); anyone else's forwarding headers are ignored.
    trusted_proxies: tuple[str, ...] = ()
    # The Stripe payment methods Checkout offers unless the landlord chose others through the
    # API (services/payment_settings.py); each takes default_currency (checked at start).
    payment_methods: tuple[str, ...] = tuple(DEFAULT_METHODS)
    # Admission control (api/admission.py): at most max_active_requests requests do database
    # work at once, of them at most max_active_readings reading batches; payment webhooks go
    # first. Beyond that up to max_queued_requests (payments and the rest of the API) and
    # max_queued_readings (reading batches) wait, each at most max_queue_wait_s /
    # max_readings_wait_s; a request that finds its queue full or waits longer is answered
    # 503 overloaded with Retry-After, having changed nothing.
    max_active_requests: int = 12
    max_active_readings: int = 6
    max_queued_requests: int = 200
    max_queued_readings: int = 50
    max_queue_wait_s: float = 10.0
    max_readings_wait_s: float = 5.0
    # The database connection pool (store/database.py): connections kept open, extra ones
    # opened under load, and how long a request waits for one before 503 (not 500).
    db_pool_size: int = 10
    db_max_overflow: int = 10
    db_pool_timeout_s: float = 10.0
    # On PostgreSQL a batch of more than one part (a backlog) is written by worker processes,
    # each started on first use, so that it does not share the event loop's core
    # (backlog_worker.py).
    backlog_worker: bool = True


def load_admin_token(data_dir: Path, from_env: str | None = None) -> tuple[str, Path | None]:
    """Return the admin token: the environment's, else from (or generated into) DIR, 0600."""
    if from_env is not None and from_env.strip():
        return from_env.strip(), None
    path = data_dir / ADMIN_TOKEN_FILE
    if path.exists():
        return path.read_text(encoding="utf-8").strip(), path
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(token + "\n")
    return token, path


def settings_from(data_dir: Path, database_url: str | None, **overrides: object) -> Settings:
    """Build settings for a data directory, reading secrets from the environment.

    Raises ``pydantic.ValidationError`` naming the variable when the environment sets a value
    that cannot be right (``PREPAID_LEDGER_RECONCILE_MINUTES=soon``).
    """
    environment = EnvironmentSettings()
    data_dir.mkdir(parents=True, exist_ok=True)
    token, token_path = load_admin_token(data_dir, environment.admin_token)
    values: dict[str, object] = {
        "data_dir": data_dir,
        "database_url": database_url or sqlite_url(data_dir),
        "admin_token": token,
        "admin_token_path": token_path,
        "stripe_webhook_secret": environment.stripe_webhook_secret,
        "standard_webhook_secret": environment.standard_webhook_secret,
        "stripe_api_key": environment.stripe_api_key,
        "stripe_api_base": environment.stripe_api_base,
        "public_base_url": environment.public_base_url,
        "ingress_proxy": environment.ingress_proxy,
        "default_currency": environment.currency,
        "default_timezone": environment.timezone,
        "tenant_min_topup_minor": environment.tenant_min_topup_minor,
        "trusted_proxies": environment.trusted_proxies,
        "reconcile_minutes": environment.reconcile_minutes,
        "payment_methods": environment.payment_methods,
        "max_active_requests": environment.max_active_requests,
        "max_active_readings": environment.max_active_readings,
        "max_queued_requests": environment.max_queued_requests,
        "max_queued_readings": environment.max_queued_readings,
        "max_queue_wait_s": environment.max_queue_wait_s,
        "max_readings_wait_s": environment.max_readings_wait_s,
        "db_pool_size": environment.db_pool_size,
        "db_max_overflow": environment.db_max_overflow,
        "db_pool_timeout_s": environment.db_pool_timeout_s,
        "backlog_worker": environment.backlog_worker,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]
