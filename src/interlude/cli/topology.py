"""``interlude topology validate|schema``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from interlude.adapters.registry import available_kinds
from interlude.cli.output import make_console
from interlude.topology.lint import lint_file
from interlude.topology.loader import json_schema


@click.group("topology")
def topology_group() -> None:
    """Work with topology files."""


@topology_group.command("validate")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def validate(file: Path) -> None:
    """Validate FILE: schema, cross-references and semantic checks; every problem as file:line:col, exit 1."""
    console = make_console()
    topo, problems = lint_file(file, known_kinds=available_kinds())
    if topo is None or problems:
        for problem in problems:
            console.print(str(problem), markup=False, highlight=False, soft_wrap=True)
        console.print(f"[red]invalid[/red] {file}: {len(problems)} problem{'s' if len(problems) != 1 else ''}")
        raise SystemExit(1)
    console.print(
        f"[green]valid[/green] {file}: topology [bold]{topo.name}[/bold], {len(topo.nodes)} nodes, "
        f"{len(topo.links)} links, {len(topo.services)} services"
    )


@topology_group.command("schema")
def schema() -> None:
    """Print the topology JSON Schema (for editors)."""
    click.echo(json.dumps(json_schema(), indent=2))

