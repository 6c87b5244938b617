"""Performance Monitoring as pure functions: durations, interval plans and the measurement payloads.

The PM service (:mod:`interlude.service.performance.service`) runs OAM sessions and reads counters through the
adapters; this module turns their raw outcome into the service-specific result objects a report carries
(``ServiceSpecificResult`` items, ``@type`` URNs below; schemas in ``interlude/data/schemas/pm-*.json``,
documented in ``docs/performance.md``), and into the flat metric values thresholds (TCAs) are compared with.

Delay semantics (be explicit, an SLS is about one-way figures): Y.1731 DMM/DMR measures the **two-way**
frame delay (responder residence time removed). ``twoWayFrameDelay`` is that measurement;
``oneWayFrameDelay`` is derived as half of it (``"method": "twoWayHalved"``), which is exact on a symmetric
path and is what a single-ended tool without time-of-day synchronisation can give. A 5 ms one-way delay
therefore reports ~10 ms two-way and ~5 ms one-way. IFDV and FDR are computed on the two-way series and
halved the same way. Frame loss comes from SLM/SLR (forward = far end, backward = near end), availability
from the per-frame SLM outcome in Δt windows (MEF 10.4 sliding-window rule, :mod:`interlude.domain.metrics`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from interlude.domain.ipsls import IP_SLS_RESULT, IP_TCA_METRICS, pm_metric_values
from interlude.domain.metrics import (
    frame_delay,
    frame_delay_range_us,
    frame_loss,
    ifdv_series_us,
    inter_frame_delay_variation,
    result_availability,
)
from interlude.domain.metrics import percentile as pct_of
from interlude.domain.southbound import CounterSample, OamResult

CE_SOAM_CONFIG = "urn:lso-interlude:pm:carrier-ethernet:configuration:v1"
IP_PM_CONFIG = "urn:lso-interlude:pm:ip:configuration:v1"
CE_SOAM_RESULT = "urn:lso-interlude:pm:carrier-ethernet:result:v1"
COUNTERS_RESULT = "urn:lso-interlude:pm:interface-counters:result:v1"

UNIT_SECONDS = {
    "NS": 1e-9,
    "US": 1e-6,
    "MS": 1e-3,
    "SEC": 1.0,
    "MIN": 60.0,
    "HOUR": 3600.0,
    "DAY": 86400.0,
    "WEEK": 604800.0,
    "MONTH": 2592000.0,
    "YEAR": 31536000.0,
}

# Metrics a TCA may name: result field -> direction ("above": bad when high; "below": bad when low).
TCA_METRICS: dict[str, str] = {
    "oneWayMeanFrameDelay": "above",
    "oneWayMaxFrameDelay": "above",
    "oneWayFrameDelayPercentile": "above",
    "twoWayMeanFrameDelay": "above",
    "oneWayInterFrameDelayVariation": "above",
    "oneWayFrameDelayRange": "above",
    "oneWayFrameLossRatio": "above",
    "oneWayAvailability": "below",
    "inErrors": "above",
    "outErrors": "above",
    "inDiscards": "above",
    "outDiscards": "above",
    "utilizationIn": "above",
    "utilizationOut": "above",
    **IP_TCA_METRICS,
}


def seconds(duration: Mapping[str, Any]) -> float:
    """A MEF ``TimeDuration`` in seconds."""
    return float(duration["timeDurationValue"]) * UNIT_SECONDS[str(duration["timeDurationUnits"])]


def _ms(us: float) -> float | None:
    return None if math.isnan(us) else round(us / 1000.0, 4)


def _half(us: float) -> float | None:
    return None if math.isnan(us) else round(us / 2000.0, 4)


def _pct(ratio: float | None) -> float | None:
    if ratio is None or math.isnan(ratio):
        return None
    return round(max(0.0, min(1.0, ratio)) * 100.0, 4)


def _clean(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


def soam_result(
    *,
    service_id: str,
    from_mep: str,
    to_mep: str,
    delay: OamResult | None,
    loss: OamResult | None,
    percentile: float = 99.0,
    availability: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """One CE SOAM result (``CE_SOAM_RESULT``) of an ordered pair for one measurement interval."""
    out: dict[str, Any] = {
        "@type": CE_SOAM_RESULT,
        "serviceId": service_id,
        "fromEndPoint": from_mep,
        "toEndPoint": to_mep,
        "suspectFlag": False,
    }
    if delay is not None:
        fd = frame_delay(delay)
        p_value = pct_of(delay.delays_us, percentile) if delay.delays_us else math.nan
        ifdv = inter_frame_delay_variation(delay)
        ifdv_p = pct_of(ifdv_series_us(delay.delays_us), percentile) if ifdv.count else math.nan
        fdr = frame_delay_range_us(delay, percentile)
        out["delayTool"] = "DMM_DMR"
        out["delayFramesTransmitted"] = delay.sent
        out["delayFramesReceived"] = delay.received
        out["twoWayFrameDelay"] = _clean(
            {
                "min": _ms(fd.min_us),
                "mean": _ms(fd.mean_us),
                "max": _ms(fd.max_us),
                "percentile": percentile,
                "percentileValue": _ms(p_value),
                "unit": "milliSeconds",
            }
        )
        out["oneWayFrameDelay"] = _clean(
            {
                "min": _half(fd.min_us),
                "mean": _half(fd.mean_us),
                "max": _half(fd.max_us),
                "percentile": percentile,
                "percentileValue": _half(p_value),
                "unit": "milliSeconds",
                "method": "twoWayHalved",
            }
        )
        out["oneWayInterFrameDelayVariation"] = _clean(
            {
                "mean": _half(ifdv.mean_us),
                "max": _half(ifdv.max_us),
                "percentile": percentile,
                "percentileValue": _half(ifdv_p),
                "unit": "milliSeconds",
                "method": "twoWayHalved",
            }
        )
        out["oneWayFrameDelayRange"] = _clean({"percentile": percentile, "value": _half(fdr), "unit": "milliSeconds"})
        if fd.count:
            out["measuredOneWayFd"] = round(fd.mean_us / 2)  # SDK stream name, microseconds
        if delay.sent and delay.received == 0:
            out["suspectFlag"] = True
    if loss is not None:
        stats = frame_loss(loss)
        out["lossTool"] = "SLM_SLR"
        out["lossFramesTransmitted"] = loss.sent
        out["lossFramesReceived"] = loss.received
        forward = stats.flr_forward_ratio if stats.flr_forward_ratio is not None else stats.flr_ratio
        backward = stats.flr_backward_ratio if stats.flr_backward_ratio is not None else stats.flr_ratio
        out["oneWayFrameLossRatio"] = _clean({"forward": _pct(forward), "backward": _pct(backward), "unit": "percent"})
        worst = max((x for x in (forward, backward) if x is not None and not math.isnan(x)), default=None)
        out["measuredOneWayFlr"] = _pct(worst) if worst is not None else None
        av_cfg = dict(availability or {})
        av = result_availability(
            loss,
            frames_per_window=int(av_cfg.get("framesPerDeltaT", 10)),
            flr_threshold=float(av_cfg.get("thresholdC", 0.5)),
            n_consecutive=int(av_cfg.get("consecutiveIntervalN", 1)),
        )
        out["oneWayAvailability"] = _pct(av.availability_ratio)
        out["availableDeltaTs"] = av.available_windows
        out["unavailableDeltaTs"] = av.windows - av.available_windows
        if loss.sent and loss.received == 0:
            out["suspectFlag"] = True
    return _clean(out)


def counters_result(
    interface: str, before: CounterSample, after: CounterSample, speed_bps: int | None, interval_s: float
) -> dict[str, Any]:
    """Per-interval counter deltas of one port (``COUNTERS_RESULT``); a counter reset marks the item suspect.

    ``intervalSeconds`` and the utilisation use the span between the agent's own sample times when the adapter
    reports them: an SNMP agent (net-snmp caches IF-MIB for ~3 s) can hand the same sample to two polls, and
    dividing its deltas by our polling interval would swing between zero and three intervals' worth. An
    interval in which the agent produced no fresh sample is marked suspect rather than reported as idle.
    """
    fields = (
        "in_octets",
        "out_octets",
        "in_packets",
        "out_packets",
        "in_errors",
        "out_errors",
        "in_discards",
        "out_discards",
    )
    names = ("inOctets", "outOctets", "inPackets", "outPackets", "inErrors", "outErrors", "inDiscards", "outDiscards")
    suspect = False
    if before.sampled_at > 0 and after.sampled_at > 0:
        span = after.sampled_at - before.sampled_at
        if span > 0:
            interval_s = span
        else:
            suspect = True  # the agent handed us the same sample again: no measurement for this interval
    out: dict[str, Any] = {"@type": COUNTERS_RESULT, "interface": interface, "intervalSeconds": round(interval_s, 3)}
    for field, name in zip(fields, names, strict=True):
        delta = int(getattr(after, field)) - int(getattr(before, field))
        if delta < 0:
            suspect = True
            delta = int(getattr(after, field))
        out[name] = delta
    out["suspectFlag"] = suspect
    if speed_bps and interval_s > 0:
        out["utilizationIn"] = _pct(out["inOctets"] * 8 / (speed_bps * interval_s))
        out["utilizationOut"] = _pct(out["outOctets"] * 8 / (speed_bps * interval_s))
    return _clean(out)


def metric_values(result: Mapping[str, Any]) -> dict[str, float]:
    """Flat metric values of one result item, keyed by the names a TCA uses (:data:`TCA_METRICS`)."""
    if result.get("@type") == IP_SLS_RESULT:
        return pm_metric_values(result)
    out: dict[str, float] = {}
    one = result.get("oneWayFrameDelay") or {}
    two = result.get("twoWayFrameDelay") or {}
    if "mean" in one:
        out["oneWayMeanFrameDelay"] = float(one["mean"])
    if "max" in one:
        out["oneWayMaxFrameDelay"] = float(one["max"])
    if "percentileValue" in one:
        out["oneWayFrameDelayPercentile"] = float(one["percentileValue"])
    if "mean" in two:
        out["twoWayMeanFrameDelay"] = float(two["mean"])
    ifdv = result.get("oneWayInterFrameDelayVariation") or {}
    if "percentileValue" in ifdv:
        out["oneWayInterFrameDelayVariation"] = float(ifdv["percentileValue"])
    fdr = result.get("oneWayFrameDelayRange") or {}
    if "value" in fdr:
        out["oneWayFrameDelayRange"] = float(fdr["value"])
    if "measuredOneWayFlr" in result:
        out["oneWayFrameLossRatio"] = float(result["measuredOneWayFlr"])
    if "oneWayAvailability" in result:
        out["oneWayAvailability"] = float(result["oneWayAvailability"])
    for name in ("inErrors", "outErrors", "inDiscards", "outDiscards", "utilizationIn", "utilizationOut"):
        if name in result:
            out[name] = float(result[name])
    return out


def result_object(result: Mapping[str, Any]) -> str:
    """The object a result item is about (TCA state and alarms are kept per object)."""
    if "interface" in result:
        return str(result["interface"])
    return f"{result.get('fromEndPoint')}->{result.get('toEndPoint')}"
