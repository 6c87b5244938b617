"""``interlude lab up|down|status|exec|impair|import-clab``: run a topology as network namespaces.

Every command takes the topology FILE; ``--state-dir`` and ``--prefix`` override where the lab records
itself and how its objects are named (see :mod:`interlude.lab.state` and :mod:`interlude.lab.builder`).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click
import yaml
from rich.table import Table

from interlude.cli.output import make_console
from interlude.errors import InterludeError
from interlude.lab.builder import Lab, status_document
from interlude.lab.clab import convert_clab
from interlude.lab.plumbing import resolve_target
from interlude.topology.loader import load_topology
from interlude.topology.model import Impairment

_console = make_console(stderr=True)


def _lab(file: Path, state_dir: Path | None, prefix: str | None) -> Lab:
    topology = load_topology(file)
    return Lab(topology, base_dir=file.parent.absolute(), state_dir=state_dir, prefix=prefix, topology_file=file)


def _fail(exc: BaseException) -> None:
    _console.print(f"[red]error:[/red] {exc}")
    raise SystemExit(1) from None


_common = [
    click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path)),
    click.option(
        "--state-dir",
        type=click.Path(file_okay=False, path_type=Path),
        help="The lab's state folder (default: $INTERLUDE_LAB_DIR/NAME or /run/interlude/labs/NAME).",
    ),
    click.option("--prefix", help="Object-name prefix (default: lab.prefix or the topology name's first letters)."),
]


def _with_common(func: Any) -> Any:
    for decorator in reversed(_common):
        func = decorator(func)
    return func


@click.group("lab")
def lab_group() -> None:
    """Run a topology as network namespaces with real agents (needs root)."""


@lab_group.command("up")
@_with_common
def up(file: Path, state_dir: Path | None, prefix: str | None) -> None:
    """Bring the lab of FILE up; returns once every agent answers."""
    try:
        lab = _lab(file, state_dir, prefix)
        with _console.status(f"bringing up [bold]{lab.topology.name}[/bold]") as status:

            def progress(message: str) -> None:
                status.update(message)
                _console.log(message)

            state = lab.up(progress)
    except InterludeError as exc:
        _fail(exc)
        return
    agents = sum(len(n.agents) for n in state.nodes.values())
    _console.print(
        f"[green]up[/green] {state.name}: {len(state.nodes)} nodes, {len(state.namespaces)} namespaces, "
        f"{agents} agents; state in {state.state_dir}"
    )
    if state.mgmt_root_if:
        _console.print(f"management network: {state.mgmt_root_if} {state.mgmt_root_address}")


@lab_group.command("down")
@_with_common
def down(file: Path, state_dir: Path | None, prefix: str | None) -> None:
    """Remove everything the lab of FILE created (idempotent; also after a failed ``up``)."""
    try:
        removed = _lab(file, state_dir, prefix).down()
    except InterludeError as exc:
        _fail(exc)
        return
    processes = sum(1 for r in removed if r.startswith("process "))
    _console.print(
        f"[green]down[/green]: removed {len(removed)} objects; {processes} processes stopped, every one has exited"
        if removed
        else "nothing to remove"
    )


@lab_group.command("status")
@_with_common
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
def status(file: Path, state_dir: Path | None, prefix: str | None, as_json: bool) -> None:
    """Show the lab's nodes, agents and links."""
    try:
        lab = _lab(file, state_dir, prefix)
        doc = status_document(lab.require_state())
    except InterludeError as exc:
        _fail(exc)
        return
    if as_json:
        click.echo(json.dumps(doc, indent=2))
        return
    out = make_console()
    out.print(f"lab [bold]{doc['lab']}[/bold] ({doc['status']}), prefix {doc['prefix']}, state {doc['state_dir']}")
    nodes = Table("node", "kind", "namespace", "address", "agents")
    for node in doc["nodes"]:
        agents = ", ".join(f"{a['type']}:{a['pid']}{'' if a['alive'] else ' (dead)'}" for a in node["agents"])
        nodes.add_row(node["name"], node["kind"], node["namespace"], node["address"] or "", agents)
    out.print(nodes)
    links = Table("link", "endpoints", "impairment")
    for link in doc["links"]:
        imp = {k: v for k, v in link["impairment"].items() if v not in (None, 0, 0.0, False)}
        links.add_row(link["id"], " <-> ".join(link["endpoints"]), ", ".join(f"{k}={v}" for k, v in imp.items()))
    out.print(links)


@lab_group.command("exec", context_settings={"ignore_unknown_options": True})
@_with_common
@click.argument("node")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def exec_(file: Path, state_dir: Path | None, prefix: str | None, node: str, command: tuple[str, ...]) -> None:
    """Run COMMAND inside NODE's namespace (NODE:IF: in the edge namespace facing that interface)."""
    try:
        state = _lab(file, state_dir, prefix).require_state()
        if ":" in node:
            name, ifname = node.split(":", 1)
            wire = state.wire_of(name, ifname)
            if wire.kind != "edge":
                raise InterludeError(f"{node} is linked to another node, not to an edge namespace")
            netns = wire.b.netns
        else:
            netns = state.node(node).namespace
    except InterludeError as exc:
        _fail(exc)
        return
    sys.stdout.flush()
    os.execvp("ip", ["ip", "netns", "exec", netns, *command])


@lab_group.command("impair")
@_with_common
@click.argument("target")
@click.option("--delay-ms", type=float, help="One-way delay in each direction (inserts a relay if needed).")
@click.option("--jitter-ms", type=float, help="Uniform +- jitter around the delay.")
@click.option("--loss-percent", type=float, help="Random loss in each direction (nftables).")
@click.option("--rate-mbps", type=float, help="Rate limit in each direction (tbf); 0 removes it.")
@click.option("--down/--up", "down_", default=None, help="Cut the link (far end admin down) or restore it.")
@click.option("--clear", is_flag=True, help="Start from no impairment instead of the current one.")
def impair(
    file: Path,
    state_dir: Path | None,
    prefix: str | None,
    target: str,
    delay_ms: float | None,
    jitter_ms: float | None,
    loss_percent: float | None,
    rate_mbps: float | None,
    down_: bool | None,
    clear: bool,
) -> None:
    """Change the impairment of TARGET (a link id such as link0, or NODE:IF); unset options keep their value."""
    try:
        lab = _lab(file, state_dir, prefix)
        state = lab.require_state()
        wire, _ = resolve_target(state, target)
        current: dict[str, Any] = {} if clear else dict(wire.impairment)
        for key, value in (
            ("delay_ms", delay_ms),
            ("jitter_ms", jitter_ms),
            ("loss_percent", loss_percent),
            ("down", down_),
        ):
            if value is not None:
                current[key] = value
        if rate_mbps is not None:
            current["rate_mbps"] = rate_mbps or None
        try:
            imp = Impairment(**current)
        except ValueError as exc:
            raise InterludeError(f"invalid impairment: {exc}") from exc
        wire = lab.impair(target, imp)
    except InterludeError as exc:
        _fail(exc)
        return
    _console.print(
        f"[green]{wire.id}[/green] {' <-> '.join(f'{e.node or e.netns}:{e.ifname}' for e in (wire.a, wire.b))}"
    )
    click.echo(json.dumps(wire.impairment))


@lab_group.command("import-clab")
@click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
def import_clab(file: Path) -> None:
    """Convert a containerlab topology (nodes, links) into an interlude topology, printed as YAML."""
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
        topology = convert_clab(data)
    except (InterludeError, yaml.YAMLError, OSError) as exc:
        _fail(exc)
        return
    click.echo(f"# converted from {file.name} by 'interlude lab import-clab'; nodes run as plain namespaces")
    click.echo(yaml.safe_dump(topology, sort_keys=False))

