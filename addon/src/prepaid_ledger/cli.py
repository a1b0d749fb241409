"""Command line of the ledger service: serve, migrate, verify, readings-retention."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from prepaid_ledger import __version__
from prepaid_ledger.config import ADMIN_TOKEN_ENV, ENV_PREFIX, settings_from
from prepaid_ledger.domain.money import MAX_MINOR
from prepaid_ledger.store.database import Database, sqlite_url

if TYPE_CHECKING:
    from prepaid_ledger.store.partitions import RetentionSummary


def _topup_limit(text: str) -> int:
    """Parse --max-topup-minor: at most what any money field may hold (MAX_MINOR)."""
    try:
        value = int(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from err
    if not 1 <= value <= MAX_MINOR:
        raise argparse.ArgumentTypeError(f"must be from 1 to {MAX_MINOR}")
    return value


def _month(text: str) -> date:
    """Parse --before: a month as YYYY-MM."""
    from prepaid_ledger.store.partitions import parse_month  # noqa: PLC0415

    try:
        return parse_month(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from err


def build_parser() -> argparse.ArgumentParser:
    """Describe the command line."""
    parser = argparse.ArgumentParser(
        prog="prepaid-ledger",
        description="Prepaid Meter Ledger: prepaid accounts, tariffs, top-ups and webhooks.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    def add_store_options(sub: argparse.ArgumentParser, *, data_dir_required: bool) -> None:
        sub.add_argument(
            "--data-dir",
            type=Path,
            required=data_dir_required,
            help="directory of the embedded SQLite database and the generated admin token",
        )
        sub.add_argument(
            "--database-url",
            help="SQLAlchemy URL, e.g. postgresql+asyncpg://user:pw@host/db (default: SQLite)",
        )

    serve = commands.add_parser("serve", help="run the HTTP service")
    add_store_options(serve, data_dir_required=True)
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument(
        "--port",
        type=int,
        default=8099,
        help="TCP port of the private listener: API, landlord page, ingress (default 8099)",
    )
    serve.add_argument(
        "--public-host",
        help="address of the public listener (default: the same as --host)",
    )
    serve.add_argument(
        "--public-port",
        type=int,
        default=8100,
        help="TCP port of the public listener: webhooks, pay pages, health (default 8100)",
    )
    serve.add_argument(
        "--processing-timeout",
        type=float,
        default=900.0,
        help="seconds an order may stay in processing before it needs attention",
    )
    serve.add_argument(
        "--max-topup-minor",
        type=_topup_limit,
        default=1_000_000,
        help=f"largest top-up amount accepted, in minor units (1 to {MAX_MINOR})",
    )
    serve.add_argument(
        "--log-level",
        choices=("debug", "info", "warning", "error"),
        default="info",
        help="how much the service logs (default info)",
    )
    for name, text in (
        ("migrate", "create or upgrade the database schema"),
        ("verify", "check that transactions balance and stored balances match their entries"),
    ):
        add_store_options(commands.add_parser(name, help=text), data_dir_required=False)
    retention = commands.add_parser(
        "readings-retention",
        help="remove readings taken before a month (held readings stay); archive them first",
        description=(
            "Remove the readings taken before the first day of a month (UTC), except held "
            "readings, which wait for a person. On PostgreSQL whole monthly partitions are "
            "dropped. Balances, statements and each meter's last reading do not depend on "
            "old readings; the last 35 days are never removed (days left, charts)."
        ),
    )
    add_store_options(retention, data_dir_required=False)
    retention.add_argument(
        "--before",
        type=_month,
        required=True,
        metavar="YYYY-MM",
        help="remove readings taken before this month's first day, 00:00 UTC",
    )
    retention.add_argument(
        "--archive-dir",
        type=Path,
        help="first write each month's removed readings to DIR/readings-YYYY-MM.csv",
    )
    retention.add_argument(
        "--dry-run",
        action="store_true",
        help="change nothing; print what would be removed",
    )
    return parser


def _database_url(args: argparse.Namespace, parser: argparse.ArgumentParser) -> str:
    if args.database_url:
        return str(args.database_url)
    if args.data_dir is None:
        parser.error("give --data-dir or --database-url")
    return sqlite_url(Path(args.data_dir))


async def _serve(args: argparse.Namespace) -> int:
    from prepaid_ledger.server import (  # noqa: PLC0415 - only serve needs it
        freeze_startup_heap,
        start_sites,
    )

    try:
        settings = settings_from(
            args.data_dir,
            args.database_url,
            processing_timeout_s=args.processing_timeout,
            max_topup_minor=args.max_topup_minor,
        )
    except ValidationError as err:
        for problem in err.errors(include_url=False):
            name = ENV_PREFIX + str(problem["loc"][0]).upper()
            print(f"prepaid-ledger: {name}: {problem['msg']}", file=sys.stderr)
        return 2
    if settings.admin_token_path is not None:
        print(
            f"admin token is stored in {settings.admin_token_path} "
            f"(set {ADMIN_TOKEN_ENV} to choose one)",
            flush=True,
        )
    listeners = await start_sites(
        settings,
        host=args.host,
        port=args.port,
        public_host=args.public_host or args.host,
        public_port=args.public_port,
    )
    freeze_startup_heap()
    print(
        f"prepaid-ledger {__version__} listening on {listeners.private_url} (private: API, "
        f"landlord page) and {listeners.public_url} (public: webhooks, pay pages)",
        flush=True,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await listeners.cleanup()
    return 0


async def _migrate(url: str) -> int:
    from prepaid_ledger.store.migrate import migrate  # noqa: PLC0415

    db = Database(url)
    try:
        ledger_id = await migrate(db)
    finally:
        await db.close()
    print(f"schema is up to date; ledger_id {ledger_id}")
    return 0


async def _verify(url: str) -> int:
    from prepaid_ledger.services.verify import verify_ledger  # noqa: PLC0415
    from prepaid_ledger.store.migrate import migrate  # noqa: PLC0415

    db = Database(url)
    try:
        await migrate(db)
        problems = await db.read(verify_ledger)
    finally:
        await db.close()
    if problems:
        for problem in problems:
            print(f"VIOLATION: {problem}", file=sys.stderr)
        print(f"verify: {len(problems)} violation(s)", file=sys.stderr)
        return 1
    print("verify: ok (every transaction balances; every stored balance matches its entries)")
    return 0


def _retention_refused(args: argparse.Namespace) -> bool:
    """Check readings-retention's input before the database is opened; print why it is not."""
    from prepaid_ledger.store import partitions  # noqa: PLC0415

    try:
        partitions.check_cutoff(args.before, datetime.now(UTC))
    except partitions.CutoffTooRecentError as err:
        print(f"readings-retention: {err}; nothing was changed", file=sys.stderr)
        return True
    if args.archive_dir is not None and not args.dry_run:
        try:
            Path(args.archive_dir).mkdir(parents=True, exist_ok=True)
        except OSError as err:
            print(f"readings-retention: --archive-dir: {err}", file=sys.stderr)
            return True
    return False


async def _readings_retention(url: str, args: argparse.Namespace) -> int:
    from prepaid_ledger.store import partitions  # noqa: PLC0415
    from prepaid_ledger.store.migrate import migrate  # noqa: PLC0415
    from prepaid_ledger.store.transient import overload_reason  # noqa: PLC0415

    before: date = args.before
    archive_dir: Path | None = args.archive_dir
    db = Database(url)
    try:
        await migrate(db)
        summary = await partitions.remove_readings_before(
            db, before, archive_dir=archive_dir, dry_run=args.dry_run
        )
    except Exception as err:
        reason = overload_reason(err)
        if reason is None:
            raise
        print(
            f"readings-retention: the database is busy ({reason}); run it again later",
            file=sys.stderr,
        )
        return 1
    finally:
        await db.close()
    _print_retention(summary)
    return 0


def _print_retention(summary: RetentionSummary) -> None:
    from prepaid_ledger.store.partitions import format_month  # noqa: PLC0415

    verb = "would remove" if summary.dry_run else "removed"
    for month in summary.months:
        line = f"{format_month(month.month)}: {verb} {month.removed} reading(s)"
        if month.held_kept:
            line += f", kept {month.held_kept} held"
        if month.partition is not None:
            line += f"; partition {month.partition} {'would be ' if summary.dry_run else ''}"
            line += "dropped"
        for path in month.archives:
            line += f"; archived in {path}"
        print(line)
    print(
        f"readings-retention: {verb} {summary.removed} reading(s) taken before "
        f"{format_month(summary.before)}-01 00:00 UTC; kept {summary.held_kept} held"
        + (" (dry run: nothing was changed)" if summary.dry_run else "")
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    level = getattr(args, "log_level", "info").upper()
    logging.basicConfig(
        level=getattr(logging, level), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if args.command == "serve":
        with contextlib.suppress(KeyboardInterrupt):
            return asyncio.run(_serve(args))
        return 0
    url = _database_url(args, parser)
    if args.command == "migrate":
        return asyncio.run(_migrate(url))
    if args.command == "readings-retention":
        if _retention_refused(args):
            return 2
        return asyncio.run(_readings_retention(url, args))
    return asyncio.run(_verify(url))
