"""MEF 61.1 IP service performance metrics (as MEF 139's SLS names them), computed from raw probe results.

Pure functions over :class:`IpProbeResult`, the record a TWAMP-Light / STAMP / ICMP session produces. Units
are in the names (``_us`` microseconds, ``_ratio`` a fraction in ``[0, 1]``).

Per packet a two-way probe knows four times: T1 sender transmit, T2 reflector receive, T3 reflector
transmit, T4 sender receive. From them:

* **two-way packet delay** ``(T4 - T1) - (T3 - T2)``: the reflector's residence time removed, valid whatever
  the two clocks are (ICMP echo has no T2/T3: the plain round trip);
* **one-way packet delay** ``T2 - T1`` (forward) and ``T4 - T3`` (backward): only meaningful when both ends
  read the same clock, which a result says in ``clocks_shared`` (lab namespaces on one host do) and every
  payload repeats; otherwise one-way figures are ``None``;
* **inter-packet delay variation (IPDV)** ``|d(i+1) - d(i)|`` for pairs of packets sent one interval apart
  (consecutive sequence numbers, both delivered; MEF 61.1 §10.9.6 pairs packets a fixed Δt apart);
* **packet delay range** ``d(p) - d(min)`` (MEF 61.1 §10.9.7), **mean packet delay** and **packet delay
  percentile**;
* **packet loss ratio** lost / sent; with a stateful reflector (its own sequence counter, RFC 8762 §4.3.1)
  loss is split into forward and backward; with ICMP or a stateless reflector the split is ``None``;
* **service uptime** (MEF 61.1 §10.9.9) from per-interval loss with the sliding-window rule of
  :func:`interlude.domain.metrics.availability`.

:func:`evaluate` judges a result against SLS objectives (metric, percentile, threshold): the verdict an SFT
test or a PM threshold uses.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from interlude.domain.metrics import AvailabilityStats, DelayStats, availability, delay_stats, percentile


class IpProtocol(StrEnum):
    """How the packets were exchanged."""

    TWAMP = "twamp"
    STAMP = "stamp"
    ICMP = "icmp"


@dataclass(frozen=True, slots=True)
class MeasurementPoint:
    """Where IP test packets start or are reflected: a node's port and the test address there."""

    name: str
    node: str
    interface: str
    address: str
    port: int = 862


@dataclass(frozen=True, slots=True)
class IpProbeRequest:
    """One IP measurement session from ``source`` to the reflector at ``target`` (what adapters run)."""

    protocol: IpProtocol
    source: MeasurementPoint
    target: MeasurementPoint
    count: int = 100
    interval_s: float = 0.1
    size: int = 44
    dscp: int = 0
    timeout_s: float = 1.0

    def __post_init__(self) -> None:
        if self.count < 1 or self.interval_s < 0 or self.timeout_s <= 0 or not 0 <= self.dscp <= 63:
            raise ValueError("count >= 1, interval >= 0, timeout > 0 and DSCP 0..63 are required")


@dataclass(frozen=True, slots=True)
class IpPacket:
    """One test packet. ``rx_ns`` None = lost; reflector times None for ICMP or a lost packet."""

    seq: int
    tx_ns: int
    rx_ns: int | None = None
    reflector_rx_ns: int | None = None
    reflector_tx_ns: int | None = None
    reflector_seq: int | None = None
    ttl: int | None = None

    @property
    def delivered(self) -> bool:
        """The reply came back."""
        return self.rx_ns is not None

    @property
    def two_way_ns(self) -> int | None:
        """Round trip minus the reflector's residence time."""
        if self.rx_ns is None:
            return None
        rtt = self.rx_ns - self.tx_ns
        if self.reflector_rx_ns is not None and self.reflector_tx_ns is not None:
            rtt -= self.reflector_tx_ns - self.reflector_rx_ns
        return rtt

    @property
    def forward_ns(self) -> int | None:
        """T2 - T1 (meaningful with shared clocks only)."""
        if self.rx_ns is None or self.reflector_rx_ns is None:
            return None
        return self.reflector_rx_ns - self.tx_ns

    @property
    def backward_ns(self) -> int | None:
        """T4 - T3 (meaningful with shared clocks only)."""
        if self.rx_ns is None or self.reflector_tx_ns is None:
            return None
        return self.rx_ns - self.reflector_tx_ns


@dataclass(frozen=True, slots=True)
class IpProbeResult:
    """A finished session: every packet sent (in sequence order) and how it was sent."""

    protocol: IpProtocol
    target: str
    sent: int
    packets: tuple[IpPacket, ...]
    interval_s: float = 0.0
    size: int = 0
    dscp: int = 0
    port: int | None = None
    clocks_shared: bool = False
    stateful_reflector: bool = True
    started_ns: int = 0
    ended_ns: int = 0
    error: str | None = None

    @property
    def received(self) -> int:
        """Replies that came back."""
        return sum(1 for p in self.packets if p.delivered)


def _us(values: Sequence[int | None]) -> list[float]:
    return [v / 1000.0 for v in values if v is not None]


def two_way_delays_us(result: IpProbeResult) -> list[float]:
    """Two-way packet delay of every delivered packet, in sequence order (µs)."""
    return _us([p.two_way_ns for p in result.packets])


def one_way_delays_us(result: IpProbeResult, direction: str = "forward") -> list[float] | None:
    """One-way delays (µs) in ``direction`` (``forward``/``backward``), ``None`` without shared clocks."""
    if not result.clocks_shared or result.protocol is IpProtocol.ICMP:
        return None
    if direction not in ("forward", "backward"):
        raise ValueError("direction must be forward or backward")
    return _us([p.forward_ns if direction == "forward" else p.backward_ns for p in result.packets])


def ipdv_us(result: IpProbeResult, direction: str | None = None) -> list[float]:
    """IPDV series: ``|d(i+1) - d(i)|`` for consecutive sequence numbers both delivered (µs).

    ``direction`` None uses the two-way delay; ``forward``/``backward`` the one-way delay (empty without
    shared clocks).
    """
    def delay(p: IpPacket) -> int | None:
        if direction is None:
            return p.two_way_ns
        if not result.clocks_shared:
            return None
        return p.forward_ns if direction == "forward" else p.backward_ns

    ordered = sorted(result.packets, key=lambda p: p.seq)
    series: list[float] = []
    for a, b in itertools.pairwise(ordered):
        da, db = delay(a), delay(b)
        if b.seq == a.seq + 1 and da is not None and db is not None:
            series.append(abs(db - da) / 1000.0)
    return series


def delay_range_us(delays_us: Sequence[float], p: float = 99.0) -> float | None:
    """Packet delay range: the ``p``-th percentile minus the minimum (µs); ``None`` without samples."""
    if not delays_us:
        return None
    return percentile(delays_us, p) - min(delays_us)


@dataclass(frozen=True, slots=True)
class IpLossStats:
    """Loss of a session; the directional fields are ``None`` when the protocol cannot tell directions."""

    sent: int
    received: int
    loss_ratio: float | None
    forward_lost: int | None = None
    backward_lost: int | None = None
    loss_forward_ratio: float | None = None
    loss_backward_ratio: float | None = None


def loss(result: IpProbeResult) -> IpLossStats:
    """Packet loss ratio, split by direction when a stateful reflector numbered what it received.

    The reflector's sequence number on the last reply says how many packets reached it up to that sender
    sequence number (RFC 8762 §4.3.1). Packets sent after the last reply (the tail) reached the reflector or
    not, nobody can tell: they count as lost in the total and are left out of both directional ratios,
    which are therefore taken over the packets up to the last reply.
    """
    sent = result.sent
    received = result.received
    total = (sent - received) / sent if sent else None
    if result.protocol is IpProtocol.ICMP or not result.stateful_reflector:
        return IpLossStats(sent, received, total)
    last = max((p for p in result.packets if p.delivered and p.reflector_seq is not None),
               key=lambda p: p.seq, default=None)
    if last is None or last.reflector_seq is None:
        return IpLossStats(sent, received, total)
    window = last.seq - result.packets[0].seq + 1 if result.packets else 0
    reached = min(window, last.reflector_seq + 1)
    returned = sum(1 for p in result.packets if p.delivered and p.seq <= last.seq)
    forward_lost = window - reached
    backward_lost = max(0, reached - returned)
    return IpLossStats(sent, received, total, forward_lost, backward_lost,
                       forward_lost / window if window else None,
                       backward_lost / reached if reached else None)


def uptime(result: IpProbeResult, *, packets_per_interval: int = 10, loss_threshold: float = 0.5,
           n_consecutive: int = 1) -> AvailabilityStats:
    """Service uptime over Δt intervals of ``packets_per_interval`` packets (MEF 61.1 §10.9.9, simplified)."""
    delivered = [p.delivered for p in sorted(result.packets, key=lambda p: p.seq)]
    return availability(delivered, frames_per_window=packets_per_interval, flr_threshold=loss_threshold,
                        n_consecutive=n_consecutive)


def _stats_json(stats: DelayStats) -> dict[str, float | int | None]:
    return stats.to_json()


def summary(result: IpProbeResult) -> dict[str, object]:
    """The CLI ``--json`` object (and the SFT / PM measurement) of a session."""
    lost = loss(result)
    two_way = two_way_delays_us(result)
    data: dict[str, object] = {
        "protocol": result.protocol.value,
        "target": result.target,
        "sent": result.sent,
        "received": result.received,
        "loss_ratio": lost.loss_ratio,
        "loss_forward": lost.loss_forward_ratio,
        "loss_backward": lost.loss_backward_ratio,
        "forward_lost": lost.forward_lost,
        "backward_lost": lost.backward_lost,
        "rtt_us": _stats_json(delay_stats(two_way)),
        "ipdv_us": _stats_json(delay_stats(ipdv_us(result))),
        "delay_range_us": _round(delay_range_us(two_way)),
        "clocks_shared": result.clocks_shared,
        "one_way": None,
        "dscp": result.dscp,
        "size": result.size,
    }
    forward = one_way_delays_us(result, "forward")
    backward = one_way_delays_us(result, "backward")
    if forward is not None and backward is not None:
        data["one_way"] = {
            "forward_us": _stats_json(delay_stats(forward)),
            "backward_us": _stats_json(delay_stats(backward)),
            "forward_ipdv_us": _stats_json(delay_stats(ipdv_us(result, "forward"))),
            "backward_ipdv_us": _stats_json(delay_stats(ipdv_us(result, "backward"))),
            "forward_range_us": _round(delay_range_us(forward)),
            "backward_range_us": _round(delay_range_us(backward)),
        }
    if result.error:
        data["error"] = result.error
    return data


def _round(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else round(value, 3)


class SlsMetric(StrEnum):
    """MEF 61.1 §10.9 performance metrics an objective can bound (two-way unless named one-way)."""

    PACKET_DELAY_PERCENTILE = "packetDelayPercentile"
    MEAN_PACKET_DELAY = "meanPacketDelay"
    IPDV = "interPacketDelayVariation"
    PACKET_DELAY_RANGE = "packetDelayRange"
    PACKET_LOSS_RATIO = "packetLossRatio"
    ONE_WAY_PACKET_DELAY_PERCENTILE = "oneWayPacketDelayPercentile"
    ONE_WAY_MEAN_PACKET_DELAY = "oneWayMeanPacketDelay"
    SERVICE_UPTIME = "serviceUptime"


@dataclass(frozen=True, slots=True)
class SlsObjective:
    """One objective: ``metric`` at ``percentile`` (where it takes one) must not exceed ``threshold``.

    Units: µs for delays, a ratio for loss, a ratio for uptime (which must not fall *below* it).
    """

    metric: SlsMetric
    threshold: float
    percentile: float = 99.0


@dataclass(frozen=True, slots=True)
class SlsVerdict:
    """The measured value of one objective and whether it was met (``None`` = not measurable)."""

    objective: SlsObjective
    value: float | None
    met: bool | None = field(default=None)


def metric_value(result: IpProbeResult, objective: SlsObjective) -> float | None:
    """The value of ``objective``'s metric for ``result`` (``None`` when it cannot be measured)."""
    metric, p = objective.metric, objective.percentile
    two_way = two_way_delays_us(result)
    value: float | None
    if metric is SlsMetric.PACKET_LOSS_RATIO:
        value = loss(result).loss_ratio
    elif metric is SlsMetric.SERVICE_UPTIME:
        value = uptime(result, packets_per_interval=max(1, min(10, result.sent))).availability_ratio
    elif metric in (SlsMetric.ONE_WAY_PACKET_DELAY_PERCENTILE, SlsMetric.ONE_WAY_MEAN_PACKET_DELAY):
        forward = one_way_delays_us(result, "forward")
        if not forward:
            return None
        value = percentile(forward, p) if metric is SlsMetric.ONE_WAY_PACKET_DELAY_PERCENTILE else (
            sum(forward) / len(forward))
    elif not two_way:
        return None
    elif metric is SlsMetric.PACKET_DELAY_PERCENTILE:
        value = percentile(two_way, p)
    elif metric is SlsMetric.MEAN_PACKET_DELAY:
        value = sum(two_way) / len(two_way)
    elif metric is SlsMetric.IPDV:
        series = ipdv_us(result)
        value = percentile(series, p) if series else None
    else:
        value = delay_range_us(two_way, p)
    if value is None or math.isnan(value):
        return None
    return value


def evaluate(result: IpProbeResult, objectives: Sequence[SlsObjective]) -> list[SlsVerdict]:
    """Judge ``result`` against every objective."""
    verdicts = []
    for objective in objectives:
        value = metric_value(result, objective)
        if value is None:
            verdicts.append(SlsVerdict(objective, None, None))
        elif objective.metric is SlsMetric.SERVICE_UPTIME:
            verdicts.append(SlsVerdict(objective, value, value >= objective.threshold))
        else:
            verdicts.append(SlsVerdict(objective, value, value <= objective.threshold))
    return verdicts


IP_SLS_RESULT = "urn:lso-interlude:pm:ip:sls-result:v1"
"""``@type`` of a PM report item with the IP SLS metrics of one ordered pair of measurement points."""


def _ms(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else round(value / 1000.0, 6)


def _delay_ms(values: Sequence[float], p: float) -> dict[str, object] | None:
    if not values:
        return None
    stats = delay_stats(values)
    return {"min": _ms(stats.min_us), "mean": _ms(stats.mean_us), "max": _ms(stats.max_us), "percentile": p,
            "percentileValue": _ms(percentile(values, p))}


def pm_result(result: IpProbeResult, *, from_point: str, to_point: str, percentile_p: float = 99.0,
              packets_per_window: int = 10) -> dict[str, object]:
    """One PM interval's IP SLS metrics between two measurement points (delays in ms, like the CE results).

    ``reflectorReachable`` is false when not one packet came back (the reflector, its address or the path is
    gone), which the reachability TCA watches; the delay metrics are then absent rather than zero.
    """
    lost = loss(result)
    two_way = two_way_delays_us(result)
    forward = one_way_delays_us(result, "forward")
    ipdv_series = ipdv_us(result, "forward") if forward is not None else ipdv_us(result)
    up = uptime(result, packets_per_interval=max(1, min(packets_per_window, result.sent or 1)))
    item: dict[str, object] = {
        "@type": IP_SLS_RESULT,
        "fromEndPoint": from_point,
        "toEndPoint": to_point,
        "protocol": result.protocol.value,
        "clocksShared": result.clocks_shared,
        "packetsSent": result.sent,
        "packetsReceived": result.received,
        "reflectorReachable": result.received > 0,
        "packetLossRatio": {"twoWay": lost.loss_ratio, "forward": lost.loss_forward_ratio,
                            "backward": lost.loss_backward_ratio},
        "twoWayPacketDelay": _delay_ms(two_way, percentile_p),
        "oneWayPacketDelay": _delay_ms(forward, percentile_p) if forward is not None else None,
        "interPacketDelayVariation": _delay_ms(ipdv_series, percentile_p),
        "packetDelayRange": _ms(delay_range_us(forward if forward else two_way, percentile_p)),
        "serviceUptime": None if math.isnan(up.availability_ratio) else round(100.0 * up.availability_ratio, 3),
    }
    if result.error:
        item["error"] = result.error[:500]
    return item


IP_TCA_METRICS: dict[str, str] = {
    "ipOneWayPacketDelayPercentile": "above",
    "ipTwoWayPacketDelayPercentile": "above",
    "ipMeanPacketDelay": "above",
    "ipInterPacketDelayVariation": "above",
    "ipPacketDelayRange": "above",
    "ipPacketLossRatio": "above",
    "ipServiceUptime": "below",
    "ipReflectorReachable": "below",
}
"""Threshold-crossing metrics of :func:`pm_result` items and the side that crosses (``below``: too low)."""


def pm_metric_values(item: Mapping[str, object]) -> dict[str, float]:
    """Flat values of one :func:`pm_result` item keyed by :data:`IP_TCA_METRICS` names (absent = unmeasured)."""
    out: dict[str, float] = {}

    def take(name: str, block: object, key: str) -> None:
        if isinstance(block, Mapping) and isinstance(block.get(key), int | float):
            out[name] = float(block[key])

    take("ipOneWayPacketDelayPercentile", item.get("oneWayPacketDelay"), "percentileValue")
    take("ipTwoWayPacketDelayPercentile", item.get("twoWayPacketDelay"), "percentileValue")
    take("ipMeanPacketDelay", item.get("twoWayPacketDelay"), "mean")
    take("ipInterPacketDelayVariation", item.get("interPacketDelayVariation"), "percentileValue")
    take("ipPacketLossRatio", item.get("packetLossRatio"), "twoWay")
    rng, up = item.get("packetDelayRange"), item.get("serviceUptime")
    if isinstance(rng, int | float):
        out["ipPacketDelayRange"] = float(rng)
    if isinstance(up, int | float):
        out["ipServiceUptime"] = float(up)
    out["ipReflectorReachable"] = 1.0 if item.get("reflectorReachable") else 0.0
    return out


@dataclass(frozen=True, slots=True)
class IpThroughputRequest:
    """A bandwidth verification from ``source`` to the reflector at ``target``: steps of ``rate_mbps``."""

    source: MeasurementPoint
    target: MeasurementPoint
    rate_mbps: float
    steps: tuple[float, ...] = (0.5, 1.0, 1.25)
    duration_s: float = 2.0
    size: int = 1472
    dscp: int = 0
    tolerance: float = 0.05
    loss_objective: float = 0.01

    def __post_init__(self) -> None:
        if self.rate_mbps <= 0 or not self.steps or self.duration_s <= 0 or not 44 <= self.size <= 9000:
            raise ValueError("a positive rate and duration, at least one step and a 44..9000-byte size are required")


@dataclass(frozen=True, slots=True)
class ThroughputStep:
    """One step's outcome (rates in Mbit/s, delays in µs)."""

    ratio: float
    offered_mbps: float
    sent: int
    reached: int | None
    received: int
    achieved_mbps: float | None
    goodput_mbps: float | None
    loss_ratio: float
    forward_loss_ratio: float | None
    rtt_us: dict[str, float | int | None]
    duration_s: float

    def to_json(self) -> dict[str, object]:
        """The CLI / SFT shape of a step."""
        def r(x: float | None) -> float | None:
            return None if x is None or math.isnan(x) else round(x, 3)

        return {"ratio": self.ratio, "offered_mbps": r(self.offered_mbps), "sent": self.sent,
                "reached": self.reached, "received": self.received, "achieved_mbps": r(self.achieved_mbps),
                "goodput_mbps": r(self.goodput_mbps), "loss_ratio": r(self.loss_ratio),
                "forward_loss_ratio": r(self.forward_loss_ratio), "rtt_us": self.rtt_us,
                "duration_s": r(self.duration_s)}


@dataclass(frozen=True, slots=True)
class ThroughputResult:
    """Every step and the verdict.

    Verified means the committed rate was delivered (within ``tolerance``) with no more loss than
    ``loss_objective`` at the committed step.
    """

    target: str
    committed_mbps: float
    size: int
    steps: tuple[ThroughputStep, ...]
    tolerance: float
    loss_objective: float

    @property
    def committed_step(self) -> ThroughputStep | None:
        """The step at exactly the committed rate, if it ran."""
        return next((s for s in self.steps if math.isclose(s.ratio, 1.0)), None)

    @property
    def verified(self) -> bool | None:
        """Whether the committed rate got through (``None`` without a committed step)."""
        step = self.committed_step
        if step is None or step.achieved_mbps is None:
            return None if step is None else False
        return (step.achieved_mbps >= (1 - self.tolerance) * self.committed_mbps
                and step.loss_ratio <= self.loss_objective)

    def to_json(self) -> dict[str, object]:
        """The CLI ``--json`` object."""
        return {"target": self.target, "committed_mbps": self.committed_mbps, "size": self.size,
                "verified": self.verified, "tolerance": self.tolerance, "loss_objective": self.loss_objective,
                "steps": [s.to_json() for s in self.steps]}


