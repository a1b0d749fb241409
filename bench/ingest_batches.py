"""Reading batches shaped as Home Assistant sends them: ONE reading per meter per poll.

Each site (one Home Assistant) posts one batch per poll with one reading for each of its
meters, as the integration's coordinator does; the sites poll concurrently, each on its own
interval with a random phase. The cost of such a batch is per meter (its charge state, its
journal posting, its account's supply decision), which ``bench/ledger_throughput.py`` (50
readings per meter per batch) hides.

The same load runs against this checkout and, with ``--baseline DIR``, against another
revision's sources in the same run, on SQLite and on PostgreSQL (a throwaway server from
Debian's binaries): like with like, on this machine. Make DIR with git outside the
environment (the environment has no git), e.g.:

    git worktree add --detach /tmp/ledger-base c285b86
    scripts/run python bench/ingest_batches.py [--sites 10] [--meters 100] [--polls 12]
        [--interval 3] [--baseline /tmp/ledger-base]
    git worktree remove /tmp/ledger-base

``--interval 3`` with 10 sites of 100 meters is 333 readings/s: the reading rate of 100 sites
polled every 30 s, with a tenth of the connections. Per line: batch latency p50/p99 and the
readings/s committed. Last line: ``ingest_batches: sqlite_p99_ms=N postgres_p99_ms=N
sqlite_readings_per_s=N postgres_readings_per_s=N`` for this checkout.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).parent))
from ledger_throughput import T0, TOU_TARIFF, call, percentile, postgres, service


@dataclass
class Result:
    """One run: every batch's latency (ms), readings committed, wall time, errors."""

    latencies: list[float]
    readings: int
    seconds: float
    errors: int

    def line(self, label: str) -> str:
        p50, p99 = percentile(self.latencies, 0.5), percentile(self.latencies, 0.99)
        return (
            f"{label}: batch p50 {p50:.0f} ms, p99 {p99:.0f} ms, "
            f"{self.readings / self.seconds:.0f} readings/s committed, {self.errors} errors "
            f"({len(self.latencies)} batches)"
        )


def revision(tree: Path | None) -> dict[str, str]:
    """Environment running the ledger whose sources are in TREE; this checkout: {}."""
    if tree is None:
        return {}
    paths = [tree / "contract" / "src", tree / "addon" / "src"]
    if not all(path.is_dir() for path in paths):
        raise SystemExit(f"{tree} holds no contract/src and addon/src")
    return {"PYTHONPATH": os.pathsep.join(str(p) for p in paths)}


@contextlib.asynccontextmanager
async def ledger(data_dir: Path, url: str | None, env: dict[str, str]) -> AsyncIterator[str]:
    """The ledger service of this checkout or of a baseline revision (env's PYTHONPATH)."""
    saved = os.environ.get("PYTHONPATH")
    if "PYTHONPATH" in env:
        os.environ["PYTHONPATH"] = env["PYTHONPATH"]
    try:
        async with service(data_dir, url) as base:
            yield base
    finally:
        if saved is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved


@dataclass(frozen=True)
class Room:
    """A room: its prepaid account (id and printed number, which payments name) and meter."""

    account_id: int
    number: str
    meter_id: int


async def make_rooms(  # noqa: PLR0917 - the benches' one way to furnish a site
    http: aiohttp.ClientSession,
    base: str,
    label: str,
    meters: int,
    tariff_id: int,
    site_id: int | None = None,
) -> list[Room]:
    """Open METERS rooms named after LABEL: an account with 1,000.00 credit and a meter.

    SITE_ID places the accounts on that site (None: the ledger's default site).
    """
    rooms = []
    for room in range(meters):
        wanted: dict[str, Any] = {
            "name": f"{label} room {room}",
            "currency": "EUR",
            "timezone": "UTC",
        }
        if site_id is not None:
            wanted["site_id"] = site_id
        account = await call(http, "POST", base + "/api/v1/accounts", json=wanted)
        meter = await call(
            http,
            "POST",
            base + "/api/v1/meters",
            json={"account_id": account["id"], "tariff_id": tariff_id, "name": "m", "unit": "kWh"},
        )
        rooms.append(Room(account["id"], account["number"], meter["id"]))
    seeded = await call(
        http,
        "POST",
        base + "/api/v1/topups/batch",
        json={"items": [{"account": r.account_id, "amount_minor": 100_000} for r in rooms]},
        headers={"Idempotency-Key": f"seed-{rooms[0].account_id}"},
    )
    if not all(item["ok"] for item in seeded["results"]):
        raise RuntimeError(f"seeding the rooms' credit failed: {seeded}")
    return rooms


async def make_site(http: aiohttp.ClientSession, base: str, site: int, meters: int) -> list[int]:
    """Create a site's rooms on its own time-of-use tariff; return their meter ids."""
    tariff = await call(
        http,
        "POST",
        base + "/api/v1/tariffs",
        json=TOU_TARIFF | {"name": f"TOU {site}"},
    )
    return [r.meter_id for r in await make_rooms(http, base, f"site {site}", meters, tariff["id"])]


async def poll_site(  # noqa: PLR0917 - one call site
    http: aiohttp.ClientSession,
    base: str,
    meters: list[int],
    polls: int,
    interval: float,
    result: Result,
) -> None:
    """Post one batch per poll with one reading per meter (30 s of simulated time apart)."""
    rng = random.Random(meters[0])
    values = [rng.uniform(100, 5000) for _ in meters]
    await asyncio.sleep(rng.uniform(0, interval))
    for poll in range(polls + 1):  # poll 0: the baseline readings
        started = time.perf_counter()
        at = (T0 + timedelta(seconds=30 * poll)).isoformat()
        readings = []
        for i, meter in enumerate(meters):
            values[i] += rng.uniform(0.005, 0.05)
            readings.append({"meter_id": meter, "value": f"{values[i]:.3f}", "at": at})
        try:
            await call(http, "POST", base + "/api/v1/readings", json={"readings": readings})
            if poll:
                result.latencies.append((time.perf_counter() - started) * 1000)
                result.readings += len(readings)
        except RuntimeError, aiohttp.ClientError:
            result.errors += 1
        await asyncio.sleep(max(0.0, interval - (time.perf_counter() - started)))


async def measure(base: str, args: argparse.Namespace) -> Result:
    result = Result([], 0, 0.0, 0)
    timeout = aiohttp.ClientTimeout(total=120)
    connector = aiohttp.TCPConnector(limit=args.sites * 2)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as http:
        sites = [await make_site(http, base, s, args.meters) for s in range(args.sites)]
        start = time.perf_counter()
        await asyncio.gather(
            *(poll_site(http, base, m, args.polls, args.interval, result) for m in sites)
        )
        result.seconds = time.perf_counter() - start
    return result


async def run(args: argparse.Namespace) -> None:
    found: dict[str, Result] = {}
    with tempfile.TemporaryDirectory(prefix="ledger-bench-ingest-") as tmp, postgres() as pg:
        targets: list[tuple[str, Path | None]] = [("this checkout", None)]
        if args.baseline:
            targets.append((f"baseline {args.baseline}", Path(args.baseline)))
        for label, tree in targets:
            env = revision(tree)
            for backend, server in (("sqlite", None), ("postgres", pg)):
                if backend == "postgres" and server is None:
                    print("postgres: binaries not installed, skipped")
                    continue
                data = Path(tmp) / f"{backend}-{len(found)}"
                data.mkdir()
                # A fresh database per run.
                url = None if server is None else await fresh_database(server, f"b{len(found)}")
                async with ledger(data, url, env) as base:
                    found[f"{label} {backend}"] = result = await measure(base, args)
                print(result.line(f"{label}, {backend}"), flush=True)
    mine = {k.split()[-1]: v for k, v in found.items() if k.startswith("this checkout")}

    def p99(backend: str) -> str:
        return f"{percentile(mine[backend].latencies, 0.99):.0f}" if backend in mine else "n/a"

    def rate(backend: str) -> str:
        r = mine.get(backend)
        return f"{r.readings / r.seconds:.0f}" if r else "n/a"

    print(
        f"ingest_batches: sites={args.sites} meters={args.meters} "
        f"sqlite_p99_ms={p99('sqlite')} postgres_p99_ms={p99('postgres')} "
        f"sqlite_readings_per_s={rate('sqlite')} postgres_readings_per_s={rate('postgres')}"
    )


async def fresh_database(url: str, name: str) -> str:
    """Create database NAME on the throwaway server; return its URL."""
    import asyncpg  # noqa: PLC0415 - only with PostgreSQL

    plain = url.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(plain)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return url.rsplit("/", 1)[0] + f"/{name}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sites", type=int, default=10)
    parser.add_argument("--meters", type=int, default=100, help="meters per site")
    parser.add_argument("--polls", type=int, default=12, help="batches per site, after one")
    parser.add_argument("--interval", type=float, default=3.0, help="seconds between polls")
    parser.add_argument("--baseline", help="another revision's source tree, measured alike")
    asyncio.run(run(parser.parse_args()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
