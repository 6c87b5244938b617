"""Link plumbing at run time: delay relays and impairments (rate, loss, delay/jitter, link down) on lab wires.

Both ``Lab.up`` (initial impairments) and a running lab (``lab impair``, the lab adapter's
``ImpairmentControl``) change links through :func:`apply_impairment`, which may insert a relay into a live
link (:func:`insert_relay`) or signal a running one; the tc/nftables details (LAB-RECIPES: no netem) live
here, apart from building and tearing down the lab (:mod:`interlude.lab.builder`).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import threading
from pathlib import Path
from typing import Any

from interlude.errors import LabError, NotFoundError, ValidationError
from interlude.lab import shell
from interlude.lab.agents.base import pid_alive
from interlude.lab.processes import record_pid
from interlude.lab.relay import RelayConfig, start_relay, write_control
from interlude.lab.state import (
    LabState,
    PortRef,
    RelayState,
    WireState,
    process_start_time,
)
from interlude.topology.model import Impairment


def relay_spec(prefix: str, folder: Path, wire_id: str, short: str) -> RelayState:
    """Where the relay of a wire lives: namespace ``il<prefix>--<short>``, ports ``ra``/``rb``."""
    return RelayState(
        netns=f"il{prefix}--{short}",
        if_a="ra",
        if_b="rb",
        control=str(folder / "relays" / f"{wire_id}.json"),
        log=str(folder / "relays" / f"{wire_id}.log"),
    )


REALTIME_ENV = "INTERLUDE_LAB_RELAY_REALTIME"


def relay_realtime() -> bool:
    """Whether relays run SCHED_FIFO (``--realtime``): on unless ``$INTERLUDE_LAB_RELAY_REALTIME`` is ``0``.

    Measured with ``benchmarks/lab.py --relays 50`` (docs/labs.md, "Delay accuracy"): on a loaded 2-core box
    the FD p99 through a 5 ms relay drops from +4.1-4.8 ms to +0.5-2.2 ms, for ~3 % of one core more across
    49 relays (the relay does the same work; it runs when its deadline comes instead of queueing behind other
    processes). The kernel's RT throttling (``sched_rt_runtime_us``) still leaves normal tasks some CPU if a
    relay is flooded.
    """
    return os.environ.get(REALTIME_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def start_wire_relay(
    state: LabState, wire: WireState, imp: Impairment, *, lock: threading.Lock | None = None
) -> None:
    """Start the relay process of ``wire`` (its namespace and ports exist) and record its PID.

    ``lock`` serialises the state update when several relays start in parallel threads.
    """
    relay = wire.relay
    assert relay is not None
    for end in (wire.a, wire.b):  # LAB-RECIPES §1.5: relayed UDP/TCP needs tx checksums done in software
        shell.netns_exec(end.netns, ["ethtool", "-K", end.ifname, "tx", "off"], check=False)
    folder = Path(relay.control).parent / wire.id  # one folder per relay: start_relay names files by port
    try:
        agent = start_relay(
            relay.netns,
            folder,
            if_a=relay.if_a,
            if_b=relay.if_b,
            config=RelayConfig(delay_ms=imp.delay_ms, jitter_ms=imp.jitter_ms),
            realtime=relay_realtime(),
        )
    except (OSError, RuntimeError, TimeoutError, ValueError) as exc:
        raise LabError(f"delay relay of {wire.id} did not start: {exc}") from exc
    with lock or contextlib.nullcontext():
        relay.pid = agent.pid
        relay.control = str(agent.extra["control"])
        relay.log = agent.log
        record_pid(state, agent.pid)
        state.save()


def resolve_target(state: LabState, target: str) -> tuple[WireState, PortRef | None]:
    """``linkN`` / ``edgeN`` or ``NODE:IF`` -> (wire, the named end or None)."""
    for wire in state.wires:
        if wire.id == target:
            return wire, None
    if ":" in target:
        node, ifname = target.split(":", 1)
        return state.end_of(node, ifname)
    raise NotFoundError(f"{target!r} is neither a link id ({', '.join(w.id for w in state.wires)}) nor NODE:IF")


def impairment_dict(imp: Impairment) -> dict[str, Any]:
    """How a wire records its impairment in the state file (and ``lab status`` shows it)."""
    return imp.model_dump()


def _burst_bytes(rate_bps: float) -> int:
    """Bucket depth: 4 ms worth of the rate, never below two full frames (tbf drops larger frames)."""
    return max(int(rate_bps / 8 * 0.004), 2 * 1600)


def _set_rate(end: PortRef, rate_mbps: float | None) -> None:
    if rate_mbps is None:
        shell.tc_batch([f"qdisc del dev {end.ifname} root"], end.netns, force=True)
        return
    bps = rate_mbps * 1e6
    shell.tc_batch(
        [f"qdisc replace dev {end.ifname} root tbf rate {int(bps)}bit burst {_burst_bytes(bps)} latency 50ms"],
        end.netns,
    )


LOSS_MODULUS = 1_000_000_000
"""``numgen random mod`` of the loss rule: a resolution of 1e-7 %, enough for combined fault ratios."""


def check_impairment(imp: Impairment) -> None:
    """Refuse values the kernel tools cannot apply, with a :class:`ValidationError` naming the field.

    The model validates its own fields, but an :class:`Impairment` can be built without validation
    (``model_construct``, ``model_copy(update=...)``); an nft or tc error deep in ``apply_impairment`` would
    otherwise reach an API client as a 500.
    """
    bounds = {"delay_ms": (0.0, 10_000.0), "jitter_ms": (0.0, 10_000.0), "loss_percent": (0.0, 100.0)}
    for name, (low, high) in bounds.items():
        value = getattr(imp, name)
        if not isinstance(value, int | float) or not math.isfinite(value) or not low <= value <= high:
            raise ValidationError(f"{name} must be a number from {low:g} to {high:g}, got {value!r}", f"/{name}")
    rate = imp.rate_mbps
    if rate is not None and (not isinstance(rate, int | float) or not math.isfinite(rate) or rate <= 0):
        raise ValidationError(f"rate_mbps must be a positive number or null, got {rate!r}", "/rate_mbps")


def loss_rule(loss_percent: float) -> str | None:
    """The nftables statement dropping ``loss_percent`` % of non-ARP frames; None for no loss.

    ``numgen random mod N`` yields 0..N-1, so 100 % cannot be written as ``< N`` (nft refuses values
    outside the range): it is an unconditional drop instead.
    """
    if loss_percent >= 100:
        return "meta protocol != arp counter drop"
    threshold = round(loss_percent / 100 * LOSS_MODULUS)
    if threshold <= 0:
        return None
    return f"meta protocol != arp numgen random mod {LOSS_MODULUS} < {threshold} counter drop"


def _set_loss(state: LabState, end: PortRef, loss_percent: float) -> None:
    """Drop (nftables netdev ingress) of ``loss_percent`` of the frames arriving on ``end`` (ARP spared)."""
    table = f"il{state.prefix}"
    chain = f"in_{end.ifname}".replace(".", "_").replace("-", "_")
    script = [
        f"add table netdev {table}",
        f"add chain netdev {table} {chain} "
        f'{{ type filter hook ingress device "{end.ifname}" priority 0; policy accept; }}',
        f"flush chain netdev {table} {chain}",
    ]
    rule = loss_rule(loss_percent)
    if rule is not None:
        script.append(f"add rule netdev {table} {chain} {rule}")
    shell.nft(end.netns, "\n".join(script) + "\n")


def _signal_relay(state: LabState, relay: RelayState, imp: Impairment) -> None:
    write_control(Path(relay.control), RelayConfig(delay_ms=imp.delay_ms, jitter_ms=imp.jitter_ms))
    if relay.pid is None or not pid_alive(relay.pid):
        raise LabError(f"the delay relay in {relay.netns} is not running (see {relay.log})")
    recorded = state.pids.get(str(relay.pid))
    if recorded is not None and process_start_time(relay.pid) != recorded:
        raise LabError(f"the delay relay in {relay.netns} is gone (PID {relay.pid} was reused)")
    os.kill(relay.pid, signal.SIGHUP)


def apply_impairment(
    state: LabState, wire: WireState, imp: Impairment, *, near: PortRef | None = None, fresh: bool = False
) -> None:
    """Make the kernel match ``imp`` on ``wire`` (rate, loss, delay/jitter, down) and record it.

    ``fresh`` says the wire carries no impairment yet (just built; its relay already runs with the
    delay). A link built without a relay that is asked for delay gets one inserted at run time (its two
    veth ends are recreated with the same names; MTU, MAC, bridge membership and admin state are restored).
    """
    check_impairment(imp)
    old = Impairment() if fresh else Impairment(**wire.impairment) if wire.impairment else Impairment()
    if (imp.delay_ms > 0 or imp.jitter_ms > 0) and wire.relay is None:
        insert_relay(state, wire, imp)
        old = Impairment(delay_ms=imp.delay_ms, jitter_ms=imp.jitter_ms)
    delay_changed = (old.delay_ms, old.jitter_ms) != (imp.delay_ms, imp.jitter_ms)
    if wire.relay is not None and delay_changed and not fresh:
        _signal_relay(state, wire.relay, imp)
    if imp.rate_mbps != old.rate_mbps:
        for end in (wire.a, wire.b):
            _set_rate(end, imp.rate_mbps)
    if imp.loss_percent != old.loss_percent:
        for end in (wire.a, wire.b):
            _set_loss(state, end, imp.loss_percent)
    if imp.down and not wire.cut:
        if wire.relay is not None:
            cut = [[wire.relay.netns, wire.relay.if_a], [wire.relay.netns, wire.relay.if_b]]
        else:
            far = wire.b if near is None or near is wire.a else wire.a
            cut = [[far.netns, far.ifname]]
        wire.cut = cut
        state.save()
        for ns, ifname in cut:
            shell.ip_batch([f"link set {ifname} down"], ns)
    elif not imp.down and wire.cut:
        for ns, ifname in wire.cut:
            shell.ip_batch([f"link set {ifname} up"], ns)
        wire.cut = []
    wire.impairment = impairment_dict(imp)


def insert_relay(state: LabState, wire: WireState, imp: Impairment) -> None:
    """Put a delay relay namespace in the middle of an existing veth link, at run time."""
    short = f"r{wire.link_index}" if wire.link_index is not None else f"r{wire.id}"
    relay = relay_spec(state.prefix, Path(state.state_dir), wire.id, short)
    snapshot: dict[tuple[str, str], dict[str, Any]] = {}
    addresses: dict[tuple[str, str], list[str]] = {}
    for end in (wire.a, wire.b):
        info = json.loads(shell.run(["ip", "-n", end.netns, "-j", "link", "show", "dev", end.ifname]) or "[]")
        snapshot[(end.netns, end.ifname)] = info[0] if info else {}
        addr_info = json.loads(shell.run(["ip", "-n", end.netns, "-j", "addr", "show", "dev", end.ifname]) or "[]")
        addresses[(end.netns, end.ifname)] = [
            f"{a['local']}/{a['prefixlen']}"
            for entry in addr_info
            for a in entry.get("addr_info", [])
            if a.get("scope") != "link"
        ]
    if relay.netns not in state.namespaces:
        state.namespaces.append(relay.netns)
    wire.relay = relay
    state.save()
    shell.ip_batch([f"netns add {relay.netns}"])
    shell.ip_batch([f"link del {wire.a.ifname}"], wire.a.netns)
    shell.ip_batch(
        [
            f"link add {wire.a.ifname} netns {wire.a.netns} type veth peer name {relay.if_a} netns {relay.netns}",
            f"link add {wire.b.ifname} netns {wire.b.netns} type veth peer name {relay.if_b} netns {relay.netns}",
        ]
    )
    shell.ip_batch(["link set lo up", f"link set {relay.if_a} up", f"link set {relay.if_b} up"], relay.netns)
    for end in (wire.a, wire.b):
        info = snapshot[(end.netns, end.ifname)]
        lines = []
        if info.get("mtu"):
            lines.append(f"link set {end.ifname} mtu {info['mtu']}")
        if info.get("address"):
            lines.append(f"link set {end.ifname} address {info['address']}")
        if info.get("master"):
            lines.append(f"link set {end.ifname} master {info['master']}")
        lines += [f"addr add {cidr} dev {end.ifname}" for cidr in addresses[(end.netns, end.ifname)]]
        if "UP" in info.get("flags", []):
            lines.append(f"link set {end.ifname} up")
        shell.ip_batch(lines, end.netns)
    start_wire_relay(state, wire, imp)
