"""Drive a real Home Assistant of another release like a user would; run by scripts/smoke-newest-ha.

Starts the real ledger and the meter simulator from the project's environment, and Home
Assistant from the venv scripts/smoke-newest-ha built (``--ha-venv``), each on a free port, with a
fresh configuration in a temporary folder (scripts/develop's configuration.yaml, the integration
symlinked from this checkout). Then, over Home Assistant's REST and websocket API: onboarding
(owner user, token), the site's config flow (a wrong token first, then the admin token), meters
through the meter subentry flow (Room 2 with a relay module and a new prepaid account, the
homeowner's meter unlinked), the empty account's relay opening, a Stripe-signed payment closing
it again (seen on the switch entity and in the simulator), the site's reconfigure flow (to an
integration-scope token) and the site loaded again afterwards; finally the Home Assistant log
must hold no "Detected that custom integration" report, no ERROR and no traceback from
prepaid_meter, and no integration that failed to set up. Any failure names its step, shows the
relevant log lines and keeps the temporary folder; processes are always stopped.

    python scripts/lib/smoke_newest_ha.py --ha-venv /opt/smoke-ha-2026.11.0 --ha-version 2026.11.0
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts" / "lib"))

import demo_payment  # noqa: E402 - scripts/lib is not a package
import develop_config  # noqa: E402
import develop_onboard  # noqa: E402
from develop_seed import DEMO_METERS, DEMO_TARIFFS, _call  # noqa: E402

#: scripts/develop's simulated gateway: three tenant rooms (Room 2 switched by a relay module
#: at unit 20, coil 0) and the homeowner's meter.
SIMULATOR_ARGS = [
    "--meter", "1:acrel_ddsy1352:1500", "--meter", "2:eastron_sdm120:800",
    "--meter", "3:hiking_dds238_2:300", "--meter", "4:eastron_sdm630:5000",
    "--relay-module", "20:0=2",
]  # fmt: skip
#: The meters added through the subentry flow (names, units and profiles as scripts/develop's):
#: the room that is paid into gets a new prepaid account; the home stays unlinked.
PAID_ROOM = "Room 2"
METERS = {name: (unit, profile, extra) for name, unit, profile, extra, *_ in DEMO_METERS}
PAYMENT_EUR = "10"
#: Log lines that fail the smoke whatever logger wrote them.
ALWAYS_BAD = ("Detected that custom integration", "Setup failed for", "recovery mode")
HA_START_TIMEOUT = 240  # seconds; a cold start compiles translations and builds the database
RELAY_TIMEOUT = 90


class SmokeError(Exception):
    """A step failed: the message says which and why."""


class LogProblemError(SmokeError):
    """Home Assistant's log has records that fail the smoke (the message shows them)."""


def step(text: str) -> None:
    """One line per step, with the time since the start."""
    print(f"smoke: [{time.monotonic() - STARTED:5.1f} s] {text}", flush=True)


STARTED = time.monotonic()


def free_port() -> int:
    """Return a TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_for[T](
    what: str, probe: Callable[[], Awaitable[T | None]], within: float, every: float = 1.0
) -> T:
    """Call ``probe`` until it returns something other than None; SmokeError after ``within``."""
    deadline = time.monotonic() + within
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if (value := await probe()) is not None:
                return value
        except (aiohttp.ClientError, OSError, ValueError) as err:
            last_error = err
        await asyncio.sleep(every)
    detail = f" (last error: {last_error})" if last_error else ""
    raise SmokeError(f"{what}: not within {within:.0f} s{detail}")


class Processes:
    """The ledger, simulator and Home Assistant: started in their own process groups."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.running: dict[str, subprocess.Popen[bytes]] = {}

    def start(
        self,
        name: str,
        args: list[str],
        env: dict[str, str],
        *,
        stdin: bool = False,
        cwd: Path = REPO,
    ) -> subprocess.Popen[bytes]:
        """Start one process, its output into <work>/<name>.log."""
        log = self.log_path(name).open("wb")
        # setpriv (util-linux): the process gets SIGTERM should the smoke die without cleaning up.
        if setpriv := shutil.which("setpriv"):
            args = [setpriv, "--pdeathsig", "TERM", "--", *args]
        process = subprocess.Popen(  # noqa: S603 - our own interpreters and modules
            args,
            cwd=cwd,
            env=env,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.running[name] = process
        return process

    def log_path(self, name: str) -> Path:
        """Where a process's console output goes (Home Assistant's own log is in config/)."""
        return self.work / (
            "homeassistant-console.log" if name == "homeassistant" else f"{name}.log"
        )

    def check_alive(self) -> None:
        """Raise SmokeError when one of them has exited."""
        for name, process in self.running.items():
            if process.poll() is not None:
                raise SmokeError(
                    f"{name} exited with code {process.returncode}\n"
                    + tail(self.log_path(name), 25)
                )

    def stop_all(self) -> None:
        """SIGTERM every group (Home Assistant first), SIGKILL what is left after 30 s."""
        order = sorted(self.running, key=lambda name: name != "homeassistant")
        for name in order:
            process = self.running[name]
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(30 if name == "homeassistant" else 10)
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            if process.stdin is not None:
                with contextlib.suppress(OSError):
                    process.stdin.close()
        self.running.clear()


def tail(path: Path, lines: int) -> str:
    """Return the last lines of a log, indented, for an error message."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
    except FileNotFoundError:
        return f"    ({path} does not exist)"
    return "\n".join(f"    {line}" for line in text)


_RECORD_START = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\S* ([A-Z]+) ")


def log_records(text: str) -> Iterator[tuple[str, str]]:
    """Home Assistant's log as (level, record) pairs; a traceback stays with its record."""
    level, lines = "", []
    for line in text.splitlines():
        match = _RECORD_START.match(line)
        if match and lines:
            yield level, "\n".join(lines)
            lines = []
        if match:
            level = match.group(1)
        lines.append(line)
    if lines:
        yield level, "\n".join(lines)


def log_problems(text: str) -> tuple[list[str], list[str]]:
    """Split Home Assistant's log into records that fail the smoke and other errors."""
    bad, other = [], []
    for level, record in log_records(text):
        ours = "prepaid_meter" in record
        if any(marker in record for marker in ALWAYS_BAD) or (
            ours and (level in {"ERROR", "CRITICAL"} or "Traceback" in record)
        ):
            bad.append(record)
        elif level in {"ERROR", "CRITICAL"}:
            other.append(record)
    return bad, other


class Smoke:
    """The whole run; ``main`` below wraps it in setup and cleanup."""

    def __init__(self, work: Path, ha_venv: Path, version: str, integration: Path) -> None:
        """Prepare the run in ``work``; nothing is started yet."""
        self.work = work
        self.integration = integration
        self.ha_venv = ha_venv
        self.version = version
        self.config = work / "config"
        self.ledger_dir = work / "ledger"  # demo_payment reads <dev>/ledger/admin-token
        self.ha_port, self.ledger_port, self.sim_port = free_port(), free_port(), free_port()
        self.ledger_public_port = free_port()  # never the default 8100 another ledger may hold
        self.base = f"http://127.0.0.1:{self.ha_port}"
        self.ledger_url = f"http://127.0.0.1:{self.ledger_port}"
        self.processes = Processes(work)
        self.http: aiohttp.ClientSession
        self.token = ""
        self.admin_token = ""

    # --- processes -------------------------------------------------------------------------

    def start_services(self) -> None:
        """Start the ledger and the simulator from the project's venv (this interpreter)."""
        secret = f"whsec_smoke_{secrets.token_hex(12)}"
        (self.work / "stripe_webhook_secret").write_text(secret, encoding="utf-8")
        env = {**os.environ, "PREPAID_LEDGER_STRIPE_WEBHOOK_SECRET": secret}
        env.pop("PREPAID_LEDGER_ADMIN_TOKEN", None)  # the ledger writes its own admin token
        self.processes.start(
            "ledger",
            [sys.executable, "-m", "prepaid_ledger", "serve", "--data-dir", str(self.ledger_dir),
             "--host", "127.0.0.1", "--port", str(self.ledger_port),
             "--public-port", str(self.ledger_public_port)],
            env,
        )  # fmt: skip
        self.processes.start(
            "simulator",
            [sys.executable, "-m", "meter_simulator", "--tcp", f"127.0.0.1:{self.sim_port}",
             *SIMULATOR_ARGS],
            dict(os.environ),
            stdin=True,
        )  # fmt: skip

    def start_home_assistant(self) -> None:
        """Home Assistant from the smoke venv: that venv first on PATH, no PYTHONPATH.

        ``--skip-pip``: it installs nothing at run time (scripts/smoke-newest-ha installed what
        it needs), so a missing requirement shows as a failed setup instead of a download.
        """
        develop_config.write_config(self.config, self.ha_port)
        custom = self.config / "custom_components"
        custom.mkdir(exist_ok=True)
        (custom / "prepaid_meter").symlink_to(self.integration)
        env = {
            "PATH": f"{self.ha_venv}/bin:/usr/local/bin:/usr/bin:/bin",
            "VIRTUAL_ENV": str(self.ha_venv),  # uv and pip would otherwise use the project's
            "HOME": os.environ.get("HOME", "/root"),
            "LANG": "C.UTF-8",
        }
        if "SSL_CERT_FILE" in os.environ:
            env["SSL_CERT_FILE"] = os.environ["SSL_CERT_FILE"]
        self.processes.start(
            "homeassistant",
            [f"{self.ha_venv}/bin/python", "-m", "homeassistant", "--config", str(self.config),
             "--skip-pip", "--log-no-color"],
            env,
            cwd=self.work,  # not the checkout: its custom_components would shadow --integration
        )  # fmt: skip

    def simulator_relay(self, unit: int) -> str:
        """Ask the simulator itself for a meter's relay: "closed" or "OPEN"."""
        process = self.processes.running["simulator"]
        log = self.work / "simulator.log"
        before = log.stat().st_size
        if process.stdin is None:  # pragma: no cover - started with stdin=True
            raise SmokeError("the simulator has no stdin")
        process.stdin.write(b"status\n")
        process.stdin.flush()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with log.open("rb") as handle:
                handle.seek(before)
                new = handle.read().decode(errors="replace")
            if match := re.search(rf"^unit {unit}: \S+ relay=(\w+)", new, flags=re.MULTILINE):
                return match.group(1)
            time.sleep(0.1)
        raise SmokeError(f"the simulator did not answer 'status'\n{tail(log, 10)}")

    # --- Home Assistant's API ----------------------------------------------------------------

    async def api(self, method: str, path: str, body: Any = None, *, ok: bool = True) -> Any:
        """Make a REST call with the owner's token; return the JSON answer."""
        async with self.http.request(
            method,
            f"{self.base}{path}",
            json=body,
            headers={"Authorization": f"Bearer {self.token}"},
        ) as response:
            text = await response.text()
            if ok and response.status >= 400:
                raise SmokeError(f"{method} {path} answered {response.status}: {text[:500]}")
            return await response.json(content_type=None) if text else None

    async def flow(self, kind: str, start: dict[str, Any], steps: list[dict[str, Any]]) -> Any:
        """Run a config/subentry flow through its forms; returns the last result.

        Each step gives the expected ``step_id`` and the ``input`` to send; fields the input
        leaves out take the form's defaults, like the frontend does.
        """
        url = f"/api/config/config_entries/{kind}"
        result = await self.api("POST", url, start)
        for expected in steps:
            if result.get("type") != "form" or result.get("step_id") != expected["step_id"]:
                raise SmokeError(
                    f"{kind} {start['handler']}: expected the form {expected['step_id']!r}, "
                    f"got {result}"
                )
            data = {
                field["name"]: field["default"]
                for field in result.get("data_schema") or []
                if "default" in field
            }
            data.update(expected["input"])
            result = await self.api("POST", f"{url}/{result['flow_id']}", data)
            if want := expected.get("errors"):
                if result.get("errors") != want:
                    raise SmokeError(f"{kind}: expected errors {want}, got {result}")
                data |= expected["retry"]
                result = await self.api("POST", f"{url}/{result['flow_id']}", data)
        return result

    async def ws(self, *messages: dict[str, Any]) -> list[Any]:
        """Send websocket commands (scripts/develop's helper); return their results."""
        try:
            return await develop_onboard._ws(self.http, self.base, self.token, *messages)
        except SystemExit as err:  # its failures are worded for scripts/develop
            raise SmokeError(str(err)) from None

    async def entry_state(self, entry_id: str) -> str:
        """Return the config entry's state ("loaded", "setup_retry", ...)."""
        entries = await self.api("GET", "/api/config/config_entries/entry?domain=prepaid_meter")
        return next((e["state"] for e in entries if e["entry_id"] == entry_id), "missing")

    async def wait_loaded(self, entry_id: str, what: str) -> None:
        """Wait until the config entry is loaded."""

        async def loaded() -> bool | None:
            self.processes.check_alive()
            return True if await self.entry_state(entry_id) == "loaded" else None

        try:
            await wait_for(what, loaded, 60)
        except SmokeError as err:
            raise SmokeError(f"{err}; state {await self.entry_state(entry_id)}") from None

    # --- the scenario ------------------------------------------------------------------------

    async def run(self) -> None:
        """Run every step; SmokeError on the first that fails."""
        step(f"ledger on {self.ledger_url}, simulator on 127.0.0.1:{self.sim_port}")
        self.start_services()

        async def ledger_up() -> bool | None:
            self.processes.check_alive()
            async with self.http.get(f"{self.ledger_url}/api/v1/health") as response:
                return True if response.status == 200 else None

        await wait_for("the ledger starting", ledger_up, 60, every=0.3)
        self.admin_token = (self.ledger_dir / "admin-token").read_text(encoding="utf-8").strip()
        for tariff in DEMO_TARIFFS:
            _call(self.ledger_url, self.admin_token, "POST", "/api/v1/tariffs", tariff)

        step(f"Home Assistant {self.version} starting on {self.base} (config {self.config})")
        self.start_home_assistant()
        await self.onboard()

        step("config flow: the ledger site (a wrong token first)")
        result = await self.flow(
            "flow",
            {"handler": "prepaid_meter", "show_advanced_options": False},
            [{"step_id": "user", "input": {"url": self.ledger_url, "token": "wrong"},
              "errors": {"base": "invalid_auth"}, "retry": {"token": self.admin_token}}],
        )  # fmt: skip
        if result.get("type") != "create_entry":
            raise SmokeError(f"the site's config flow did not create an entry: {result}")
        entry_id = result["result"]["entry_id"]
        await self.wait_loaded(entry_id, "the site loading")

        for name, link in ((PAID_ROOM, "new"), ("Home", "none")):
            how = "a new prepaid account" if link == "new" else "unlinked"
            step(f"meter subentry flow: {name} ({how})")
            unit, profile, extra = METERS[name]
            steps = [
                {"step_id": "user",
                 "input": {"name": name, "profile": profile, "connection": "tcp"}},
                {"step_id": "connection",
                 "input": {"host": "127.0.0.1", "port": self.sim_port, "unit_id": unit, **extra}},
                {"step_id": "ledger", "input": {"ledger_meter_id": link}},
            ]  # fmt: skip
            if link == "new":
                steps.append({"step_id": "ledger_new", "input": {"account_name": name}})
            result = await self.flow(
                "subentries/flow", {"handler": [entry_id, "meter"], "show_advanced_options": False},
                steps,
            )  # fmt: skip
            if result.get("type") != "create_entry":
                raise SmokeError(f"the meter flow for {name} did not create a subentry: {result}")
        await self.wait_loaded(entry_id, "the site loading its meters")

        relay_entity = await self.relay_entity(PAID_ROOM)
        step(f"{PAID_ROOM} has no credit: waiting for {relay_entity} to open")
        await self.wait_relay(relay_entity, closed=False)

        step(f"a Stripe-signed payment of {PAYMENT_EUR} EUR into {PAID_ROOM}")
        os.environ["PREPAID_DEVELOP_DIR"] = str(self.work)
        os.environ["PREPAID_DEVELOP_LEDGER_PORT"] = str(self.ledger_port)
        os.environ["PREPAID_DEVELOP_LEDGER_PUBLIC_PORT"] = str(self.ledger_public_port)
        try:
            demo_payment.main(PAID_ROOM.removeprefix("Room "), PAYMENT_EUR)
        except SystemExit as err:
            raise SmokeError(f"the payment failed: {err}") from None
        await self.wait_relay(relay_entity, closed=True)

        step("reconfigure flow: the site moves to an integration-scope token")
        integration_token = _call(
            self.ledger_url, self.admin_token, "POST", "/api/v1/tokens",
            {"scope": "integration", "name": "smoke"},
        )["token"]  # fmt: skip
        result = await self.flow(
            "flow",
            {"handler": "prepaid_meter", "entry_id": entry_id, "show_advanced_options": False},
            [{"step_id": "reconfigure",
              "input": {"url": self.ledger_url, "token": integration_token}}],
        )  # fmt: skip
        if result.get("type") != "abort" or result.get("reason") != "reconfigure_successful":
            raise SmokeError(f"the reconfigure flow did not finish: {result}")
        await asyncio.sleep(3)  # the site restarts on the new token
        await self.wait_loaded(entry_id, "the site loading again after reconfigure")
        await self.wait_relay(relay_entity, closed=True)

        step("checking Home Assistant's log")
        self.check_log()

    async def onboard(self) -> None:
        """Create the owner user and get a token, the way the onboarding screens do."""

        async def onboarding_open() -> bool | None:
            self.processes.check_alive()
            async with self.http.get(f"{self.base}/api/onboarding") as response:
                return True if response.status == 200 else None

        await wait_for("Home Assistant's onboarding API", onboarding_open, HA_START_TIMEOUT)
        try:
            self.token = await develop_onboard._onboard(self.http, self.base, self.work)
        except aiohttp.ClientResponseError as err:
            raise SmokeError(f"onboarding failed: {err}") from None
        step("onboarded: owner user created, token issued")

        async def running() -> bool | None:
            self.processes.check_alive()
            config = await self.api("GET", "/api/config")
            return True if config.get("state") == "RUNNING" else None

        await wait_for("Home Assistant running", running, HA_START_TIMEOUT)
        config = await self.api("GET", "/api/config")
        if config.get("version") != self.version:
            raise SmokeError(f"Home Assistant reports {config.get('version')}, not {self.version}")
        step(f"Home Assistant {config['version']} is running")

    async def relay_entity(self, device_name: str) -> str:
        """Find the relay switch of a meter in the entity and device registries."""

        async def find() -> str | None:
            entities, devices = await self.ws(
                {"type": "config/entity_registry/list"}, {"type": "config/device_registry/list"}
            )
            names = {d["id"]: d.get("name_by_user") or d.get("name") for d in devices}
            for device_id, keys in develop_onboard.meters_by_device(entities).items():
                if names.get(device_id) == device_name and "relay" in keys:
                    return keys["relay"]
            return None

        return await wait_for(f"the relay switch of {device_name}", find, 30)

    async def wait_relay(self, entity_id: str, *, closed: bool) -> None:
        """Until the switch entity and the simulator's meter both show the relay state."""
        unit = METERS[PAID_ROOM][0]
        want_entity, want_sim = ("on", "closed") if closed else ("off", "OPEN")
        seen: dict[str, str] = {}

        async def both() -> bool | None:
            self.processes.check_alive()
            state = await self.api("GET", f"/api/states/{entity_id}", ok=False)
            seen["entity"] = (state or {}).get("state", "missing")
            seen["simulator"] = self.simulator_relay(unit)
            return True if seen == {"entity": want_entity, "simulator": want_sim} else None

        start = time.monotonic()
        try:
            await wait_for(f"the relay of {PAID_ROOM} {'closing' if closed else 'opening'}",
                           both, RELAY_TIMEOUT, every=1.0)  # fmt: skip
        except SmokeError as err:
            raise SmokeError(f"{err}; last seen {seen}") from None
        step(f"relay of {PAID_ROOM} {want_sim.lower()} ({entity_id} {want_entity}, simulator "
             f"relay={want_sim}) after {time.monotonic() - start:.0f} s")  # fmt: skip

    def check_log(self) -> None:
        """Fail on problem records in Home Assistant's log; show other errors."""
        log = self.config / "home-assistant.log"
        bad, other = log_problems(log.read_text(encoding="utf-8", errors="replace"))
        if other:
            print(f"smoke: {len(other)} other ERROR record(s) in the log (not ours, not failing):")
            for record in other[:10]:
                print("    " + record.splitlines()[0][:300])
        if bad:
            shown = "\n".join("    " + line for record in bad for line in record.splitlines()[:30])
            raise LogProblemError(
                f"Home Assistant's log has {len(bad)} problem record(s):\n{shown}"
            )


async def _main_async(smoke: Smoke) -> None:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
        smoke.http = http
        await smoke.run()


def main() -> int:
    """Run the smoke in a temporary folder; 0 when it passed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--ha-venv", required=True, type=Path)
    parser.add_argument("--ha-version", required=True)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument(
        "--integration",
        type=Path,
        default=REPO / "custom_components" / "prepaid_meter",
        help="the integration to load (default: this checkout's)",
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="prepaid-smoke-"))
    smoke = Smoke(work, args.ha_venv, args.ha_version, args.integration.resolve())
    # A CI timeout or Ctrl-C still stops the processes (finally below).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    code, show_tail = 1, True
    try:
        asyncio.run(_main_async(smoke))
        code = 0
    except SmokeError as err:
        print(f"smoke: FAILED with Home Assistant {args.ha_version}: {err}", file=sys.stderr)
        show_tail = not isinstance(err, LogProblemError)
    except (KeyboardInterrupt, SystemExit) as err:
        code = err.code if isinstance(err, SystemExit) and isinstance(err.code, int) else 130
        print("smoke: interrupted; stopping everything", file=sys.stderr)
    finally:
        smoke.processes.stop_all()
    if code == 1:
        log = smoke.config / "home-assistant.log"
        if show_tail:
            print(f"smoke: last lines of {log}:\n{tail(log, 25)}", file=sys.stderr)
        print(f"smoke: everything is kept in {work}", file=sys.stderr)
        return code
    if code == 0:
        step(f"passed with Home Assistant {args.ha_version}")
    if args.keep:
        print(f"smoke: kept {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
