"""Short crash-safety soak: SIGKILL the service while webhooks are delivered and retried."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

SOAK = Path(__file__).resolve().parents[2] / "bench" / "ledger_soak.py"


async def test_short_soak_loses_and_duplicates_nothing() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(SOAK),
        "--kills",
        "5",
        "--events",
        "40",
        "--max-gap",
        "0.3",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 120)
    text = out.decode()
    last = text.strip().splitlines()[-1]
    assert proc.returncode == 0, text
    assert last.startswith("ledger_soak: kills=5 events=40 ")
    assert "lost=0 duplicated=0 verify=ok" in last
