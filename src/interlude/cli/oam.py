"""``interlude oam ...``: run Y.1731 / 802.1ag sessions from a namespace's interface, like ping does.

Examples (inside a lab; ``--netns`` may be omitted to use the current namespace)::

    interlude oam loopback  --netns lab-pe1 --interface eth1 --target 02:00:00:00:00:02 --count 5
    interlude oam delay     --netns lab-pe1 --interface eth1 --count 100 --interval 0.01 --json
    interlude oam delay     --netns lab-pe1 --interface eth1 --one-way --receiver-netns lab-pe2 \
                            --receiver-interface eth1 --count 100 --interval 0.01
    interlude oam loss      --netns lab-pe1 --interface eth1 --count 1000 --interval 0 --test-id 7
    interlude oam linktrace --netns lab-pe1 --interface eth1 --target 02:00:00:00:00:02
    interlude oam ccm       --netns lab-pe1 --interface eth1 --interval 1 --count 30 --remote-mep 2
    interlude oam responder --netns lab-pe2 --interface eth1 --mep-id 2 --ccm-interval 1

Without ``--target`` frames go to the level's CFM group address (01:80:C2:00:00:3y). ``--json`` prints one
object at the end with the result's fields (statistics from :mod:`interlude.domain.metrics`).
Exit status: 0 when at least one frame was answered (a linktrace reached its target), 1 otherwise, 2 on
errors (no such namespace/interface, no permission).
"""

from __future__ import annotations

import asyncio
import json
import math
import signal
import sys
from collections.abc import Callable
from typing import Any

import click

from interlude.cli.oam_ip import IP_COMMANDS
from interlude.domain import metrics
from interlude.domain.southbound import MepSpec, OamKind, OamRequest, OamResult
from interlude.errors import OamError
from interlude.oam.responder import run_responder
from interlude.oam.runner import run_oam_session, run_one_way_delay
from interlude.oam.sessions.base import Progress


def _common(func: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("--netns", help="network namespace holding the interface (default: the current one)"),
        click.option("--interface", "-I", required=True, help="interface the MEP sits on"),
        click.option("--level", type=click.IntRange(0, 7), default=3, show_default=True, help="MD/MEG level"),
        click.option("--vlan", type=click.IntRange(1, 4094), help="802.1Q VLAN id of the MEP (tagged frames)"),
        click.option("--mep-id", type=click.IntRange(1, 8191), default=1, show_default=True),
        click.option("--json", "as_json", is_flag=True, help="print one JSON object at the end"),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _session_options(func: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("--target", help="MAC of the remote MEP (default: the level's CFM group address)"),
        click.option("--count", "-c", type=click.IntRange(min=1), default=5, show_default=True),
        click.option(
            "--interval",
            "-i",
            type=click.FloatRange(min=0),
            default=1.0,
            show_default=True,
            help="seconds between frames; 0 = next frame as soon as the previous is answered",
        ),
        click.option(
            "--timeout",
            "-W",
            type=click.FloatRange(min=0.001),
            default=1.0,
            show_default=True,
            help="seconds to wait for the last reply",
        ),
        click.option(
            "--size",
            type=click.IntRange(64, 9000),
            default=64,
            show_default=True,
            help="frame size in bytes incl. FCS (padded with a Data TLV)",
        ),
        click.option("--priority", type=click.IntRange(0, 7), default=0, help="802.1p priority (tagged frames)"),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _fmt(value: float | None) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.1f}"


def _run(kind: OamKind, opts: dict[str, Any], test_id: int = 1, one_way: tuple[str | None, str] | None = None) -> None:
    mep = MepSpec(
        name="cli",
        node="cli",
        interface=opts["interface"],
        mep_id=opts["mep_id"],
        level=opts["level"],
        vlan=opts["vlan"],
    )
    request = OamRequest(
        kind=kind,
        mep=mep,
        target_mac=opts.get("target"),
        count=opts.get("count", 1),
        interval_s=opts.get("interval", 1.0),
        frame_size=opts.get("size", 64),
        priority=opts.get("priority", 0),
        timeout_s=opts.get("timeout", 1.0),
        test_id=test_id,
    )
    as_json = opts["as_json"]
    target = opts.get("target") or ("the receiver" if one_way else "CFM group address")
    labels = {
        OamKind.LOOPBACK: "LBR",
        OamKind.DELAY: "DMR",
        OamKind.SYNTHETIC_LOSS: "SLR",
        OamKind.LOSS: "LMR",
        OamKind.LINKTRACE: "LTR",
    }

    def live(progress: Progress) -> None:
        if as_json:
            return
        d = progress.details
        head = f"{labels[kind]} from {progress.source}:"
        if kind is OamKind.LOOPBACK:
            line = f"{head} seq={d['seq']} time={_fmt(progress.delay_us)} us"
        elif one_way is not None:
            line = f"1DM from {progress.source}: n={progress.index + 1} one-way fd={_fmt(progress.delay_us)} us"
        elif kind is OamKind.DELAY:
            line = (
                f"{head} n={progress.index + 1} fd={_fmt(progress.delay_us)} us "
                f"(rtt {_fmt(d['rtt_us'])} us, responder {_fmt(d['residence_us'])} us)"
            )
        elif kind is OamKind.LINKTRACE:
            line = (
                f"{head} ttl={d['ttl']} relay_action={d['relay_action']}"
                f"{' terminal MEP' if d['terminal'] else ''} time={_fmt(progress.delay_us)} us"
            )
        else:
            counters = " ".join(f"{k}={v}" for k, v in d.items())
            line = f"{head} n={progress.index + 1} {counters} time={_fmt(progress.delay_us)} us"
        click.echo(line)

    if not as_json:
        click.echo(
            f"{'one-way ' if one_way else ''}{kind.value} from {opts['interface']} to {target}, level {opts['level']}"
            f"{', vlan ' + str(opts['vlan']) if opts['vlan'] else ''}: {request.count} frame(s)"
        )
    try:
        if one_way is not None:
            result: OamResult = asyncio.run(
                run_one_way_delay(
                    request,
                    netns=opts["netns"],
                    interface=opts["interface"],
                    receiver_netns=one_way[0],
                    receiver_interface=one_way[1],
                    target_mac=opts.get("target"),
                    on_progress=live,
                )
            )
        else:
            result = asyncio.run(
                run_oam_session(
                    request,
                    netns=opts["netns"],
                    interface=opts["interface"],
                    target_mac=opts.get("target"),
                    on_progress=live,
                )
            )
    except KeyboardInterrupt:
        sys.exit(130)
    except OamError as exc:
        raise click.ClickException(str(exc)) from exc
    data = metrics.summary(result)
    if one_way is not None:
        data["one_way"] = True
    if as_json:
        click.echo(json.dumps(data))
    else:
        _print_summary(kind, target, result, data, one_way=one_way is not None)
    sys.exit(0 if result.received else 1)


def _print_summary(
    kind: OamKind, target: str, result: OamResult, data: dict[str, Any], *, one_way: bool = False
) -> None:
    click.echo(f"--- {'one-way ' if one_way else ''}{kind.value} to {target} ---")
    loss = metrics.frame_loss(result)
    click.echo(
        f"{result.sent} sent, {result.received} received, {loss.flr_ratio * 100:.1f}% loss, "
        f"{(result.ended_at - result.started_at) * 1000:.0f} ms"
    )
    stats = metrics.frame_delay(result)
    name = "rtt" if kind is not OamKind.DELAY else ("one-way fd" if one_way else "fd")
    if stats.count:
        click.echo(
            f"{name} min/median/p99/max = {stats.min_us:.1f}/{stats.median_us:.1f}/{stats.p99_us:.1f}/"
            f"{stats.max_us:.1f} us"
        )
    if kind is OamKind.DELAY and stats.count > 1:
        ifdv = metrics.inter_frame_delay_variation(result)
        click.echo(
            f"ifdv median/p99/max = {ifdv.median_us:.1f}/{ifdv.p99_us:.1f}/{ifdv.max_us:.1f} us, "
            f"fdr(p99) = {metrics.frame_delay_range_us(result):.1f} us"
        )
    if kind in (OamKind.SYNTHETIC_LOSS, OamKind.LOSS):
        click.echo(
            f"forward lost {result.forward_lost} (flr {data['flr_forward']}), "
            f"backward lost {result.backward_lost} (flr {data['flr_backward']})"
        )
    if kind is OamKind.LINKTRACE:
        for hop in result.hops:
            click.echo(f"  ttl {hop.ttl}  {hop.mac}  relay_action {hop.relay_action}")


@click.group("oam")
def oam_group() -> None:
    """Ethernet OAM (Y.1731 / 802.1ag) and IP service measurement (TWAMP-Light, STAMP, ICMP, throughput)."""


for _ip_command in IP_COMMANDS:
    oam_group.add_command(_ip_command)


@oam_group.command("loopback")
@_common
@_session_options
def loopback_cmd(**opts: Any) -> None:
    """LBM/LBR: reachability and round-trip time (like ping)."""
    _run(OamKind.LOOPBACK, opts)


@oam_group.command("delay")
@_common
@_session_options
@click.option("--one-way", is_flag=True, help="1DM one-way delay to a receiver this command runs (see below)")
@click.option("--receiver-netns", help="--one-way: namespace of the receiving interface (default: the current one)")
@click.option("--receiver-interface", help="--one-way: interface receiving the 1DMs (required with --one-way)")
def delay_cmd(one_way: bool, receiver_netns: str | None, receiver_interface: str | None, **opts: Any) -> None:
    """DMM/DMR: two-way frame delay with the responder's residence time removed, and IFDV.

    With --one-way: 1DM frames from --interface to --receiver-interface, received by this command itself, so
    both ends read the same clock (lab namespaces on one machine share it); the result is the one-way delay.
    """
    if not one_way:
        if receiver_netns or receiver_interface:
            raise click.UsageError("--receiver-netns / --receiver-interface need --one-way")
        _run(OamKind.DELAY, opts)
        return
    if not receiver_interface:
        raise click.UsageError("--one-way needs --receiver-interface (and --receiver-netns unless it is here)")
    _run(OamKind.DELAY, opts, one_way=(receiver_netns, receiver_interface))


@oam_group.command("loss")
@_common
@_session_options
@click.option("--test-id", type=int, default=1, show_default=True, help="SLM test id")
@click.option("--lmm", is_flag=True, help="single-ended LMM/LMR on frame counters instead of synthetic SLM")
def loss_cmd(test_id: int, lmm: bool, **opts: Any) -> None:
    """SLM/SLR synthetic loss (or LMM/LMR with --lmm): forward and backward frame loss."""
    _run(OamKind.LOSS if lmm else OamKind.SYNTHETIC_LOSS, opts, test_id=test_id)


@oam_group.command("linktrace")
@_common
@click.option("--target", required=True, help="MAC of the MEP to trace to")
@click.option("--timeout", "-W", type=click.FloatRange(min=0.001), default=2.0, show_default=True)
def linktrace_cmd(**opts: Any) -> None:
    """LTM/LTR: the MIPs and the MEP on the way to a target MAC."""
    opts["count"] = 1
    _run(OamKind.LINKTRACE, opts)


def _human(event: dict[str, Any]) -> str:
    """One CCM event as a line for people (``responder`` keeps JSON lines: labs parse them)."""
    kind = event["event"]
    if kind == "ready":
        return (f"MEP {event['mep_id']} on {event['interface']} ({event['mac']}), level {event['level']}"
                f"{', vlan ' + str(event['vlan']) if event['vlan'] else ''}: sending CCMs every "
                f"{event['ccm_interval_s']} s")
    text = {"loc": "loss of continuity", "loc-cleared": "continuity restored", "rdi": "remote defect (RDI)",
            "rdi-cleared": "RDI cleared", "new-mep": "new remote MEP", "mismerge": "CCM with another MEG ID",
            "unexpected-level": "CCM at a lower level", "ais": "AIS received (server layer failure)",
            "ais-cleared": "AIS cleared"}.get(kind, kind)
    detail = f" ({event['detail']})" if event.get("detail") else ""
    who = f"remote MEP {event['mep_id']}" if event.get("mep_id") is not None else "MEP"
    return f"{who}: {text}{detail}"


def _serve(
    opts: dict[str, Any],
    *,
    ccm_interval: float | None,
    duration_s: float | None,
    remote_meps: tuple[int, ...],
    meg_id: str,
    quiet_ready: bool = False,
    quiet_stop: bool = False,
    human: bool = False,
    send_ais: bool = False,
) -> dict[str, Any]:
    as_json = opts["as_json"]
    final: dict[str, Any] = {}

    def log(line: str) -> None:
        event = json.loads(line)
        final.setdefault("events", []).append(event)
        if as_json:
            return
        if (event["event"] == "ready" and quiet_ready) or (event["event"] == "stopped" and quiet_stop):
            return
        click.echo(_human(event) if human else line)

    async def main() -> None:
        stop = asyncio.Event()
        if duration_s is not None:
            asyncio.get_running_loop().call_later(duration_s, stop.set)
        await run_responder(
            netns=opts["netns"],
            interface=opts["interface"],
            level=opts["level"],
            mep_id=opts["mep_id"],
            vlan=opts["vlan"],
            meg_id=meg_id,
            ccm_interval_s=ccm_interval,
            remote_meps=remote_meps,
            state_file=None,
            stop=stop,
            log=log,
            send_ais=send_ais,
        )

    try:
        asyncio.run(main())
    except OamError as exc:
        raise click.ClickException(str(exc)) from exc
    return final


@oam_group.command("ccm")
@_common
@click.option(
    "--interval",
    "-i",
    type=click.FloatRange(min=0.0033),
    default=1.0,
    show_default=True,
    help="CCM interval in seconds",
)
@click.option(
    "--count", "-c", type=click.IntRange(min=1), default=10, show_default=True, help="run for this many intervals"
)
@click.option("--meg-id", default="interlude", show_default=True)
@click.option("--remote-mep", type=int, multiple=True, help="expected remote MEP id (repeatable)")
@click.option("--ais", is_flag=True, help="send AIS on level+1 (every 1 s) while a remote MEP is in LOC")
def ccm_cmd(interval: float, count: int, meg_id: str, remote_mep: tuple[int, ...], ais: bool, **opts: Any) -> None:
    """Send CCMs and report remote MEPs: loss of continuity (3.5 intervals), RDI, MEG mismerge."""
    final = _serve(
        opts,
        ccm_interval=interval,
        duration_s=interval * count,
        remote_meps=remote_mep,
        meg_id=meg_id,
        quiet_stop=True,
        human=True,
        send_ais=ais,
    )
    events = [e for e in final.get("events", []) if e["event"] not in ("ready", "stopped")]
    stopped = [e for e in final.get("events", []) if e["event"] == "stopped"]
    ccm = (stopped[-1].get("ccm") if stopped else None) or {}
    if opts["as_json"]:
        click.echo(json.dumps({"events": events, "ccm": ccm}))
    else:
        click.echo(
            f"--- ccm on {opts['interface']}: {len(events)} event(s) in {interval * count:.1f} s, "
            f"{ccm.get('ccm_sent', 0)} CCM sent ---"
        )
        for mep_id, remote in sorted(ccm.get("remotes", {}).items()):
            click.echo(
                f"  remote MEP {mep_id} {remote['mac'] or '?'}: received {remote['received']}, "
                f"{'LOC' if remote['loc'] else 'ok'}{', RDI' if remote['rdi'] else ''}"
            )
    sys.exit(0 if not any(e["event"] == "loc" for e in events) else 1)


@oam_group.command("responder")
@_common
@click.option("--meg-id", default="interlude", show_default=True)
@click.option("--ccm-interval", type=float, help="also send and check CCMs at this interval (seconds)")
@click.option("--remote-mep", type=int, multiple=True, help="expected remote MEP id (repeatable)")
@click.option("--ais", is_flag=True, help="with --ccm-interval: send AIS on level+1 while a remote MEP is in LOC")
def responder_cmd(
    meg_id: str, ccm_interval: float | None, remote_mep: tuple[int, ...], ais: bool, **opts: Any
) -> None:
    """Answer LBM, LTM, DMM, SLM and LMM on an interface until SIGTERM / Ctrl-C (exits 0)."""
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    _serve(opts, ccm_interval=ccm_interval, duration_s=None, remote_meps=remote_mep, meg_id=meg_id, send_ais=ais)

