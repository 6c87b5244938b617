"""The ``interlude`` command: one click group, every subcommand registered here by name of its object."""

from __future__ import annotations

import click

from interlude import __version__
from interlude.cli.buyer import buyer_group
from interlude.cli.conformance import conformance
from interlude.cli.lab import lab_group
from interlude.cli.oam import oam_group
from interlude.cli.serve import emulate, serve
from interlude.cli.topology import topology_group


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="interlude")
def main() -> None:
    """lso-interlude: a runnable MEF LSO Interlude partner (APIs, adapters, OAM, emulator, labs)."""


for _command in (topology_group, emulate, serve, lab_group, oam_group, conformance, buyer_group):
    main.add_command(_command)
