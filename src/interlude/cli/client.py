"""``interlude client ...``: a running partner from the Service Provider's side, on the command line.

Built on :class:`interlude.sp.client.InterludeClient`. Every command prints a table (or, with ``--json``, the
partner's JSON as it came) and waits for what it asks where the API answers later: ``lock``/``unlock``/
``bandwidth``/``vlans`` print the order once it is final (``--no-wait`` only places it), ``test ... --wait``
prints the result once measured, ``alarms --watch`` keeps printing new and changed alarms. The partner and the
caller come from ``--url`` / ``--buyer`` / ``--token`` or ``INTERLUDE_URL`` / ``INTERLUDE_BUYER`` /
``INTERLUDE_TOKEN``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp
import click
from rich.table import Table

from interlude.cli.output import make_console
from interlude.sp.client import NOTIFYING_APIS, ApiError, InterludeClient, JsonObject, WaitTimeout
from interlude.sp.listener import SpListener

console = make_console()
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Target:
    """Where and as whom the commands talk, and how they print."""

    url: str
    buyer: str | None
    token: str | None
    as_json: bool


def _run(ctx: click.Context, call: Callable[[InterludeClient], Awaitable[T]]) -> T:
    target: Target = ctx.obj

    async def go() -> T:
        async with InterludeClient(target.url, buyer=target.buyer, token=target.token) as client:
            return await call(client)

    try:
        return asyncio.run(go())
    except ApiError as exc:
        console.print(f"[red]error[/red]: {exc}")
        raise SystemExit(1) from None
    except WaitTimeout as exc:
        console.print(f"[red]timeout[/red]: {exc}")
        raise SystemExit(2) from None
    except (aiohttp.ClientError, OSError) as exc:
        console.print(f"[red]error[/red]: cannot reach the partner at {target.url}: {exc}")
        raise SystemExit(1) from None


def _show(ctx: click.Context, data: Any, columns: Sequence[tuple[str, Callable[[JsonObject], Any]]],
          title: str | None = None) -> None:  # fmt: skip
    if ctx.obj.as_json:
        click.echo(json.dumps(data, indent=2))
        return
    rows = data if isinstance(data, list) else [data]
    table = Table(title=title, header_style="bold")
    for name, _ in columns:
        table.add_column(name)
    for row in rows:
        table.add_row(*("" if (v := get(row)) is None else str(v) for _, get in columns))
    console.print(table)


def _dig(*keys: str) -> Callable[[JsonObject], Any]:
    def get(obj: JsonObject) -> Any:
        value: Any = obj
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        return value

    return get


SERVICE_COLUMNS = [("id", _dig("id")), ("type", _dig("serviceType")), ("state", _dig("state")),
                   ("operational", _dig("serviceConfiguration", "operationalState", "state")),
                   ("administrative", _dig("serviceConfiguration", "administrativeState", "state"))]  # fmt: skip
ORDER_COLUMNS = [("id", _dig("id")), ("state", _dig("state")), ("externalId", _dig("externalId")),
                 ("items", lambda o: ", ".join(f"{i.get('id')}:{i.get('action')}:{i.get('state')}"
                                               for i in o.get("serviceOrderItem", [])))]  # fmt: skip
ALARM_COLUMNS = [("id", _dig("id")), ("state", _dig("state")), ("severity", _dig("perceivedSeverity")),
                 ("type", _dig("alarmType")), ("raised", _dig("alarmRaisedTime")),
                 ("affected services", lambda a: ", ".join(str(s.get("id")) for s in a.get("affectedService") or []))]

FAULT_COLUMNS = [("id", _dig("id")), ("type", _dig("type")), ("node", _dig("node")), ("interface", _dig("interface"))]


@click.group("client")
@click.option("--url", envvar="INTERLUDE_URL", default="http://127.0.0.1:8080", show_default=True,
              help="The partner (env INTERLUDE_URL).")
@click.option("--buyer", envvar="INTERLUDE_BUYER", default=None,
              help="Act as this buyer (X-Interlude-Buyer; env INTERLUDE_BUYER). None: the operator's view.")
@click.option("--token", envvar="INTERLUDE_TOKEN", default=None, help="Bearer token (env INTERLUDE_TOKEN).")
@click.option("--json", "as_json", is_flag=True, help="Print the partner's JSON instead of tables.")
@click.pass_context
def client_group(ctx: click.Context, url: str, buyer: str | None, token: str | None, as_json: bool) -> None:
    """Talk to a running partner as a Service Provider (or its operator)."""
    ctx.obj = Target(url, buyer, token, as_json)


@client_group.command("services")
@click.option("--state", default=None, help="Only services in this state (active, inactive, terminated...).")
@click.pass_context
def services(ctx: click.Context, state: str | None) -> None:
    """The buyer's services with their live state."""
    _show(ctx, _run(ctx, lambda c: c.services(state=state)), SERVICE_COLUMNS)


@client_group.command("service")
@click.argument("service_id")
@click.pass_context
def service(ctx: click.Context, service_id: str) -> None:
    """One service (its whole MEF payload with --json)."""
    _show(ctx, _run(ctx, lambda c: c.service(service_id)), SERVICE_COLUMNS)


@client_group.command("orders")
@click.pass_context
def orders(ctx: click.Context) -> None:
    """The buyer's orders, newest first."""
    _show(ctx, _run(ctx, lambda c: c.orders()), ORDER_COLUMNS)


def _order_command(ctx: click.Context, place: Callable[[InterludeClient], Awaitable[JsonObject]], wait: bool) -> None:
    async def go(client: InterludeClient) -> JsonObject:
        created = await place(client)
        return await client.wait_for_order(str(created["id"])) if wait else created

    order = _run(ctx, go)
    _show(ctx, order, ORDER_COLUMNS)
    if order.get("state") in ("failed", "partial", "rejected"):
        raise SystemExit(1)


_wait = click.option("--wait/--no-wait", default=True, show_default=True, help="Wait for the order's outcome.")


@client_group.command("lock")
@click.argument("uni_id")
@_wait
@click.pass_context
def lock(ctx: click.Context, uni_id: str, wait: bool) -> None:
    """Lock a UNI: its port goes down, the services on it become DISABLED."""
    _order_command(ctx, lambda c: c.lock(uni_id), wait)


@client_group.command("unlock")
@click.argument("uni_id")
@_wait
@click.pass_context
def unlock(ctx: click.Context, uni_id: str, wait: bool) -> None:
    """Unlock a UNI."""
    _order_command(ctx, lambda c: c.unlock(uni_id), wait)


@client_group.command("bandwidth")
@click.argument("end_point_id")
@click.argument("cir_mbps", type=float)
@_wait
@click.pass_context
def bandwidth(ctx: click.Context, end_point_id: str, cir_mbps: float, wait: bool) -> None:
    """Change the ingress CIR (Mbit/s) at an OVC end point, e.g. ``bandwidth ovc-1001-uni 250``."""
    _order_command(ctx, lambda c: c.set_bandwidth(end_point_id, cir_mbps), wait)


@client_group.command("vlans")
@click.argument("end_point_id")
@click.argument("vlans", nargs=-1, type=int, required=True)
@_wait
@click.pass_context
def vlans(ctx: click.Context, end_point_id: str, vlans: tuple[int, ...], wait: bool) -> None:
    """Change the CE-VLAN map of a UNI end point, e.g. ``vlans ovc-1001-uni 100 101``."""
    _order_command(ctx, lambda c: c.set_vlans(end_point_id, vlans), wait)


@client_group.command("delete")
@click.argument("service_id")
@_wait
@click.pass_context
def delete(ctx: click.Context, service_id: str, wait: bool) -> None:
    """Order a service's deletion."""
    _order_command(ctx, lambda c: c.delete_service(service_id), wait)


@client_group.command("test")
@click.argument("test_type", type=click.Choice(["delay", "loopback", "syntheticLoss", "serviceActivation"]))
@click.argument("service_id")
@click.option("--frames", default=100, show_default=True, help="Frames to send.")
@click.option("--interval-ms", default=10, show_default=True, help="Time between frames.")
@click.option("--wait", is_flag=True, help="Wait for the result and print it.")
@click.pass_context
def test(ctx: click.Context, test_type: str, service_id: str, frames: int, interval_ms: int, wait: bool) -> None:
    """Run a Service Function Test on a service, e.g. ``test delay ovc-1001 --wait``."""

    async def go(client: InterludeClient) -> JsonObject:
        job = await client.create_test_job(service_id, test_type, frame_count=frames, interval_ms=interval_ms)
        return await client.wait_for_result(str(job["id"])) if wait else job

    found = _run(ctx, go)
    if not wait:
        _show(ctx, found, [("test job", _dig("id")), ("state", _dig("state"))])
        return
    result = _dig("serviceSpecificTestResultConfiguration")
    _show(ctx, found, [
        ("result", _dig("id")), ("verdict", lambda r: (result(r) or {}).get("verdict")),
        ("two-way delay median (µs)", lambda r: ((result(r) or {}).get("twoWayFrameDelay") or {}).get("median")),
        ("one-way estimate median (µs)",
         lambda r: ((result(r) or {}).get("oneWayFrameDelayEstimate") or {}).get("median")),
        ("frame loss ratio", lambda r: (result(r) or {}).get("frameLossRatio")),
    ])  # fmt: skip


@client_group.command("pm")
@click.argument("service_id")
@click.option("--every", "granularity_s", default=5, show_default=True, help="Measurement interval, seconds.")
@click.option("--wait", is_flag=True, help="Wait for the first completed report and print its measurements.")
@click.pass_context
def pm(ctx: click.Context, service_id: str, granularity_s: int, wait: bool) -> None:
    """Start a proactive PM job on a service, e.g. ``pm ovc-1001 --every 1 --wait``."""

    async def go(client: InterludeClient) -> JsonObject:
        job = await client.create_pm_job(service_id, granularity_s=granularity_s, buyer_job_id=f"cli-{service_id}")
        return await client.wait_for_report(str(job["id"]), timeout_s=max(60.0, 4 * granularity_s)) if wait else job

    found = _run(ctx, go)
    if not wait:
        _show(ctx, found, [("performance job", _dig("id")), ("state", _dig("state"))])
        return
    rows = [data for content in found.get("reportContent") or [] for item in content.get("reportContentItem") or []
            for data in item.get("measurementData") or []]
    if ctx.obj.as_json:
        click.echo(json.dumps(found, indent=2))
        return
    _show(ctx, rows, [
        ("measured", lambda r: (str(r.get("@type", "")).split(":") + [""] * 4)[3]),
        ("from", _dig("fromEndPoint")), ("to", _dig("toEndPoint")),
        ("two-way FD mean (ms)", _dig("twoWayFrameDelay", "mean")),
        ("FLR forward (%)", _dig("oneWayFrameLossRatio", "forward")),
        ("suspect", _dig("suspectFlag")), ("interface", _dig("interface")), ("in octets", _dig("inOctets")),
    ], title=f"report {found.get('id')} ({found.get('state')})")  # fmt: skip


@client_group.command("alarms")
@click.option("--state", default=None, help="unAcknowledged, acknowledged or cleared.")
@click.option("--watch", is_flag=True, help="Keep printing alarms that appear or change (Ctrl-C stops).")
@click.option("--every", default=1.0, show_default=True, help="Seconds between looks with --watch.")
@click.pass_context
def alarms(ctx: click.Context, state: str | None, watch: bool, every: float) -> None:
    """Alarms on the buyer's services."""
    if not watch:
        _show(ctx, _run(ctx, lambda c: c.alarms(state=state)), ALARM_COLUMNS)
        return

    async def follow(client: InterludeClient) -> None:
        seen: dict[str, str] = {}
        while True:
            for alarm in reversed(await client.alarms(state=state)):
                key = f"{alarm.get('state')}|{alarm.get('alarmChangedTime')}"
                if seen.get(str(alarm["id"])) != key:
                    seen[str(alarm["id"])] = key
                    _show(ctx, alarm, ALARM_COLUMNS) if ctx.obj.as_json else console.print(
                        f"{alarm.get('alarmChangedTime') or alarm.get('alarmRaisedTime')}  {alarm['id']}  "
                        f"{alarm.get('state')}  {alarm.get('perceivedSeverity')}  {alarm.get('alarmType')}"
                    )
            await asyncio.sleep(every)

    with contextlib.suppress(KeyboardInterrupt):
        _run(ctx, follow)


@client_group.command("ack")
@click.argument("alarm_id")
@click.pass_context
def ack(ctx: click.Context, alarm_id: str) -> None:
    """Acknowledge an alarm."""
    _show(ctx, _run(ctx, lambda c: c.acknowledge_alarm(alarm_id)), ALARM_COLUMNS)


@client_group.command("clear-alarm")
@click.argument("alarm_id")
@click.pass_context
def clear_alarm(ctx: click.Context, alarm_id: str) -> None:
    """Clear an alarm by hand (its cause may persist)."""
    _show(ctx, _run(ctx, lambda c: c.clear_alarm(alarm_id)), ALARM_COLUMNS)


@client_group.command("listen")
@click.option("--api", "apis", multiple=True, type=click.Choice(sorted(NOTIFYING_APIS)),
              help="An API whose hub to register on (repeatable; default: every one).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address the partner reaches the listener at.")
@click.option("--port", default=0, show_default=True, help="Listener port (0: any free one).")
@click.pass_context
def listen(ctx: click.Context, apis: tuple[str, ...], host: str, port: int) -> None:
    """Receive the partner's notifications and print each one (registers on the hubs; Ctrl-C unregisters)."""

    async def go(client: InterludeClient) -> None:
        async with SpListener(host, port) as sp:
            registered = [(api, (await client.register_listener(api, sp.url))["id"]) for api in apis or NOTIFYING_APIS]
            console.print(f"listening at {sp.url} for {', '.join(api for api, _ in registered)} (Ctrl-C stops)")
            try:
                seen = 0
                while True:
                    with contextlib.suppress(TimeoutError):
                        await sp.wait_for(lambda _: True, timeout=3600, count=seen + 1)
                    for event in sp.events[seen:]:
                        if ctx.obj.as_json:
                            click.echo(json.dumps(event.body))
                        else:
                            console.print(f"{event.body.get('eventTime', '')}  {event.event_type}  "
                                          f"{json.dumps(event.body.get('event', {}), separators=(',', ':'))[:160]}")
                    seen = len(sp.events)
            finally:
                for api, sub_id in registered:
                    with contextlib.suppress(ApiError, aiohttp.ClientError):
                        await asyncio.shield(client.unregister_listener(api, str(sub_id)))

    with contextlib.suppress(KeyboardInterrupt):
        _run(ctx, go)


@client_group.command("topology")
@click.pass_context
def topology(ctx: click.Context) -> None:
    """Every port with its live state (operator)."""
    data = _run(ctx, lambda c: c.topology())
    if ctx.obj.as_json:
        click.echo(json.dumps(data, indent=2))
        return
    ports = [{"node": n["name"], **i} for n in data["nodes"] for i in n["interfaces"]]
    _show(ctx, ports, [("node", _dig("node")), ("port", _dig("name")), ("role", _dig("role")),
                       ("admin", _dig("adminState")), ("oper", _dig("operState"))])  # fmt: skip


@client_group.command("faults")
@click.pass_context
def faults(ctx: click.Context) -> None:
    """Injected faults in force (operator)."""
    _show(ctx, _run(ctx, lambda c: c.faults()), FAULT_COLUMNS)


@client_group.command("fault")
@click.argument("fault_type", type=click.Choice(["linkDown", "delay", "loss", "jitter"]))
@click.argument("port", metavar="NODE:INTERFACE")
@click.option("--ms", type=float, default=None, help="delayMs (delay) or jitterMs (jitter).")
@click.option("--percent", type=float, default=None, help="lossPercent (loss).")
@click.pass_context
def fault(ctx: click.Context, fault_type: str, port: str, ms: float | None, percent: float | None) -> None:
    """Inject a fault (operator), e.g. ``fault linkDown pe1:up1`` or ``fault delay pe1:up1 --ms 5``."""
    node, _, interface = port.partition(":")
    values = {"delay": {"delayMs": ms}, "jitter": {"jitterMs": ms}, "loss": {"lossPercent": percent}}
    given = {k: v for k, v in values.get(fault_type, {}).items() if v is not None}
    _show(ctx, _run(ctx, lambda c: c.inject_fault(node, interface, fault_type, **given)), FAULT_COLUMNS)


@client_group.command("clear")
@click.argument("fault_id")
@click.pass_context
def clear(ctx: click.Context, fault_id: str) -> None:
    """Clear an injected fault (operator)."""
    _run(ctx, lambda c: c.clear_fault(fault_id))
    console.print(f"cleared {fault_id}")
