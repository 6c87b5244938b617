"""IP measurements for test jobs: measurement points, TWAMP-Light / STAMP / ICMP sessions, MEF 61.1 verdicts.

An IP service (Internet Access IPVC, its end points, an IP UNI) is tested between two **measurement
points** (topology ``measurement_points``: reflectors at the customer side and the internet edge). The seed
services name theirs (``services[].measurement_points``); any other IP service uses the points on its own
ports plus the internet edge. The session runs through the source point's node adapter
(:class:`~interlude.adapters.base.IpMeasurement`, reached through
:meth:`~interlude.service.platform.network.Network.ip_measurement`), whose result is judged with
:mod:`interlude.domain.ipsls`.

The SLS objectives come from the service's ``sls`` (the same keys as Carrier Ethernet, read with MEF 61.1's
IP meanings): ``fd_us`` bounds the one-way packet delay percentile (p99) where both ends read one clock,
else half the two-way p99 (a symmetric path assumed, and said so in ``failures``); ``ifdv_us`` bounds the
inter-packet delay variation p99; ``flr_ratio`` bounds the packet loss ratio. Delays are microseconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from interlude.domain import ipsls
from interlude.domain.ipsls import (
    IpProbeRequest,
    IpProbeResult,
    IpProtocol,
    IpThroughputRequest,
    MeasurementPoint,
    ThroughputResult,
)
from interlude.domain.metrics import delay_stats
from interlude.domain.model import PortRef, Service
from interlude.errors import ValidationError
from interlude.service.platform.network import Network
from interlude.topology.model import SlsSpec, Topology

IP_TEST_TYPES = ("ipDelay", "ipLoss", "ipJitter", "ipActivation", "ipThroughput")
"""SFT test types measured with IP test packets (the others run Y.1731 between MEPs)."""
ACTIVATION_PHASES = ("ipDelay", "ipLoss", "ipJitter")


@dataclass(frozen=True, slots=True)
class IpParams:
    """Packets, pacing, size and class of one session (job configuration over profile over defaults)."""

    protocol: IpProtocol = IpProtocol.STAMP
    packet_count: int = 100
    interval_s: float = 0.1
    packet_size: int = 44
    dscp: int = 0
    timeout_s: float = 1.0

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> IpParams:
        """Read ``protocol``, ``packetCount``, ``intervalMs``, ``packetSize``, ``dscp``, ``timeoutMs``."""
        return cls(protocol=IpProtocol(cfg.get("protocol", "stamp")), packet_count=int(cfg.get("packetCount", 100)),
                   interval_s=float(cfg.get("intervalMs", 100)) / 1000, packet_size=int(cfg.get("packetSize", 44)),
                   dscp=int(cfg.get("dscp", 0)), timeout_s=float(cfg.get("timeoutMs", 1000)) / 1000)


def point(topology: Topology, name: str) -> MeasurementPoint:
    """The adapter-level measurement point of a topology declaration."""
    decl = topology.measurement_points[name]
    return MeasurementPoint(name=name, node=decl.node, interface=decl.interface, address=decl.address,
                            port=decl.port)


def point_json(mp: MeasurementPoint) -> dict[str, Any]:
    """A measurement point as results show it."""
    return {"name": mp.name, "node": mp.node, "interface": mp.interface, "address": mp.address, "port": mp.port}


def service_points(topology: Topology, service: Service) -> list[str]:
    """Measurement points of a service, the first being where tests start.

    Declared by its seed entry (or its parent's); otherwise the points on its own ports, then every
    internet-edge point (an Internet Access reaches the internet edge whatever port it was sold on).
    """
    for seed in (topology.service(service.id), topology.service(service.parent) if service.parent else None):
        if seed is not None and seed.measurement_points:
            return list(seed.measurement_points)
    ports = set(service.ports)
    own = [n for n, p in topology.measurement_points.items() if PortRef(p.node, p.interface) in ports]
    edge = [n for n, p in topology.measurement_points.items() if p.role == "internet" and n not in own]
    return own + edge if own else []


def pick_points(topology: Topology, service_from: Service, service_to: Service, source: str | None,
                remote: str | None, path: str) -> tuple[MeasurementPoint, MeasurementPoint]:
    """Source and remote point of a session; :class:`ValidationError` (422) with a reason otherwise."""
    for svc, where in ((service_from, "relatedServiceFrom"), (service_to, "relatedServiceTo")):
        if svc.state.value == "terminated":
            raise ValidationError(f"service {svc.id!r} is terminated", f"{path}/{where}", "invalidValue")
    from_points = service_points(topology, service_from)
    to_points = service_points(topology, service_to)
    if not from_points:
        raise ValidationError(f"service {service_from.id!r} has no IP measurement point to test from",
                              f"{path}/relatedServiceFrom", "invalidValue")
    if source is not None and source not in from_points:
        raise ValidationError(f"measurement point {source!r} is not one of {from_points}",
                              f"{path}/serviceSpecificTestJobConfiguration/sourceMeasurementPoint", "invalidValue")
    src = source or from_points[0]
    candidates = [p for p in to_points if p != src]
    if remote is not None:
        if remote not in candidates:
            raise ValidationError(f"measurement point {remote!r} is not one of {candidates}",
                                  f"{path}/serviceSpecificTestJobConfiguration/remoteMeasurementPoint",
                                  "invalidValue")
        dst = remote
    elif candidates:
        dst = candidates[0]
    else:
        raise ValidationError(f"service {service_to.id!r} has no second measurement point to reflect for {src!r}",
                              f"{path}/relatedServiceTo", "invalidValue")
    return point(topology, src), point(topology, dst)


async def run_ip_session(network: Network, src: MeasurementPoint, dst: MeasurementPoint,
                         params: IpParams) -> IpProbeResult:
    """One session from ``src`` to the reflector at ``dst``; adapter errors propagate (callers record them)."""
    request = IpProbeRequest(protocol=params.protocol, source=src, target=dst, count=params.packet_count,
                             interval_s=params.interval_s, size=params.packet_size, dscp=params.dscp,
                             timeout_s=params.timeout_s)
    return await network.ip_measurement(src.node).run_ip_probe(request)


def _num(x: float | None) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else round(x, 6)


def result_json(result: IpProbeResult) -> dict[str, Any]:
    """The measured figures of a session, in the result payload's names."""
    lost = ipsls.loss(result)
    two_way = ipsls.two_way_delays_us(result)
    forward = ipsls.one_way_delays_us(result, "forward")
    backward = ipsls.one_way_delays_us(result, "backward")
    one_way = None
    if forward is not None and backward is not None:
        one_way = {"forward": delay_stats(forward).to_json(), "backward": delay_stats(backward).to_json(),
                   "forwardInterPacketDelayVariation": delay_stats(ipsls.ipdv_us(result, "forward")).to_json()}
    out = {"protocol": result.protocol.value, "packetsSent": result.sent, "packetsReceived": result.received,
           "packetLossRatio": _num(lost.loss_ratio), "forwardPacketLossRatio": _num(lost.loss_forward_ratio),
           "backwardPacketLossRatio": _num(lost.loss_backward_ratio),
           "twoWayPacketDelay": delay_stats(two_way).to_json(), "oneWayPacketDelay": one_way,
           "interPacketDelayVariation": delay_stats(ipsls.ipdv_us(result)).to_json(),
           "packetDelayRange": _num(ipsls.delay_range_us(two_way)), "clocksShared": result.clocks_shared,
           "dscp": result.dscp, "packetSize": result.size, "delayUnits": "us"}
    if result.error:
        out["error"] = result.error[:500]
    return out


def objectives(sls: SlsSpec | None, test_type: str, clocks_shared: bool) -> list[ipsls.SlsObjective]:
    """The MEF 61.1 objectives a test type judges, from the service's SLS."""
    if sls is None:
        return []
    out: list[ipsls.SlsObjective] = []
    if test_type == "ipDelay" and sls.fd_us is not None:
        if clocks_shared:
            out.append(ipsls.SlsObjective(ipsls.SlsMetric.ONE_WAY_PACKET_DELAY_PERCENTILE, sls.fd_us, 99.0))
        else:
            out.append(ipsls.SlsObjective(ipsls.SlsMetric.PACKET_DELAY_PERCENTILE, 2 * sls.fd_us, 99.0))
    if test_type == "ipJitter" and sls.ifdv_us is not None:
        out.append(ipsls.SlsObjective(ipsls.SlsMetric.IPDV, sls.ifdv_us, 99.0))
    if test_type in ("ipDelay", "ipLoss", "ipJitter") and sls.flr_ratio is not None:
        out.append(ipsls.SlsObjective(ipsls.SlsMetric.PACKET_LOSS_RATIO, sls.flr_ratio))
    return out


def judge(result: IpProbeResult, sls: SlsSpec | None, test_type: str) -> dict[str, Any]:
    """``verdict`` (pass / fail / notEvaluated), ``failures`` and ``objectives`` (each with its value)."""
    verdicts = ipsls.evaluate(result, objectives(sls, test_type, result.clocks_shared))
    failures = []
    for v in verdicts:
        o = v.objective
        if v.met is False or v.met is None:
            what = f"{o.metric.value} p{o.percentile:g}" if o.metric is not ipsls.SlsMetric.PACKET_LOSS_RATIO \
                else o.metric.value
            failures.append(f"{what} {_num(v.value)} exceeds the objective {o.threshold}" if v.met is False
                            else f"{what} could not be measured")
    rows = [{"metric": v.objective.metric.value, "percentile": v.objective.percentile,
             "threshold": v.objective.threshold, "value": _num(v.value), "met": v.met} for v in verdicts]
    verdict = "notEvaluated" if not verdicts else ("fail" if failures else "pass")
    return {"verdict": verdict, "failures": failures, "objectives": rows}


def sls_json(sls: SlsSpec | None) -> dict[str, Any]:
    """The SLS the verdict was judged against (MEF 61.1 names)."""
    if sls is None:
        return {}
    return {"packetDelayUs": sls.fd_us, "interPacketDelayVariationUs": sls.ifdv_us, "packetLossRatio": sls.flr_ratio}


def throughput_request(src: MeasurementPoint, dst: MeasurementPoint, cfg: dict[str, Any],
                       committed_mbps: float | None, sls: SlsSpec | None) -> IpThroughputRequest:
    """The bandwidth verification a job asks for.

    ``throughput.rateMbps`` (default: the service's CIR), ``stepsPercent`` (50, 100, 125), ``durationMs``
    (1000), ``packetSize`` (1472), and ``dscp``; the loss objective is the SLS's packet loss ratio (1 %).
    """
    tp = dict(cfg.get("throughput") or {})
    rate = float(tp.get("rateMbps") or committed_mbps or 0)
    if rate <= 0:
        raise ValidationError("no rate to verify: the service has no CIR and throughput.rateMbps is not set",
                              "/serviceSpecificTestJobConfiguration/throughput/rateMbps", "missingProperty")
    loss_objective = sls.flr_ratio if sls is not None and sls.flr_ratio is not None else 0.01
    return IpThroughputRequest(source=src, target=dst, rate_mbps=rate,
                               steps=tuple(float(p) / 100 for p in tp.get("stepsPercent", (50, 100, 125))),
                               duration_s=float(tp.get("durationMs", 1000)) / 1000,
                               size=int(tp.get("packetSize", 1472)), dscp=int(cfg.get("dscp", 0)),
                               loss_objective=loss_objective)


def throughput_json(result: ThroughputResult) -> dict[str, Any]:
    """The outcome of a bandwidth verification: the steps and the verdict on the committed step."""
    verified = result.verified
    steps = [{"percentOfRate": round(s.ratio * 100, 3), "offeredRateMbps": _num(s.offered_mbps),
              "achievedRateMbps": _num(s.achieved_mbps), "goodputMbps": _num(s.goodput_mbps),
              "packetsSent": s.sent, "packetsReached": s.reached, "packetsReceived": s.received,
              "packetLossRatio": _num(s.loss_ratio), "forwardPacketLossRatio": _num(s.forward_loss_ratio),
              "twoWayPacketDelay": s.rtt_us} for s in result.steps]
    failures = []
    step = result.committed_step
    if verified is False and step is not None:
        failures.append(f"at the committed rate {result.committed_mbps} Mbit/s: achieved {_num(step.achieved_mbps)} "
                        f"Mbit/s, loss {_num(step.loss_ratio)} (objective {result.loss_objective})")
    return {"protocol": "stamp", "committedRateMbps": result.committed_mbps, "packetSize": result.size,
            "packetsSent": sum(s.sent for s in result.steps),
            "packetsReceived": sum(s.received for s in result.steps), "throughputSteps": steps,
            "verdict": {True: "pass", False: "fail", None: "notEvaluated"}[verified], "failures": failures,
            "delayUnits": "us"}


async def measure(network: Network, test_type: str, src: MeasurementPoint, dst: MeasurementPoint,
                  params: IpParams, sls: SlsSpec | None, *, config: dict[str, Any] | None = None,
                  committed_mbps: float | None = None) -> dict[str, Any]:
    """One IP test run (every phase of ``ipActivation`` in sequence); the result payload without ``@type``."""
    out: dict[str, Any] = {"testType": test_type, "sourceMeasurementPoint": point_json(src),
                           "remoteMeasurementPoint": point_json(dst), "sls": sls_json(sls)}
    if test_type == "ipThroughput":
        request = throughput_request(src, dst, config or {}, committed_mbps, sls)
        out.update(throughput_json(await network.ip_measurement(src.node).run_ip_throughput(request)))
        return out
    if test_type != "ipActivation":
        result = await run_ip_session(network, src, dst, params)
        out.update(result_json(result))
        out.update(judge(result, sls, test_type))
        return out
    phases = []
    for phase in ACTIVATION_PHASES:
        result = await run_ip_session(network, src, dst, params)
        phases.append({"testType": phase, **result_json(result), **judge(result, sls, phase)})
    last = phases[-1]
    out.update({k: last[k] for k in ("protocol", "packetsSent", "packetsReceived", "clocksShared", "delayUnits")})
    out["packetsSent"] = sum(p["packetsSent"] for p in phases)
    out["packetsReceived"] = sum(p["packetsReceived"] for p in phases)
    out["phases"] = phases
    verdicts = [p["verdict"] for p in phases]
    out["verdict"] = "fail" if "fail" in verdicts else ("pass" if "pass" in verdicts else "notEvaluated")
    out["failures"] = [f"{p['testType']}: {f}" for p in phases for f in p["failures"]]
    out["objectives"] = [o for p in phases for o in p["objectives"]]
    return out
