"""``interlude emulate`` (the offline partner) and ``interlude serve`` (the partner in front of real gear).

Both build a :class:`~interlude.app.runtime.Runtime` from a topology and serve the MEF APIs and the
partner operations API with aiohttp until Ctrl-C / SIGTERM. ``emulate`` drives every node with the in-memory
``emulated`` adapter whatever its ``kind`` says; ``serve`` uses each node's own adapter kind (a kind whose
adapter or optional dependency is missing stops start-up with the registry's message).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import signal
import ssl
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from interlude.adapters.registry import available_kinds
from interlude.api.auth import TokenTable, load_tokens
from interlude.app.logs import LOG_FORMATS, configure_logging
from interlude.app.runtime import Runtime
from interlude.app.security import OAuthSetup, oauth_setup, tls_context
from interlude.app.server import build_runtime, reset_state, state_location
from interlude.app.server import serve as serve_partner
from interlude.app.web import API_MODULES
from interlude.cli.output import make_console
from interlude.emulator.devices import DeviceEndpoints
from interlude.emulator.scenario import Scenario, check_scenario, load_scenario
from interlude.errors import ConfigError, InterludeError
from interlude.topology.loader import bundled_topology_path, load_topology
from interlude.topology.model import Topology

console = make_console()
log = logging.getLogger(__name__)


def _banner(runtime: Runtime, url: str, db: Path | str, mode: str) -> None:
    table = Table(title=f"interlude {mode}: {runtime.topology.name} at {url}", show_header=True, header_style="bold")
    table.add_column("API")
    table.add_column("path", overflow="fold")
    for module in API_MODULES:  # every API the app serves, in mount order
        base = str(getattr(module, "BASE", ""))
        if not base:
            continue
        parts = base.strip("/").split("/")
        name, path = (f"{parts[2]} {parts[3]}" if parts[0] == "mefApi" else "partner operations"), base + "/"
        table.add_row(name, path)
    console.print(table)
    kinds = sorted({n.kind for n in runtime.topology.nodes.values()})
    console.print(
        f"{len(runtime.topology.nodes)} nodes ({', '.join(kinds) if mode == 'serve' else 'emulated'}), "
        f"{sum(1 for _ in runtime.inventory.services())} services, state in [bold]{db}[/bold]. Ctrl-C stops."
    )
    console.print(f"console  [bold]{url}/console/[/bold]   API documents  [bold]{url}/docs[/bold]")
    console.print(f"metrics  {url}/metrics   health  {url}/health   readiness  {url}/ready")
    console.print(f"as an SP: [bold]{_interlude()} client --url {url} --buyer sp-alpha services[/bold]")


def _interlude() -> str:
    """How to run this very command again without activating its virtualenv."""
    exe = Path(sys.argv[0])
    return str(exe) if exe.name == "interlude" and exe.parent != Path() else "interlude"


class _ConsoleEvents:
    """Prints what the server reports (:class:`interlude.app.server.ServerEvents`) on the terminal."""

    def __init__(self, runtime: Runtime, db: Path | str, mode: str, tokens: TokenTable | None,
                 oauth: OAuthSetup | None = None) -> None:  # fmt: skip
        self.runtime = runtime
        self.db = db
        self.mode = mode
        self.tokens = tokens
        self.oauth = oauth
        self.on_listening: Callable[[], None] | None = None

    def started(self, devices: DeviceEndpoints | None) -> None:
        if devices is not None and devices.snmp:
            console.print(f"devices over SNMP v2c and v3 at [bold]{devices.snmp}[/bold]")
            if "community" in devices.generated:  # drawn for this run: shown here, once
                listed = ", ".join(f"{node}={c}" for node, c in devices.communities.items())
                console.print(f"  v2c communities for this run: {listed}")
            if devices.snmp_v3 is not None:
                v3 = devices.snmp_v3
                console.print(f"  v3 user {v3.name} ({v3.auth_protocol}/{v3.priv_protocol}, context = node name): "
                              f"auth key {v3.auth_key}, priv key {v3.priv_key}")  # fmt: skip
        if devices is not None and devices.netconf:
            source = "drawn for this run" if "password" in devices.generated else "from the topology or environment"
            shown = f": {devices.netconf_password}" if "password" in devices.generated else ""
            console.print(f"devices over NETCONF at [bold]{devices.netconf}[/bold] (username = node name, "
                          f"password {source}{shown})")  # fmt: skip
        if self.oauth is not None:
            v = self.oauth.validator
            console.print(f"OAuth2 access tokens required (issuer {v.issuer}, audience {v.audience}); "
                          "one scope per operation; X-Interlude-Buyer is ignored")  # fmt: skip
            if self.oauth.server is not None:
                console.print(f"built-in authorization server: {self.oauth.server.token_endpoint} "
                              f"({len(self.oauth.server.clients)} clients)")  # fmt: skip
        elif self.tokens is not None:
            console.print(f"bearer tokens required ({len(self.tokens)} configured); X-Interlude-Buyer is ignored")
        else:
            logging.getLogger("interlude.api.auth").warning(
                "NO AUTHENTICATION: any client is whatever buyer X-Interlude-Buyer names; local development only"
            )
            console.print("[yellow]no authentication[/yellow]: the buyer is whatever X-Interlude-Buyer says "
                          "(use --tokens FILE beyond a test bench)")  # fmt: skip

    def listening(self, url: str) -> None:
        _banner(self.runtime, url, self.db, self.mode)
        if self.on_listening is not None:
            self.on_listening()

    def scenario_started(self, scenario: Scenario) -> None:
        console.print(f"playing scenario [bold]{scenario.name}[/bold]: {scenario.description}")

    def scenario_report(self, message: str) -> None:
        console.print(f"[yellow]scenario[/] {message}")

    def stopping(self) -> None:
        console.print("stopping...")


STOP_LIMIT_S = 5.0
"""A stop that has not finished after this long ends the process anyway (exit status 1)."""


def on_signal(stop: asyncio.Event, loop: asyncio.AbstractEventLoop,
              exit_now: Callable[[int], object] = os._exit) -> Callable[[], None]:  # fmt: skip
    """The SIGINT/SIGTERM handler: the first asks for a clean stop, the second exits at once (status 130).

    The clean stop is bounded by :data:`STOP_LIMIT_S`, whatever is connected or still running.
    """

    def overdue() -> None:
        console.print(f"[red]the stop did not finish within {STOP_LIMIT_S:g} s: exiting[/red]")
        exit_now(1)

    def handler() -> None:
        if stop.is_set():
            console.print("interrupted again: exiting now")
            exit_now(130)
            return
        stop.set()
        loop.call_later(STOP_LIMIT_S, overdue)

    return handler


async def _serve_until_signalled(runtime: Runtime, host: str, port: int, events: _ConsoleEvents, *,
                                 tokens: TokenTable | None, devices: tuple[int | None, int | None],
                                 netconf_password: str | None, scenario: Scenario | None,
                                 oauth: OAuthSetup | None = None, tls: ssl.SSLContext | None = None,
                                 device_host: str = "127.0.0.1", reuse_port: bool = False) -> None:  # fmt: skip
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, on_signal(stop, loop))
    await serve_partner(runtime, host, port, stop, events, tokens=tokens, devices=devices,
                        netconf_password=netconf_password, scenario=scenario, oauth=oauth, tls=tls,
                        device_host=device_host, reuse_port=reuse_port)  # fmt: skip


class _Workers:
    """The extra processes of ``--workers N``: the same command with one worker each, on the same port.

    Started once the first process listens (so it has seeded an empty database alone), stopped with it.
    """

    def __init__(self, argv: list[str], count: int) -> None:
        self.argv = argv
        self.count = count
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self) -> None:
        code = "from interlude.cli.main import main; main()"
        for _ in range(self.count):
            self.procs.append(subprocess.Popen([sys.executable, "-c", code, *self.argv]))
        console.print(f"{self.count} more worker process(es): {', '.join(str(p.pid) for p in self.procs)}")

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _worker_argv() -> list[str]:
    """The arguments of one more worker: ours with ``--workers 1``, no device servers, the shared port."""
    argv, out, skip = sys.argv[1:], [], False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg in ("--workers", "--snmp-port", "--netconf-port", "--scenario"):
            skip = True
            continue
        if arg.startswith(("--workers=", "--snmp-port=", "--netconf-port=", "--scenario=")):
            continue
        out.append(arg)
    extra = ["--no-device-agents"] if out and out[0] == "emulate" and "--no-device-agents" not in out else []
    return [*out, *extra, "--workers", "1", "--reuse-port"]


def _run(topology: Topology, topo_path: Path, host: str, port: int, db: str | None, scenario: Path | None,
         mode: str, verbose: bool, devices: tuple[int | None, int | None] = (None, None),
         netconf_password: str | None = None, tokens_file: Path | None = None,
         security: SecurityOptions | None = None, device_host: str = "127.0.0.1", workers: int = 1,
         reuse_port: bool = False, log_format: str = "text", reset: bool = False) -> None:  # fmt: skip
    configure_logging(log_format, verbose)
    if workers > 1 and not (db or "").startswith(("postgresql://", "postgres://")):
        console.print("[red]error[/red]: several workers share one database: give --db postgresql://...")
        raise SystemExit(2)
    if workers > 1 and port == 0:
        console.print("[red]error[/red]: several workers share one port: give --port")
        raise SystemExit(2)
    db_path, state_dir = state_location(topology, db)
    sec = security or SecurityOptions()
    extra = _Workers(_worker_argv(), workers - 1) if workers > 1 else None
    try:
        if reset:
            removed = reset_state(db_path)
            console.print(f"reset: removed {', '.join(map(str, removed))}" if removed else f"reset: none at {db_path}")
        scen = load_scenario(scenario) if scenario is not None else None
        if scen is not None:
            check_scenario(scen, topology)
        tokens = load_tokens(tokens_file, topology) if tokens_file is not None else None
        tls = tls_context(sec.tls_cert, sec.tls_key, sec.tls_client_ca)
        url = f"{'https' if tls is not None else 'http'}://{host}:{port}"
        oauth = oauth_setup(topology, sec.issuer_url or url, sec.oauth_file, sec.clients_file)
        if oauth is not None and tokens is not None:
            raise ConfigError("give --tokens or OAuth2 (--oauth / --oauth-clients), not both")
        runtime = build_runtime(topology, topo_path, db_path, state_dir, emulate=mode == "emulate")
        events = _ConsoleEvents(runtime, db_path, mode, tokens, oauth)
        if extra is not None:
            events.on_listening = extra.start
        asyncio.run(_serve_until_signalled(runtime, host, port, events, tokens=tokens, devices=devices,
                                           netconf_password=netconf_password, scenario=scen,
                                           oauth=oauth, tls=tls, device_host=device_host,
                                           reuse_port=reuse_port or extra is not None))  # fmt: skip
    except InterludeError as exc:
        console.print(f"[red]error[/red]: {exc}")
        raise SystemExit(1) from None
    except OSError as exc:
        console.print(f"[red]error[/red]: cannot serve on {host}:{port}: {exc.strerror or exc}")
        raise SystemExit(1) from None
    finally:
        if extra is not None:
            extra.stop()


def _load(path: Path, known_kinds: list[str] | None) -> Topology:
    try:
        return load_topology(path, known_kinds=known_kinds)
    except InterludeError as exc:
        console.print(f"[red]invalid topology[/red] {path}: {exc}")
        raise SystemExit(1) from None


_host = click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
_port = click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535), help="TCP port.")
_db = click.option(
    "--db", default=None, metavar="FILE|URL",
    help="SQLite state file (default: .interlude/<topology name>.db) or postgresql://user@host/db "
    "(several processes sharing one database; needs the 'postgres' extra).",
)  # fmt: skip
_verbose = click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
_log_format = click.option(
    "--log-format", type=click.Choice(LOG_FORMATS), default="text", show_default=True,
    help="Log lines as text (ISO-8601 time, level, logger, message) or as one JSON object each.",
)  # fmt: skip
_workers = click.option(
    "--workers", default=1, show_default=True, type=click.IntRange(1, 64),
    help="Processes serving the same port (SO_REUSEPORT); more than one needs --db postgresql://... "
    "(see docs/scale.md). The first one also serves the emulated devices and plays the scenario.",
)  # fmt: skip
_reuse_port = click.option("--reuse-port", is_flag=True, hidden=True, help="Share the port with other workers.")
_tokens = click.option(
    "--tokens", "tokens_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
    help="Bearer-token file (YAML: 'token: buyer' lines, or a list of {buyer, token: {env|file}}; buyer "
    "'operator' for the /interlude/v1 operations API). With it every API needs 'Authorization: Bearer', "
    "missing/unknown tokens get 401 and X-Interlude-Buyer is ignored. Without it (the default) there is NO "
    "authentication: the buyer is whatever X-Interlude-Buyer says. See README 'Security'.",
)  # fmt: skip

_file = click.Path(exists=True, dir_okay=False, path_type=Path)


@dataclass(frozen=True)
class SecurityOptions:
    """OAuth2 and TLS options shared by ``emulate`` and ``serve`` (:mod:`interlude.app.security`)."""

    oauth_file: Path | None = None
    clients_file: Path | None = None
    issuer_url: str | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_client_ca: Path | None = None


def _security_options(command: Callable[..., None]) -> Callable[..., None]:
    """Adds the OAuth2/TLS options; the command receives them as one ``security`` argument."""
    options = [
        click.option("--oauth", "oauth_file", type=_file, default=None,
                     help="OAuth2 resource-server file (issuer, audience, jwks_uri, subjects → buyers): JWT access "
                     "tokens with one scope per operation. See docs/security.md."),
        click.option("--oauth-clients", "clients_file", type=_file, default=None,
                     help="Run the built-in authorization server (/oauth2/token) for the clients of this file "
                     "(hashed secrets or public keys) and require its tokens."),
        click.option("--oauth-issuer", "issuer_url", default=None, metavar="URL",
                     help="Issuer URL of the built-in authorization server (default: the served URL)."),
        click.option("--tls-cert", type=_file, default=None, help="Serve HTTPS with this certificate (PEM)."),
        click.option("--tls-key", type=_file, default=None, help="Private key of --tls-cert (PEM)."),
        click.option("--tls-client-ca", type=_file, default=None,
                     help="Require client certificates signed by this CA (mutual TLS)."),
    ]  # fmt: skip

    @functools.wraps(command)
    def wrapper(**kwargs: Any) -> None:
        fields = ("oauth_file", "clients_file", "issuer_url", "tls_cert", "tls_key", "tls_client_ca")
        security = SecurityOptions(**{name: kwargs.pop(name) for name in fields})
        command(security=security, **kwargs)

    for option in reversed(options):
        wrapper = option(wrapper)
    return wrapper


@click.command("emulate")
@click.option(
    "--topology", "topology_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
    help="Topology file (default: the bundled metro-partner).",
)  # fmt: skip
@_host
@_port
@_db
@click.option(
    "--scenario", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
    help="Scenario file: faults over time (see emulator/scenarios/).",
)  # fmt: skip
@click.option("--snmp-port", default=16100, show_default=True, type=click.IntRange(0, 65535),
              help="UDP port of the emulated devices' SNMP agent (communities from the topology, else drawn "
              "per run and printed once; SNMPv3 user 'interlude'; 0: any free port).")
@click.option("--netconf-port", default=18300, show_default=True, type=click.IntRange(0, 65535),
              help="TCP port of the emulated devices' NETCONF server (SSH username = node name).")
@click.option("--netconf-password-file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="File holding the NETCONF password of the emulated devices (or INTERLUDE_NETCONF_PASSWORD; "
              "default: a node's topology credentials, else drawn per run and printed once).")
@click.option("--netconf-password", "netconf_password_arg", default=None, hidden=True,
              help="Refused: a password on the command line is visible in ps.")
@click.option("--device-host", default="127.0.0.1", show_default=True,
              help="Address the emulated devices' SNMP and NETCONF agents listen on (independent of --host).")
@click.option("--no-device-agents", is_flag=True, help="Do not serve the emulated devices over SNMP and NETCONF.")
@click.option("--reset", is_flag=True, help="Start from the topology again: delete the SQLite state first.")
@_tokens
@_security_options
@_verbose
@_log_format
@_workers
@_reuse_port
def emulate(topology_file: Path | None, host: str, port: int, db: str | None, scenario: Path | None,
            snmp_port: int, netconf_port: int, netconf_password_file: Path | None, netconf_password_arg: str | None,
            device_host: str,
            no_device_agents: bool, reset: bool, tokens_file: Path | None, verbose: bool,
            security: SecurityOptions, log_format: str = "text", workers: int = 1,
            reuse_port: bool = False) -> None:  # fmt: skip
    """Run the partner emulator: the MEF Interlude APIs over an in-memory network.

    The emulated devices are also reachable over SNMP and NETCONF on the same host (loopback by default), so
    SNMP/NETCONF tools and the snmp/netconf adapters work offline against the very devices orders change.
    """
    path = topology_file or bundled_topology_path()
    devices: tuple[int | None, int | None] = (None, None) if no_device_agents else (snmp_port, netconf_port)
    if netconf_password_arg is not None:
        raise click.UsageError("--netconf-password would show the password in ps: set INTERLUDE_NETCONF_PASSWORD "
                               "or give --netconf-password-file")  # fmt: skip
    netconf_password = os.environ.get("INTERLUDE_NETCONF_PASSWORD")
    if netconf_password_file is not None:
        netconf_password = netconf_password_file.read_text(encoding="utf-8").strip()
    _run(_load(path, None), path, host, port, db, scenario, "emulate", verbose, devices, netconf_password, tokens_file,
         security, device_host, workers, reuse_port, log_format, reset)  # fmt: skip


@click.command("serve")
@click.option(
    "--topology", "topology_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True,
    help="Topology file naming the real nodes and their adapter kinds.",
)  # fmt: skip
@_host
@_port
@_db
@_tokens
@_security_options
@_verbose
@_log_format
@_workers
@_reuse_port
def serve(topology_file: Path, host: str, port: int, db: str | None, tokens_file: Path | None, verbose: bool,
          security: SecurityOptions, log_format: str = "text", workers: int = 1,
          reuse_port: bool = False) -> None:  # fmt: skip
    """Serve the MEF Interlude APIs in front of real network elements (adapter per node kind).

    Give --tokens FILE whenever anyone but you can reach the port: without it the caller picks its buyer.
    """
    _run(_load(topology_file, available_kinds()), topology_file, host, port, db, None, "serve", verbose,
         tokens_file=tokens_file, security=security, workers=workers, reuse_port=reuse_port,
         log_format=log_format)  # fmt: skip

