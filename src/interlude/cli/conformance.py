"""``interlude conformance``: test any partner's Interlude (and Sonata) server as an SP would.

Prints each scenario's verdict as it ends under a live progress bar, then a summary (per API family, every
failure with its first finding, every skip with its reason); writes JUnit XML and a self-contained HTML
report when asked. Exit status: 0 when nothing failed, 1 when a scenario failed, 2 when the run could not
start (bad options, no definitions, token endpoint refusing, nothing served at the URL).
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from pathlib import Path

import click
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from interlude.cli.output import make_console
from interlude.conformance.http import Auth, BearerToken, ClientCredentials
from interlude.conformance.kit import KitOptions, run_kit
from interlude.conformance.model import Outcome, Scenario, ScenarioResult
from interlude.conformance.report import write_reports
from interlude.conformance.runner import FAMILY_KEYS, Run
from interlude.errors import ConfigError

console = make_console()
STYLE = {Outcome.PASSED: "green", Outcome.FAILED: "bold red", Outcome.SKIPPED: "yellow"}


def _auth(mode: str, token: str | None, token_url: str | None, client_id: str | None,
          client_secret: str | None, scope: str | None) -> Auth | None:  # fmt: skip
    if mode == "none":
        return None
    if mode == "token":
        if not token:
            raise click.UsageError("--auth token needs --token (or INTERLUDE_TOKEN)")
        return BearerToken(token)
    if not (token_url and client_id and client_secret):
        raise click.UsageError("--auth oauth2 needs --token-url, --client-id and --client-secret")
    return ClientCredentials(token_url, client_id, client_secret, scope)


def _summary(run: Run) -> None:
    table = Table(title=f"conformance of {run.target} ({run.seconds:.1f} s)", header_style="bold")
    for column in ("API", "passed", "failed", "skipped"):
        table.add_column(column)
    by_family: dict[str, Counter[Outcome]] = {}
    for result in run.results:
        by_family.setdefault(result.scenario.id.split(".", 1)[0], Counter())[result.outcome] += 1
    for family, counts in by_family.items():
        table.add_row(family, str(counts[Outcome.PASSED]), str(counts[Outcome.FAILED]), str(counts[Outcome.SKIPPED]))
    console.print(table)
    for result in run.results:
        if result.outcome is Outcome.FAILED:
            console.print(f"[bold red]FAILED[/] {result.scenario.id}")
            for finding in result.findings[:5]:
                console.print(f"    {finding.rule}: {finding.message}", markup=False, highlight=False)
    skipped = [r for r in run.results if r.outcome is Outcome.SKIPPED]
    if skipped:
        console.print(f"[yellow]{len(skipped)} skipped[/]:")
        for result in skipped:
            console.print(f"    {result.scenario.id}: {result.reason}", markup=False, highlight=False)
    if run.defects:
        console.print(f"[dim]{len(run.defects)} definition defect(s) tolerated (listed in the HTML report)[/]")
    verdict = "[bold green]PASSED[/]" if run.ok else "[bold red]FAILED[/]"
    console.print(f"{verdict}: {run.count(Outcome.PASSED)} passed, {run.count(Outcome.FAILED)} failed, "
                  f"{run.count(Outcome.SKIPPED)} skipped")  # fmt: skip


@click.command("conformance")
@click.option("--against", "target", required=True, metavar="URL", help="The partner's root URL (scheme://host:port).")
@click.option("--auth", "auth_mode", type=click.Choice(["none", "token", "oauth2"]), default="none", show_default=True,
              help="How the kit authenticates: none (X-Interlude-Buyer only), a bearer token, OAuth2 client "
              "credentials.")
@click.option("--token", envvar="INTERLUDE_TOKEN", help="Bearer token for --auth token (or INTERLUDE_TOKEN).")
@click.option("--token-url", help="OAuth2 token endpoint for --auth oauth2.")
@click.option("--client-id", envvar="INTERLUDE_CLIENT_ID", help="OAuth2 client id (or INTERLUDE_CLIENT_ID).")
@click.option("--client-secret", envvar="INTERLUDE_CLIENT_SECRET",
              help="OAuth2 client secret (or INTERLUDE_CLIENT_SECRET).")
@click.option("--scope", help="OAuth2 scope to ask for.")
@click.option("--buyer", help="Send X-Interlude-Buyer (a partner identifying buyers by header, e.g. the emulator).")
@click.option("--apis", help=f"Comma-separated API families to test (default all: {','.join(FAMILY_KEYS)}).")
@click.option("--only", multiple=True, help="Run only scenarios whose id starts with this (repeatable).")
@click.option("--mef-sdk", type=click.Path(file_okay=False, path_type=Path), envvar="INTERLUDE_MEF_SDK",
              required=True, help="Folder of MEF's SDK checkouts holding the *.api.yaml definitions "
              "(or INTERLUDE_MEF_SDK).")
@click.option("--profile", type=click.Path(dir_okay=False, path_type=Path),
              help="YAML profile: services and bodies the kit cannot discover (docs/conformance.md).")
@click.option("--listener-host", default="127.0.0.1", show_default=True,
              help="Address the kit's notification listener binds to and the partner calls back.")
@click.option("--listener-port", type=int, default=0, help="Listener port (default: any free port).")
@click.option("--junit", type=click.Path(dir_okay=False, path_type=Path), help="Write a JUnit XML report here.")
@click.option("--html", "html_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write a self-contained HTML report here.")
@click.option("--allow-changes", is_flag=True, help="Also run scenarios that change the partner's state "
              "(orders, jobs); each puts back what it changed.")
def conformance(target: str, auth_mode: str, token: str | None, token_url: str | None, client_id: str | None,
                client_secret: str | None, scope: str | None, buyer: str | None, apis: str | None,
                only: tuple[str, ...], mef_sdk: Path, profile: Path | None, listener_host: str, listener_port: int,
                junit: Path | None, html_path: Path | None, allow_changes: bool) -> None:  # fmt: skip
    """Test the Interlude (and Sonata) server at URL against MEF's definitions, as an SP would."""
    options = KitOptions(
        target=target, mef_sdk=mef_sdk, auth=_auth(auth_mode, token, token_url, client_id, client_secret, scope),
        buyer=buyer, apis=[a.strip() for a in apis.split(",") if a.strip()] if apis else (), profile=profile,
        listener_host=listener_host, listener_port=listener_port, allow_changes=allow_changes, only=only,
    )  # fmt: skip
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        console=console, transient=True)  # fmt: skip
    task = progress.add_task("discovering", total=None)

    def started(scenarios: list[Scenario]) -> None:
        progress.update(task, total=len(scenarios), description="scenarios")

    counts: Counter[Outcome] = Counter()

    def finished(result: ScenarioResult) -> None:
        outcome = result.outcome
        counts[outcome] += 1
        tally = " ".join(f"[{STYLE[o]}]{counts[o]} {o.value}[/]" for o in Outcome)
        progress.update(task, description=tally)
        line = f"[{STYLE[outcome]}]{outcome.value.upper():8}[/] {result.scenario.id}"
        if result.reason:
            line += f" [dim]{escape(result.reason[:150])}[/]"
        progress.console.print(line, highlight=False)
        progress.advance(task)

    try:
        with progress:
            run = asyncio.run(run_kit(options, started, finished))
    except ConfigError as exc:
        console.print(f"[bold red]error[/]: {exc}", markup=True, highlight=False)
        raise SystemExit(2) from None
    write_reports(run, junit, html_path)
    _summary(run)
    for path in (junit, html_path):
        if path is not None:
            console.print(f"report: {os.fspath(path)}")
    raise SystemExit(0 if run.ok else 1)
