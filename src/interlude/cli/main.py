"""The ``interlude`` command: one click group, every subcommand registered here by name of its object.

Each subcommand's module is imported only when that subcommand runs: the partner's modules pull in aiohttp,
pydantic, pysnmp and asyncssh (seconds of imports, and asyncssh's deprecation warnings), none of which
``interlude --help`` or ``interlude topology validate`` need. :data:`COMMANDS` names each command with the
one-line help ``--help`` shows and the loader that imports it; the loaders are this module's only
function-level imports (the top layer: nothing imports it, so no cycle can hide behind them).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import click

from interlude import __version__


def _topology() -> click.Command:
    from interlude.cli.topology import topology_group

    return topology_group


def _emulate() -> click.Command:
    from interlude.cli.serve import emulate

    return emulate


def _serve() -> click.Command:
    from interlude.cli.serve import serve

    return serve


def _lab() -> click.Command:
    from interlude.cli.lab import lab_group

    return lab_group


def _oam() -> click.Command:
    from interlude.cli.oam import oam_group

    return oam_group


def _conformance() -> click.Command:
    from interlude.cli.conformance import conformance

    return conformance


def _buyer() -> click.Command:
    from interlude.cli.buyer import buyer_group

    return buyer_group


def _client() -> click.Command:
    from interlude.cli.client import client_group

    return client_group


COMMANDS: dict[str, tuple[str, Callable[[], click.Command]]] = {
    "emulate": ("Run the partner emulator: the MEF Interlude APIs over an in-memory network.", _emulate),
    "serve": ("Serve the MEF Interlude APIs in front of real network elements.", _serve),
    "client": ("Talk to a running partner as a Service Provider (or its operator).", _client),
    "topology": ("Work with topology files.", _topology),
    "lab": ("Run a topology as network namespaces with real agents (needs root).", _lab),
    "oam": ("Ethernet OAM (Y.1731 / 802.1ag): loopback, linktrace, delay, loss, continuity check.", _oam),
    "conformance": ("Test a partner's server against MEF's definitions, as an SP would.", _conformance),
    "buyer": ("Buy Internet Access from a partner over LSO Sonata, as a buyer.", _buyer),
}
"""Command name → (the line ``--help`` shows, the loader importing it)."""


def quiet_third_party_warnings() -> None:
    """Keep libraries' deprecation notices (asyncssh on cryptography's DSA, ...) off the user's screen."""
    for module in ("asyncssh", "paramiko", "pysnmp", "pyasn1", "scapy", "ncclient"):
        warnings.filterwarnings("ignore", module=rf"{module}(\..*)?$")


class LazyGroup(click.Group):
    """A group whose :data:`COMMANDS` are imported when invoked, not when listed."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Every command, lazy and eager."""
        return [*COMMANDS, *sorted(set(super().list_commands(ctx)) - set(COMMANDS))]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """Import a lazy command's module now."""
        if cmd_name in COMMANDS:
            quiet_third_party_warnings()
            return COMMANDS[cmd_name][1]()
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """List commands with their stored one-liners (importing none of them)."""
        rows = [(name, short) for name, (short, _) in COMMANDS.items()]
        for name in sorted(set(super().list_commands(ctx)) - set(COMMANDS)):
            command = super().get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str()))
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="interlude")
def main() -> None:
    """lso-interlude: a runnable MEF LSO Interlude partner (APIs, adapters, OAM, emulator, labs)."""
