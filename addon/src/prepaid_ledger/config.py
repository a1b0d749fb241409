"""Service settings: command-line options plus secrets from the environment."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from prepaid_ledger.store.database import sqlite_url

ADMIN_TOKEN_ENV = "PREPAID_LEDGER_ADMIN_TOKEN"  # noqa: S105 - a variable name, not a secret
STRIPE_SECRET_ENV = "PREPAID_LEDGER_STRIPE_WEBHOOK_SECRET"  # noqa: S105
STANDARD_SECRET_ENV = "PREPAID_LEDGER_STANDARD_WEBHOOK_SECRET"  # noqa: S105
STRIPE_API_KEY_ENV = "PREPAID_LEDGER_STRIPE_API_KEY"
STRIPE_API_BASE_ENV = "PREPAID_LEDGER_STRIPE_API_BASE"  # e.g. a stripe-mock for testing
PUBLIC_BASE_URL_ENV = "PREPAID_LEDGER_PUBLIC_BASE_URL"  # where tenants reach their pay page
INGRESS_PROXY_ENV = "PREPAID_LEDGER_INGRESS_PROXY"  # the Supervisor's address in the add-on
DEFAULT_CURRENCY_ENV = "PREPAID_LEDGER_CURRENCY"
DEFAULT_TIMEZONE_ENV = "PREPAID_LEDGER_TIMEZONE"
TENANT_MIN_TOPUP_ENV = "PREPAID_LEDGER_TENANT_MIN_TOPUP_MINOR"
RECONCILE_MINUTES_ENV = "PREPAID_LEDGER_RECONCILE_MINUTES"  # 0: never list Stripe's events
TRUSTED_PROXIES_ENV = "PREPAID_LEDGER_TRUSTED_PROXIES"  # comma-separated reverse-proxy addresses
ADMIN_TOKEN_FILE = "admin-token"  # noqa: S105


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


def load_admin_token(data_dir: Path) -> tuple[str, Path | None]:
    """Return the admin token: from the environment, else from (or generated into) DIR, 0600."""
    from_env = os.environ.get(ADMIN_TOKEN_ENV, "").strip()
    if from_env:
        return from_env, None
    path = data_dir / ADMIN_TOKEN_FILE
    if path.exists():
        return path.read_text(encoding="utf-8").strip(), path
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(token + "\n")
    return token, path


def settings_from(data_dir: Path, database_url: str | None, **overrides: object) -> Settings:
    """Build settings for a data directory, reading secrets from the environment."""
    data_dir.mkdir(parents=True, exist_ok=True)
    token, token_path = load_admin_token(data_dir)
    values: dict[str, object] = {
        "data_dir": data_dir,
        "database_url": database_url or sqlite_url(data_dir),
        "admin_token": token,
        "admin_token_path": token_path,
        "stripe_webhook_secret": os.environ.get(STRIPE_SECRET_ENV) or None,
        "standard_webhook_secret": os.environ.get(STANDARD_SECRET_ENV) or None,
        "stripe_api_key": os.environ.get(STRIPE_API_KEY_ENV) or None,
        "stripe_api_base": os.environ.get(STRIPE_API_BASE_ENV) or None,
        "public_base_url": os.environ.get(PUBLIC_BASE_URL_ENV, "").strip().rstrip("/") or None,
        "ingress_proxy": os.environ.get(INGRESS_PROXY_ENV) or None,
        "default_currency": os.environ.get(DEFAULT_CURRENCY_ENV) or "EUR",
        "default_timezone": os.environ.get(DEFAULT_TIMEZONE_ENV) or "UTC",
    }
    if min_topup := os.environ.get(TENANT_MIN_TOPUP_ENV):
        values["tenant_min_topup_minor"] = int(min_topup)
    if proxies := os.environ.get(TRUSTED_PROXIES_ENV):
        values["trusted_proxies"] = tuple(p.strip() for p in proxies.split(",") if p.strip())
    if reconcile_minutes := os.environ.get(RECONCILE_MINUTES_ENV):
        values["reconcile_minutes"] = float(reconcile_minutes)
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]
