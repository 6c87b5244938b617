"""Performance metrics of MEF 10.4 §8.8 / ITU-T Y.1731 §8 computed from raw OAM results (pure functions).

Units are in the names: ``_us`` microseconds, ``_ratio`` a fraction in ``[0, 1]``.

* **Frame delay (FD)**: per answered frame, the value in :attr:`OamResult.delays_us`: for DMM the two-way
  delay with the responder's residence time removed (the time the frame spent on the path out and back),
  for loopback the plain round-trip time. Reported as min / mean / max and percentiles.
* **Inter-frame delay variation (IFDV)**: ``|FD[i] - FD[j]|`` for consecutive *answered* frame pairs (MEF
  10.4 selects pairs a fixed Δt apart; with periodic sampling that is the next frame). Reported as
  percentiles, ``ifdv_us.p99`` being what an SLS usually bounds.
* **Frame delay range (FDR)**: ``FD percentile(p) - FD min`` (MEF 10.4 §8.8.3).
* **Frame loss ratio (FLR)**: lost / sent; forward (far-end) and backward (near-end) when the session knows
  the direction (SLM, LMM).
* **Availability** (MEF 10.4 §8.8.4, simplified to a per-frame series): the series is cut into Δt windows of
  ``frames_per_window`` frames; a window is *unavailable* when its FLR exceeds ``flr_threshold``; the
  availability state only changes after ``n_consecutive`` windows agree (the sliding-window rule), and
  availability is the share of windows counted available.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

from interlude.domain.southbound import OamResult


def percentile(values: Sequence[float], p: float) -> float:
    """Linear-interpolated percentile (``p`` in 0..100) of an unsorted sequence; NaN when empty."""
    if not values:
        return math.nan
    if not 0 <= p <= 100:
        raise ValueError("p must be within 0..100")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True, slots=True)
class DelayStats:
    """Summary of a delay series (µs). ``count`` = samples; every field is NaN when there are none."""

    count: int
    min_us: float
    mean_us: float
    median_us: float
    p95_us: float
    p99_us: float
    max_us: float

    def to_json(self) -> dict[str, float | int | None]:
        """The CLI / API shape ``{"min", "median", "p99", "max", ...}`` (NaN becomes ``None``)."""

        def clean(x: float) -> float | None:
            return None if math.isnan(x) else round(x, 3)

        return {"count": self.count, "min": clean(self.min_us), "mean": clean(self.mean_us),
                "median": clean(self.median_us), "p95": clean(self.p95_us), "p99": clean(self.p99_us),
                "max": clean(self.max_us)}


def delay_stats(values: Sequence[float]) -> DelayStats:
    """Min / mean / median / p95 / p99 / max of a series."""
    if not values:
        nan = math.nan
        return DelayStats(0, nan, nan, nan, nan, nan, nan)
    return DelayStats(len(values), min(values), sum(values) / len(values), percentile(values, 50),
                      percentile(values, 95), percentile(values, 99), max(values))


def frame_delay(result: OamResult) -> DelayStats:
    """FD statistics of a session (µs)."""
    return delay_stats(result.delays_us)


def ifdv_series_us(delays_us: Sequence[float]) -> list[float]:
    """``|FD[i+1] - FD[i]|`` over consecutive answered frames."""
    return [abs(b - a) for a, b in itertools.pairwise(delays_us)]


def inter_frame_delay_variation(result: OamResult) -> DelayStats:
    """IFDV statistics (µs)."""
    return delay_stats(ifdv_series_us(result.delays_us))


def frame_delay_range_us(result: OamResult, p: float = 99.0) -> float:
    """FDR: the ``p``-th percentile of FD minus the minimum FD (µs); NaN without samples."""
    if not result.delays_us:
        return math.nan
    return percentile(result.delays_us, p) - min(result.delays_us)


@dataclass(frozen=True, slots=True)
class LossStats:
    """Frame loss ratios; directional ratios are ``None`` when the session cannot tell directions."""

    sent: int
    received: int
    flr_ratio: float
    flr_forward_ratio: float | None
    flr_backward_ratio: float | None


def frame_loss(result: OamResult) -> LossStats:
    """FLR over the session; forward FLR counts against frames sent, backward against frames that arrived.

    Loss counts derived from a responder's counters (SLM/LMM) can come out negative when that counter saw
    more frames than this session sent (another initiator reusing the test id, a responder restart): that is
    not negative loss, so the ratios are clamped to [0, 1] rather than reported as nonsense such as -1.
    """
    sent = result.sent
    lost = max(0, sent - result.received)
    flr = lost / sent if sent else math.nan
    forward = backward = None
    if result.forward_lost is not None and sent:
        forward = min(1.0, max(0, result.forward_lost) / sent)
    if result.backward_lost is not None and sent:
        reached = sent - max(0, result.forward_lost or 0)
        backward = min(1.0, max(0, result.backward_lost) / reached) if reached > 0 else math.nan
    return LossStats(sent, result.received, flr, forward, backward)


@dataclass(frozen=True, slots=True)
class AvailabilityStats:
    """Availability over sliding windows: ratio of windows counted available, and the window verdicts."""

    windows: int
    available_windows: int
    availability_ratio: float
    window_flr_ratio: tuple[float, ...]
    window_available: tuple[bool, ...]


def availability(answered: Sequence[bool], *, frames_per_window: int = 10, flr_threshold: float = 0.5,
                 n_consecutive: int = 1) -> AvailabilityStats:
    """MEF 10.4-style availability of a per-frame answered/lost series.

    The state starts available; it flips to unavailable only when ``n_consecutive`` windows in a row are
    high-loss (FLR > threshold), and back when ``n_consecutive`` windows in a row are not. Those ``n``
    windows are counted in the new state (MEF's retroactive rule). A trailing partial window is dropped.
    """
    if frames_per_window < 1 or n_consecutive < 1:
        raise ValueError("frames_per_window and n_consecutive must be >= 1")
    flrs = [1.0 - sum(answered[i:i + frames_per_window]) / frames_per_window
            for i in range(0, len(answered) - frames_per_window + 1, frames_per_window)]
    high = [f > flr_threshold for f in flrs]
    state_available = True
    verdict: list[bool] = []
    for i in range(len(high)):
        verdict.append(state_available)
        window = high[max(0, i - n_consecutive + 1):i + 1]
        if len(window) == n_consecutive and all(w == state_available for w in window):
            state_available = not state_available
            for j in range(i - n_consecutive + 1, i + 1):
                verdict[j] = state_available
    available = sum(verdict)
    ratio = available / len(verdict) if verdict else math.nan
    return AvailabilityStats(len(verdict), available, ratio, tuple(flrs), tuple(verdict))


def result_availability(result: OamResult, **kwargs: float | int) -> AvailabilityStats:
    """:func:`availability` of a session's per-frame series (one window of everything when unknown)."""
    answered = list(result.answered)
    if not answered:
        answered = [True] * result.received + [False] * max(0, result.sent - result.received)
        kwargs = {**kwargs, "frames_per_window": max(1, len(answered))}
    return availability(answered, **kwargs)  # type: ignore[arg-type]


def summary(result: OamResult) -> dict[str, object]:
    """The CLI ``--json`` object for a session (the shapes the OAM docs promise)."""
    kind = result.kind.value
    fd = frame_delay(result).to_json()
    base: dict[str, object] = {"sent": result.sent, "received": result.received}
    loss = frame_loss(result)
    if kind == "loopback":
        base["loss_ratio"] = loss.flr_ratio
        base["rtt_us"] = fd
    elif kind == "delay":
        base["loss_ratio"] = loss.flr_ratio
        base["fd_us"] = fd
        base["ifdv_us"] = inter_frame_delay_variation(result).to_json()
        fdr = frame_delay_range_us(result)
        base["fdr_us"] = None if math.isnan(fdr) else round(fdr, 3)
    elif kind in ("syntheticLoss", "loss"):
        base["flr_forward"] = loss.flr_forward_ratio
        base["flr_backward"] = loss.flr_backward_ratio
        base["forward_lost"] = result.forward_lost
        base["backward_lost"] = result.backward_lost
    elif kind == "linktrace":
        base["hops"] = [{"ttl": h.ttl, "mac": h.mac, "relay_action": h.relay_action} for h in result.hops]
    return base
