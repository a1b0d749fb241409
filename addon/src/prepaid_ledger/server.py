"""The two TCP listeners and the connection limits they share.

One place for the command line and the tests, so what the tests measure is what runs. aiohttp's
keep-alive timer starts when a connection opens and closes it while no complete request has
arrived, so IDLE_TIMEOUT_S is also the deadline for a request's headers; the body deadline is
the transport middleware's (app.BODY_TIMEOUT_S).
"""

from __future__ import annotations

import contextlib
import gc
from dataclasses import dataclass
from typing import Any, Final

from aiohttp import web, web_response

from prepaid_ledger.app import SERVER_NAME, create_app, create_public_app
from prepaid_ledger.config import Settings

#: Seconds a connection may stay without a complete request: from connect to the end of the
#: headers, and idle between keep-alive requests.
IDLE_TIMEOUT_S: Final = 5.0
#: Seconds the server keeps reading (and discarding) a body it refused before it closes.
LINGER_S: Final = 2.0
#: What aiohttp's RequestHandler accepts per connection; longer lines or more headers get 400.
HANDLER_ARGS: Final[dict[str, Any]] = {
    "keepalive_timeout": IDLE_TIMEOUT_S,
    "lingering_time": LINGER_S,
    "max_line_size": 8190,
    "max_field_size": 8190,
    "max_headers": 100,
}


def _hide_server_banner() -> None:
    """Drop aiohttp's versioned Server header also where no application hook runs.

    A request aiohttp cannot parse (too long a line, too many headers) is answered with 400
    before any application sees it, so app.security_headers never runs for it; the Server
    header of that answer comes from this module default. tests/ledger/test_listeners.py
    checks that it still does after an aiohttp upgrade.
    """
    web_response.SERVER_SOFTWARE = SERVER_NAME  # type: ignore[attr-defined]


def _url(address: Any) -> str:
    """Return the http:// URL of a bound socket address (IPv4 or IPv6)."""
    host, port = str(address[0]), int(address[1])
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


@dataclass(slots=True)
class Listeners:
    """Both running listeners; stop them with cleanup()."""

    private: web.AppRunner
    public: web.AppRunner

    @property
    def private_url(self) -> str:
        """Where the private app listens (the actual port, also when 0 was asked for)."""
        return _url(self.private.addresses[0])

    @property
    def public_url(self) -> str:
        """Where the public app listens."""
        return _url(self.public.addresses[0])

    async def cleanup(self) -> None:
        """Stop the public listener first: the private app owns the database it still uses."""
        try:
            await self.public.cleanup()
        finally:
            await self.private.cleanup()


def freeze_startup_heap() -> None:
    """Keep the objects that live as long as the process out of every later garbage collection.

    Imports, the schema, compiled statements and the apps are ~200,000 objects that never die;
    CPython's full collection walked them all every 15 s or so under a fleet's load, stopping the
    event loop for ~100 ms each time (a payment arriving then waited for it: most of the credit
    p99). Frozen after start-up, a full collection walks only what was made since.
    """
    gc.collect()
    gc.freeze()


def _runner(app: web.Application, shutdown_timeout: float) -> web.AppRunner:
    return web.AppRunner(
        app,
        handle_signals=False,
        access_log=None,
        shutdown_timeout=shutdown_timeout,
        **HANDLER_ARGS,
    )


async def start_sites(
    settings: Settings,
    *,
    host: str,
    port: int,
    public_host: str,
    public_port: int,
    shutdown_timeout: float = 10.0,
) -> Listeners:
    """Open the database (private app startup) and listen on both addresses."""
    _hide_server_banner()
    private_app = create_app(settings)
    public_app = create_public_app(settings, private_app)
    private = _runner(private_app, shutdown_timeout)
    public = _runner(public_app, shutdown_timeout)
    await private.setup()
    try:
        await web.TCPSite(private, host, port).start()
        await public.setup()
        await web.TCPSite(public, public_host, public_port).start()
    except BaseException:
        with contextlib.suppress(Exception):
            await public.cleanup()
        await private.cleanup()
        raise
    return Listeners(private, public)
