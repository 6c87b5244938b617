"""``interlude topology validate|schema``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from interlude.adapters.registry import available_kinds
from interlude.cli.output import make_console
from interlude.errors import TopologyError
from interlude.topology.loader import json_schema, load_topology


@click.group("topology")
def topology_group() -> None:
    """Work with topology files."""


@topology_group.command("validate")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def validate(file: Path) -> None:
    """Validate FILE against the topology schema and cross-references; exit 1 with the error path."""
    console = make_console()
    try:
        topo = load_topology(file, known_kinds=available_kinds())
    except TopologyError as exc:
        console.print(f"[red]invalid[/red] {file}: {exc}")
        raise SystemExit(1) from None
    console.print(
        f"[green]valid[/green] {file}: topology [bold]{topo.name}[/bold], {len(topo.nodes)} nodes, "
        f"{len(topo.links)} links, {len(topo.services)} services"
    )


@topology_group.command("schema")
def schema() -> None:
    """Print the topology JSON Schema (for editors)."""
    click.echo(json.dumps(json_schema(), indent=2))

