"""The partner as a running web server: the runtime a topology asks for, then aiohttp until told to stop.

``interlude emulate`` and ``interlude serve`` (:mod:`interlude.cli.serve`) parse options and print; what a
served partner consists of is decided here: where its state lives (:func:`state_location`), which adapters
drive its nodes (:func:`build_runtime`: the in-memory emulated adapter for every node when emulating, else
each node's own kind), and the server lifecycle (:func:`serve`: the app starts the runtime, the emulated
devices answer SNMP/NETCONF, a scenario plays its faults). Progress is reported through
:class:`ServerEvents`, so the command line decides how it looks.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from pathlib import Path
from typing import Protocol

from aiohttp import web

from interlude.adapters.emulated.adapter import EmulatedAdapter
from interlude.api.auth import TokenTable
from interlude.api.limits import HardenedRunner
from interlude.app.runtime import Runtime
from interlude.app.security import OAuthSetup
from interlude.app.web import create_app
from interlude.emulator.devices import DeviceEndpoints, device_agents
from interlude.emulator.scenario import Scenario, run_scenario
from interlude.errors import ConfigError
from interlude.topology.model import Topology

HANDLER_GRACE_S = 2.0
"""How long a stop waits for requests still being answered (streams are closed first, so they do not count)."""

STATE_DIR = Path(".interlude")
"""Where a partner keeps its state unless told otherwise (relative to the working directory)."""


def state_location(topology: Topology, db: str | None) -> tuple[Path | str, Path]:
    """The database (SQLite file or PostgreSQL URL) and the state directory for a topology.

    Without ``db``: ``.interlude/<topology name>.db``. Adapter state (e.g. lab bookkeeping) lives next to a
    SQLite file, or in ``.interlude`` when the database is PostgreSQL.
    """
    db_path: Path | str = STATE_DIR / f"{topology.name}.db"
    if db:
        db_path = db if db.startswith(("postgresql://", "postgres://")) else Path(db)
    state_dir = db_path.parent if isinstance(db_path, Path) else STATE_DIR
    return db_path, state_dir


def reset_state(db_path: Path | str) -> list[Path]:
    """Delete a SQLite state file (with its journal files) so the next start seeds afresh; the files removed.

    A PostgreSQL database is shared and may hold other partners' state: it is never dropped from here.
    """
    if not isinstance(db_path, Path):
        raise ConfigError("--reset deletes a SQLite state file; drop a PostgreSQL database with its own tools")
    removed = []
    for path in (db_path, *(db_path.with_name(db_path.name + suffix) for suffix in ("-wal", "-shm", "-journal"))):
        if path.exists():
            path.unlink()
            removed.append(path)
    return removed


def build_runtime(
    topology: Topology, topology_path: Path, db_path: Path | str, state_dir: Path, *, emulate: bool
) -> Runtime:
    """The runtime of a served partner; ``emulate`` drives every node with the emulated adapter, whatever its kind."""
    base_dir = topology_path.parent.resolve()
    if emulate:
        return Runtime(topology, db_path, base_dir=base_dir, state_dir=state_dir, adapter_factory=EmulatedAdapter)
    return Runtime(topology, db_path, base_dir=base_dir, state_dir=state_dir)


class ServerEvents(Protocol):
    """What :func:`serve` reports, in this order."""

    def started(self, devices: DeviceEndpoints | None) -> None:
        """The runtime is up (and the emulated devices, when asked for); the port is not open yet."""

    def listening(self, url: str) -> None:
        """The APIs answer at ``url``."""

    def scenario_started(self, scenario: Scenario) -> None:
        """A scenario begins to play."""

    def scenario_report(self, message: str) -> None:
        """One step of the scenario."""

    def stopping(self) -> None:
        """Asked to stop; the server and the runtime shut down next."""


async def serve(
    runtime: Runtime,
    host: str,
    port: int,
    stop: asyncio.Event,
    events: ServerEvents,
    *,
    tokens: TokenTable | None = None,
    devices: tuple[int | None, int | None] = (None, None),
    netconf_password: str | None = None,
    scenario: Scenario | None = None,
    oauth: OAuthSetup | None = None,
    tls: ssl.SSLContext | None = None,
    device_host: str = "127.0.0.1",
    reuse_port: bool = False,
) -> None:
    """Serve the APIs on ``host:port`` until ``stop`` is set; the app starts and stops the runtime.

    ``devices`` are the (SNMP, NETCONF) ports of the emulated devices (None: not served), bound to
    ``device_host`` (loopback unless told otherwise, whatever ``host`` the APIs use); ``oauth`` the OAuth2
    validator (and built-in authorization server), ``tls`` the server's TLS context (:mod:`interlude.app.security`).
    With ``reuse_port`` several processes listen on one port (``SO_REUSEPORT``) and the kernel spreads connections.
    """
    validator, auth_server = (oauth.validator, oauth.server) if oauth is not None else (None, None)
    app = create_app(runtime, tokens=tokens, oauth=validator, auth_server=auth_server)
    runner = HardenedRunner(app, access_log=None, shutdown_timeout=HANDLER_GRACE_S)
    await runner.setup()  # starts the runtime (cleanup_ctx)
    try:
        async with contextlib.AsyncExitStack() as stack:
            endpoints = None
            if devices != (None, None):
                agents = device_agents(runtime.context, device_host, *devices, netconf_password)
                endpoints = await stack.enter_async_context(agents)
            events.started(endpoints)
            site = web.TCPSite(runner, host, port, ssl_context=tls, reuse_port=reuse_port or None)
            await site.start()
            events.listening(f"{'https' if tls is not None else 'http'}://{host}:{port}")
            task: asyncio.Task[None] | None = None
            if scenario is not None:
                events.scenario_started(scenario)
                task = asyncio.create_task(run_scenario(scenario, runtime.faults, report=events.scenario_report))
            await stop.wait()
            events.stopping()
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
    finally:
        await runner.cleanup()
