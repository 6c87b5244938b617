"""OAM measurements for test jobs (SFT) and fault management jobs (FM): MEP selection, sessions, verdicts.

Both APIs measure the same way: a job names a service (or a from/to pair); the service's MEPs come from the
topology (``services[].meps`` for seed services, else the MEPs declared on the service's ports); the
session runs through the source MEP's node adapter (``OamControl.run_oam``, reached through
:meth:`~interlude.service.platform.network.Network.oam`, so a node without OAM gives a :class:`CapabilityError`,
which job validation turns into a 422).

Delay naming (documented in docs/testing.md): Y.1731 DMM measures the **two-way** frame delay (out and back,
responder residence time removed), reported as ``twoWayFrameDelay``; ``oneWayFrameDelayEstimate`` is half of
each sample (a symmetric path assumed) and is what the service's SLS FD objective (MEF 10.4: one-way) is
compared with. So a 5 ms one-way delay on the path gives ~10 ms ``twoWayFrameDelay`` and ~5 ms
``oneWayFrameDelayEstimate``. IFDV is reported two-way (``twoWayInterFrameDelayVariation``), a conservative
bound of the one-way IFDV the SLS speaks of. Verdicts use the 99th percentiles (MEF 10.4 percentile
objectives). All delays are microseconds.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from interlude.domain.metrics import (
    delay_stats,
    frame_delay,
    frame_delay_range_us,
    frame_loss,
    inter_frame_delay_variation,
)
from interlude.domain.model import PortRef, Service
from interlude.domain.southbound import MepSpec, OamKind, OamRequest, OamResult
from interlude.errors import ValidationError
from interlude.service.platform.network import Network
from interlude.topology.model import SlsSpec, Topology


@dataclass(frozen=True, slots=True)
class SessionParams:
    """Frame count, pacing and size of one session (from the job configuration, profile and defaults)."""

    frame_count: int = 100
    interval_s: float = 0.1
    frame_size: int = 64
    priority: int = 0
    timeout_s: float = 1.0
    ttl: int = 64

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> SessionParams:
        """Read ``frameCount``, ``intervalMs``, ``frameSize``, ``priority``, ``timeoutMs``, ``ttl``."""
        return cls(
            frame_count=int(cfg.get("frameCount", 100)), interval_s=float(cfg.get("intervalMs", 100)) / 1000,
            frame_size=int(cfg.get("frameSize", 64)), priority=int(cfg.get("priority", 0)),
            timeout_s=float(cfg.get("timeoutMs", 1000)) / 1000, ttl=int(cfg.get("ttl", 64)),
        )  # fmt: skip


def mep_spec(topology: Topology, name: str) -> MepSpec:
    """The adapter-level spec of a topology MEP."""
    decl = topology.meps[name]
    return MepSpec(name=name, node=decl.node, interface=decl.interface, mep_id=decl.mep_id, level=decl.level,
                   vlan=decl.vlan, meg_id=decl.meg_id or name)  # fmt: skip


def mep_json(mep: MepSpec) -> dict[str, Any]:
    """A MEP as results show it."""
    return {"name": mep.name, "node": mep.node, "interface": mep.interface, "mepId": mep.mep_id,
            "level": mep.level, "vlan": mep.vlan, "megId": mep.meg_id}  # fmt: skip


def service_meps(topology: Topology, service: Service) -> list[str]:
    """MEP names of a service, the first being where tests start.

    Declared by its seed entry; for an end point, its parent's MEPs on its port; else every MEP on its ports
    (file order).
    """
    seed = topology.service(service.id)
    if seed is not None and seed.meps:
        return list(seed.meps)
    ports = set(service.ports)
    on_ports = [name for name, m in topology.meps.items() if PortRef(m.node, m.interface) in ports]
    parent = topology.service(service.parent) if service.parent else None
    if parent is not None and parent.meps:
        mine = [name for name in parent.meps if name in on_ports]
        if mine:
            return mine
    return on_ports


def pick_meps(
    topology: Topology,
    service_from: Service,
    service_to: Service,
    source: str | None,
    remote: str | None,
    path: str,
) -> tuple[MepSpec, MepSpec]:
    """Source and remote MEP of a session; :class:`ValidationError` (422) with a reason otherwise."""
    for svc, where in ((service_from, "relatedServiceFrom"), (service_to, "relatedServiceTo")):
        if svc.state.value == "terminated":
            raise ValidationError(f"service {svc.id!r} is terminated", f"{path}/{where}", "invalidValue")
    from_meps = service_meps(topology, service_from)
    to_meps = service_meps(topology, service_to)
    if not from_meps:
        raise ValidationError(f"service {service_from.id!r} has no MEP to test from", f"{path}/relatedServiceFrom",
                              "invalidValue")  # fmt: skip
    if not to_meps:
        raise ValidationError(f"service {service_to.id!r} has no MEP to test to", f"{path}/relatedServiceTo",
                              "invalidValue")  # fmt: skip
    cfg_path = f"{path}/sourceMep"
    if source is not None and source not in from_meps:
        raise ValidationError(f"MEP {source!r} is not one of {from_meps}", cfg_path, "invalidValue")
    src = source or from_meps[0]
    src_decl = topology.meps[src]
    # A remote MEP of the same MEG and level first (several MEGs may share a port, e.g. an ENNI).
    candidates = sorted((m for m in to_meps if m != src),
                        key=lambda m: (topology.meps[m].meg_id != src_decl.meg_id,
                                       topology.meps[m].level != src_decl.level))  # fmt: skip
    if remote is not None:
        if remote not in to_meps or remote == src:
            raise ValidationError(f"MEP {remote!r} is not one of {candidates}", f"{path}/remoteMep", "invalidValue")
        dst = remote
    elif candidates:
        dst = candidates[0]
    else:
        raise ValidationError(f"service {service_to.id!r} has no second MEP to answer {src!r}",
                              f"{path}/relatedServiceTo", "invalidValue")  # fmt: skip
    return mep_spec(topology, src), mep_spec(topology, dst)


def new_test_id() -> int:
    """A fresh Y.1731 Test ID (1 .. 2**31-1) for one OAM session; every SFT, FM and PM session takes one.

    Why: an SLM responder counts the SLMs it received per (source MEP, Test ID) and answers with that running
    count (TxFCb). A second session reusing a Test ID on the same MEP pair starts from the first session's
    count, so the initiator sees more frames "sent back" than it sent and reports false backward loss. A random
    id (not one derived from the job and run) also stays fresh when an interrupted run is retried; two sessions
    of one source MEP colliding on 31 random bits is negligible.
    """
    return secrets.randbelow(0x7FFFFFFF) + 1


async def run_session(
    network: Network, kind: OamKind, src: MepSpec, dst: MepSpec, params: SessionParams, *,
    count: int | None = None, interval_s: float | None = None,
) -> OamResult:  # fmt: skip
    """One session from ``src`` to ``dst`` with a fresh Test ID; adapter errors propagate (callers record them)."""
    request = OamRequest(
        kind=kind, mep=src, remote=dst, count=count if count is not None else params.frame_count,
        interval_s=interval_s if interval_s is not None else params.interval_s, frame_size=params.frame_size,
        priority=params.priority, timeout_s=params.timeout_s, test_id=new_test_id(),
    )  # fmt: skip
    return await network.oam(src.node).run_oam(request)


def _ratio(x: float | None) -> float | None:
    return None if x is None or math.isnan(x) else round(x, 6)


def _half(result: OamResult) -> dict[str, Any]:
    return delay_stats([d / 2 for d in result.delays_us]).to_json()


def loopback_json(result: OamResult) -> dict[str, Any]:
    """Loopback (LBM/LBR) outcome."""
    loss = frame_loss(result)
    return {"framesSent": result.sent, "framesReceived": result.received, "frameLossRatio": _ratio(loss.flr_ratio),
            "roundTripTime": frame_delay(result).to_json()}  # fmt: skip


def delay_json(result: OamResult) -> dict[str, Any]:
    """Two-way delay (DMM/DMR) outcome."""
    loss = frame_loss(result)
    fdr = frame_delay_range_us(result)
    return {
        "framesSent": result.sent, "framesReceived": result.received, "frameLossRatio": _ratio(loss.flr_ratio),
        "twoWayFrameDelay": frame_delay(result).to_json(), "oneWayFrameDelayEstimate": _half(result),
        "twoWayInterFrameDelayVariation": inter_frame_delay_variation(result).to_json(),
        "twoWayFrameDelayRange": None if math.isnan(fdr) else round(fdr, 3), "delayUnits": "us",
    }  # fmt: skip


def loss_json(result: OamResult) -> dict[str, Any]:
    """Synthetic loss (SLM/SLR) outcome."""
    loss = frame_loss(result)
    return {"framesSent": result.sent, "framesReceived": result.received, "frameLossRatio": _ratio(loss.flr_ratio),
            "forwardFrameLossRatio": _ratio(loss.flr_forward_ratio),
            "backwardFrameLossRatio": _ratio(loss.flr_backward_ratio)}  # fmt: skip


def linktrace_json(result: OamResult, target: MepSpec) -> dict[str, Any]:
    """Linktrace (LTM/LTR) outcome: the hops in TTL order and whether the target MEP answered."""
    hops = sorted(result.hops, key=lambda h: -h.ttl)
    reached = any(h.mep_id == target.mep_id for h in hops) or (
        target.mac is not None and any(h.mac.lower() == target.mac.lower() for h in hops)
    )
    if not reached and hops and result.received > 0:
        reached = hops[-1].relay_action == 1  # RlyHit: the LTM reached its target MAC
    return {
        "hops": [{"ttl": h.ttl, "mac": h.mac, "relayAction": h.relay_action, "mepId": h.mep_id} for h in hops],
        "reachedTarget": reached,
    }


def sls_json(sls: SlsSpec | None) -> dict[str, Any]:
    """The objectives a result was judged against."""
    if sls is None:
        return {"frameDelayUs": None, "interFrameDelayVariationUs": None, "frameLossRatio": None}
    return {"frameDelayUs": sls.fd_us, "interFrameDelayVariationUs": sls.ifdv_us, "frameLossRatio": sls.flr_ratio}


def judge(measured: dict[str, Any], sls: SlsSpec | None, *, delay: bool, loss: bool) -> tuple[str, list[str]]:
    """``pass``/``fail``/``notEvaluated`` of a measurement against the SLS, with the failed objectives."""
    if sls is None:
        return "notEvaluated", []
    failures: list[str] = []
    evaluated = False
    if delay and sls.fd_us is not None:
        p99 = (measured.get("oneWayFrameDelayEstimate") or {}).get("p99")
        evaluated = True
        if p99 is None or p99 > sls.fd_us:
            failures.append(f"one-way FD p99 {p99} us exceeds the objective {sls.fd_us} us")
    if delay and sls.ifdv_us is not None:
        p99 = (measured.get("twoWayInterFrameDelayVariation") or {}).get("p99")
        evaluated = True
        if p99 is not None and p99 > sls.ifdv_us:
            failures.append(f"IFDV p99 {p99} us exceeds the objective {sls.ifdv_us} us")
    if loss and sls.flr_ratio is not None:
        flr = measured.get("frameLossRatio")
        evaluated = True
        if flr is None or flr > sls.flr_ratio:
            failures.append(f"FLR {flr} exceeds the objective {sls.flr_ratio}")
    if not evaluated:
        return "notEvaluated", []
    return ("fail" if failures else "pass"), failures


@dataclass(frozen=True, slots=True)
class SatConfig:
    """Y.1564-style service activation test parameters (lab scale)."""

    cir_steps_percent: tuple[float, ...] = (25.0, 50.0, 75.0, 100.0)
    include_eir_step: bool = True
    frames_per_step: int = 50
    max_rate_bps: int = 1_000_000

    @classmethod
    def from_config(cls, cfg: dict[str, Any] | None) -> SatConfig:
        """Read the ``serviceActivation`` object."""
        cfg = cfg or {}
        return cls(
            cir_steps_percent=tuple(float(x) for x in cfg.get("cirStepsPercent", (25, 50, 75, 100))),
            include_eir_step=bool(cfg.get("includeEirStep", True)),
            frames_per_step=int(cfg.get("framesPerStep", 50)), max_rate_bps=int(cfg.get("maxRateBps", 1_000_000)),
        )  # fmt: skip


async def run_service_activation(
    network: Network, src: MepSpec, dst: MepSpec, params: SessionParams, sat: SatConfig, service: Service,
    sls: SlsSpec | None,
) -> dict[str, Any]:  # fmt: skip
    """CIR steps (and a CIR+EIR step), each a DMM session (FD, IFDV) and an SLM session (FLR), judged per step.

    Rates: step ``k`` offers ``cir * pct_k``; the CIR+EIR step ``cir + eir``. Userspace OAM cannot offer line
    rate, so every rate is scaled by ``max_rate_bps / highest rate`` when that is below 1, and the step
    reports both ``targetRateBps`` and the ``offeredRateBps`` (the pacing used). CIR steps are judged against
    the SLS (FD, IFDV, FLR); the CIR+EIR step passes when at least the CIR share was delivered
    (``FLR <= EIR / (CIR + EIR)``), as Y.1564 allows EIR frames to be dropped.
    """
    cir = float(service.cir_bps or 0)
    eir = float(service.eir_bps or 0)
    if cir <= 0:
        raise ValidationError(f"service {service.id!r} has no CIR to step through", "/relatedServiceFrom",
                              "invalidValue")  # fmt: skip
    plan: list[tuple[str, float | None, float]] = [("cir", pct, cir * pct / 100) for pct in sat.cir_steps_percent]
    if sat.include_eir_step and eir > 0:
        plan.append(("cirEir", None, cir + eir))
    scale = min(1.0, sat.max_rate_bps / max(rate for _, _, rate in plan))
    bits = params.frame_size * 8
    steps: list[dict[str, Any]] = []
    for number, (kind, pct, target) in enumerate(plan, start=1):
        offered = target * scale
        interval = max(1e-4, bits / offered)
        dm = await run_session(network, OamKind.DELAY, src, dst, params, count=sat.frames_per_step,
                               interval_s=interval)  # fmt: skip
        sl = await run_session(network, OamKind.SYNTHETIC_LOSS, src, dst, params, count=sat.frames_per_step,
                               interval_s=interval)  # fmt: skip
        d = delay_json(dm)
        lj = loss_json(sl)
        step: dict[str, Any] = {
            "step": number, "kind": kind, "targetRateBps": round(target, 3),
            "offeredRateBps": round(bits / interval, 3), "framesSent": sl.sent, "framesReceived": sl.received,
            "frameLossRatio": lj["frameLossRatio"], "forwardFrameLossRatio": lj["forwardFrameLossRatio"],
            "backwardFrameLossRatio": lj["backwardFrameLossRatio"],
            "twoWayFrameDelay": d["twoWayFrameDelay"], "oneWayFrameDelayEstimate": d["oneWayFrameDelayEstimate"],
            "twoWayInterFrameDelayVariation": d["twoWayInterFrameDelayVariation"],
        }  # fmt: skip
        if pct is not None:
            step["percentOfCir"] = pct
        if kind == "cir":
            verdict, failures = judge(step, sls, delay=True, loss=True)
        else:
            allowed = eir / (cir + eir)
            flr = step["frameLossRatio"]
            failures = [] if flr is not None and flr <= allowed else [f"FLR {flr} exceeds the EIR share {allowed:.3f}"]
            verdict = "fail" if failures else "pass"
        step["verdict"] = verdict
        step["failures"] = failures
        steps.append(step)
    verdicts = [s["verdict"] for s in steps]
    overall = "fail" if "fail" in verdicts else ("pass" if "pass" in verdicts else "notEvaluated")
    last_cir = next((s for s in reversed(steps) if s["kind"] == "cir"), steps[-1])
    return {
        "framesSent": sum(s["framesSent"] for s in steps), "framesReceived": sum(s["framesReceived"] for s in steps),
        "frameLossRatio": last_cir["frameLossRatio"], "twoWayFrameDelay": last_cir["twoWayFrameDelay"],
        "oneWayFrameDelayEstimate": last_cir["oneWayFrameDelayEstimate"],
        "twoWayInterFrameDelayVariation": last_cir["twoWayInterFrameDelayVariation"], "delayUnits": "us",
        "steps": steps, "verdict": overall, "failures": [f for s in steps for f in s["failures"]],
    }  # fmt: skip


def stats_values(stats: Sequence[float]) -> dict[str, Any]:
    """:func:`delay_stats` as JSON (helper for callers with raw values)."""
    return delay_stats(stats).to_json()
