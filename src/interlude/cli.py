"""The ``interlude`` command. Subcommands live beside the code they drive and are collected here.

Each module in :data:`SUBCOMMAND_MODULES` exposes ``commands: list[click.Command]``; a module that does not
exist yet is simply absent from ``--help``, so subsystems can land independently.
"""

from __future__ import annotations

import importlib

import click

from interlude import __version__

SUBCOMMAND_MODULES = (
    "interlude.topology.cli",
    "interlude.emulator.cli",
    "interlude.lab.cli",
    "interlude.oam.cli",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="interlude")
def main() -> None:
    """lso-interlude: a runnable MEF LSO Interlude partner (APIs, adapters, OAM, emulator, labs)."""


def _register() -> None:
    for name in SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        for command in getattr(module, "commands", []):
            main.add_command(command)


_register()
