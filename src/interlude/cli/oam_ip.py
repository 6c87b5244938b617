"""``interlude oam reflector|twamp|stamp|icmp|throughput``: IP service measurement from a namespace.

Examples (inside a lab; ``--netns`` may be omitted to use the current namespace)::

    interlude oam reflector  --netns lab-ce2 [--port 862]
    interlude oam stamp      --netns lab-ce1 --target 10.0.0.2 --count 100 --interval 0.01 --json
    interlude oam twamp      --netns lab-ce1 --target fd00::2 --count 100 --interval 0.01 --dscp 46 --size 128
    interlude oam icmp       --netns lab-ce1 --target 10.0.0.2 --count 10 --interval 0.2
    interlude oam throughput --netns lab-ce1 --target 10.0.0.2 --rate 10 --duration 2 --json

``--json`` prints one object at the end: ``sent``, ``received``, ``loss_ratio``, ``loss_forward`` and
``loss_backward`` (null where the protocol cannot tell the directions apart: ICMP), ``rtt_us`` {``min``,
``median``, ``p99``, ``max``, ...} (two-way delay, the reflector's residence time removed), ``ipdv_us``,
``delay_range_us`` and, with ``--shared-clock`` (both ends read one clock, as lab namespaces on one host
do), the one-way figures under ``one_way``. Exit status: 0 when at least one packet came back (throughput:
when the committed rate was verified), 1 otherwise, 2 on errors.
"""

from __future__ import annotations

import json
import signal
import sys
from collections.abc import Callable
from typing import Any, NoReturn

import click

from interlude.domain.ipsls import IpProbeResult, IpProtocol, summary
from interlude.errors import OamError
from interlude.oam.ip import codec
from interlude.oam.ip.icmp import EchoSession, run_echo
from interlude.oam.ip.reflector import open_reflector
from interlude.oam.ip.throughput import DEFAULT_SIZE, run_throughput
from interlude.oam.ip.udp import DEFAULT_PORT, run_probe, session_for


def _fail(exc: Exception) -> NoReturn:
    """Errors (no such namespace, bad address, no permission) exit 2, as the module docstring says."""
    click.echo(f"Error: {exc}", err=True)
    sys.exit(2)


def _probe_options(func: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("--netns", help="network namespace to send from (default: the current one)"),
        click.option("--target", required=True, help="IPv4 or IPv6 address of the far end"),
        click.option("--count", "-c", type=click.IntRange(min=1), default=5, show_default=True),
        click.option("--interval", "-i", type=click.FloatRange(min=0), default=1.0, show_default=True,
                     help="seconds between packets; 0 = next packet as soon as the previous is answered"),
        click.option("--timeout", "-W", type=click.FloatRange(min=0.001), default=1.0, show_default=True,
                     help="seconds to wait for the last reply"),
        click.option("--dscp", type=click.IntRange(0, 63), default=0, show_default=True),
        click.option("--json", "as_json", is_flag=True, help="print one JSON object at the end"),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _report(result: IpProbeResult, as_json: bool) -> None:
    data = summary(result)
    if as_json:
        click.echo(json.dumps(data))
    else:
        rtt = data["rtt_us"]
        assert isinstance(rtt, dict)
        click.echo(f"--- {result.protocol.value} to {result.target} ---")
        loss = data["loss_ratio"] or 0.0
        assert isinstance(loss, float)
        click.echo(f"{result.sent} sent, {result.received} received, {loss * 100:.1f}% loss"
                   + (f" (forward {data['forward_lost']}, backward {data['backward_lost']})"
                      if data["forward_lost"] is not None else ""))
        if rtt["count"]:
            click.echo(f"rtt min/median/p99/max = {rtt['min']}/{rtt['median']}/{rtt['p99']}/{rtt['max']} us")
    sys.exit(0 if result.received else 1)


def _udp(protocol: IpProtocol, opts: dict[str, Any]) -> None:
    session = session_for(protocol, target=opts["target"], port=opts["port"], count=opts["count"],
                          interval_s=opts["interval"], timeout_s=opts["timeout"], size=opts["size"],
                          dscp=opts["dscp"], clocks_shared=opts["shared_clock"])
    try:
        result = run_probe(session, opts["netns"], opts["target"], opts["port"])
    except KeyboardInterrupt:
        sys.exit(130)
    except OamError as exc:
        _fail(exc)
    _report(result, opts["as_json"])


def _udp_options(func: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("--port", "-p", type=click.IntRange(1, 65535), default=DEFAULT_PORT, show_default=True,
                     help="the reflector's UDP port"),
        click.option("--size", type=click.IntRange(codec.MIN_SIZE, codec.MAX_SIZE), default=codec.MIN_SIZE,
                     show_default=True, help="test packet (UDP payload) bytes"),
        click.option("--shared-clock", is_flag=True,
                     help="both ends read the same clock (lab): report one-way delays too"),
    ]
    for option in reversed(options):
        func = option(func)
    return func


@click.command("twamp")
@_probe_options
@_udp_options
def twamp_cmd(**opts: Any) -> None:
    """TWAMP-Light to a reflector (RFC 5357 Appendix I): two-way delay, IPDV, loss by direction."""
    _udp(IpProtocol.TWAMP, opts)


@click.command("stamp")
@_probe_options
@_udp_options
def stamp_cmd(**opts: Any) -> None:
    """STAMP (RFC 8762) to a reflector: two-way delay, IPDV, loss by direction."""
    _udp(IpProtocol.STAMP, opts)


@click.command("icmp")
@_probe_options
@click.option("--size", type=click.IntRange(16, 9000), default=64, show_default=True, help="ICMP message bytes")
def icmp_cmd(**opts: Any) -> None:
    """ICMP echo (no reflector needed): round-trip time and loss without direction."""
    session = EchoSession(target=opts["target"], count=opts["count"], interval_ns=int(opts["interval"] * 1e9),
                          timeout_ns=int(opts["timeout"] * 1e9), size=opts["size"], dscp=opts["dscp"])
    try:
        result = run_echo(session, opts["netns"])
    except KeyboardInterrupt:
        sys.exit(130)
    except OamError as exc:
        _fail(exc)
    _report(result, opts["as_json"])


@click.command("throughput")
@click.option("--netns", help="network namespace to send from (default: the current one)")
@click.option("--target", required=True, help="address of a reflector")
@click.option("--port", "-p", type=click.IntRange(1, 65535), default=DEFAULT_PORT, show_default=True)
@click.option("--rate", type=click.FloatRange(min=0.001), required=True, help="committed rate, Mbit/s (IP layer)")
@click.option("--step", "steps", type=click.FloatRange(min=0.01), multiple=True,
              help="step as a multiple of --rate (repeatable; default 0.5, 1, 1.25)")
@click.option("--duration", type=click.FloatRange(min=0.1), default=2.0, show_default=True, help="seconds per step")
@click.option("--size", type=click.IntRange(codec.MIN_SIZE, codec.MAX_SIZE), default=DEFAULT_SIZE,
              show_default=True, help="test packet (UDP payload) bytes")
@click.option("--dscp", type=click.IntRange(0, 63), default=0, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def throughput_cmd(netns: str | None, target: str, port: int, rate: float, steps: tuple[float, ...],
                   duration: float, size: int, dscp: int, as_json: bool) -> None:
    """Verify a committed rate: UDP steps at and above it; achieved rate, loss and delay per step."""
    try:
        result = run_throughput(netns, target, port, rate_mbps=rate, steps=steps or (0.5, 1.0, 1.25),
                                duration_s=duration, size=size, dscp=dscp)
    except KeyboardInterrupt:
        sys.exit(130)
    except (OamError, ValueError) as exc:
        _fail(exc)
    if as_json:
        click.echo(json.dumps(result.to_json()))
    else:
        click.echo(f"--- throughput to {target}, committed {rate} Mbit/s ---")
        for step in result.steps:
            click.echo(f"{step.ratio * 100:5.0f}%  offered {step.offered_mbps:.2f}  achieved "
                       f"{step.achieved_mbps or 0:.2f} Mbit/s  loss {step.loss_ratio * 100:.2f}%  "
                       f"rtt median {step.rtt_us['median']} us")
        click.echo(f"verified: {result.verified}")
    sys.exit(0 if result.verified else 1)


@click.command("reflector")
@click.option("--netns", help="network namespace to serve in (default: the current one)")
@click.option("--address", help="bind address (default: every IPv4 and IPv6 address)")
@click.option("--port", "-p", type=click.IntRange(0, 65535), default=DEFAULT_PORT, show_default=True,
              help="UDP port (0: a free one, printed)")
def reflector_cmd(netns: str | None, address: str | None, port: int) -> None:
    """Reflect TWAMP-Light / STAMP test packets until SIGTERM / Ctrl-C (exits 0, prints its counters)."""
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    try:
        reflector = open_reflector(netns, address, port)
    except OamError as exc:
        _fail(exc)
    signal.signal(signal.SIGTERM, lambda *_: reflector.stop())
    signal.signal(signal.SIGINT, lambda *_: reflector.stop())
    click.echo(json.dumps({"event": "ready", "port": reflector.port, "address": address, "netns": netns}))
    sys.stdout.flush()
    try:
        stats = reflector.run()
    finally:
        reflector.close()
    click.echo(json.dumps({"event": "stopped", **stats.to_json()}))


IP_COMMANDS = (reflector_cmd, twamp_cmd, stamp_cmd, icmp_cmd, throughput_cmd)
"""The IP measurement commands, added to the ``oam`` group."""
