"""The emulator path: the real OAM sessions over the in-memory link report the impairments configured."""

from __future__ import annotations

import math
import time
from pathlib import Path

import pytest

from interlude.adapters.base import AdapterContext
from interlude.adapters.emulated.adapter import EmulatedAdapter
from interlude.domain import metrics
from interlude.domain.southbound import MepSpec, OamKind, OamRequest
from interlude.oam.runner import run_emulated
from interlude.oam.transport import PathImpairment
from interlude.topology.loader import bundled_topology_path, load_topology
from interlude.topology.model import Impairment

MEP = MepSpec(name="a", node="n1", interface="e0", mep_id=1)
REMOTE = MepSpec(name="b", node="n2", interface="e0", mep_id=2, mac="02:00:00:00:0b:02")


def binomial_99(n: int, p: float) -> tuple[float, float]:
    """99 % band for the count of successes of Binomial(n, p) (normal approximation)."""
    sd = math.sqrt(n * p * (1 - p))
    return n * p - 2.576 * sd, n * p + 2.576 * sd


async def test_delay_reports_two_way_path_delay_and_is_fast() -> None:
    request = OamRequest(kind=OamKind.DELAY, mep=MEP, remote=REMOTE, count=100, interval_s=0.1)
    started = time.perf_counter()
    result = await run_emulated(request, PathImpairment(delay_ms=5.0, jitter_ms=1.0), seed=3)
    assert time.perf_counter() - started < 1.0  # virtual clock: not 100 x 100 ms
    assert result.received == 100
    fd = metrics.frame_delay(result)
    assert fd.min_us >= 10_000 and fd.max_us <= 12_000  # 2 x (5 ms + [0, 1] ms jitter), residence removed
    assert 10_700 <= fd.mean_us <= 11_300
    assert result.ended_at - result.started_at == pytest.approx(9.9 + 0.012, abs=0.01)  # virtual duration


async def test_loopback_rtt_keeps_responder_time_and_loss_is_binomial() -> None:
    request = OamRequest(kind=OamKind.LOOPBACK, mep=MEP, remote=REMOTE, count=2000, interval_s=0.01)
    result = await run_emulated(request, PathImpairment(delay_ms=2.0, loss_ratio=0.1, residence_us=50), seed=1)
    assert set(result.delays_us) == {4050.0}
    low, high = binomial_99(2000, 0.81)
    assert low <= result.received <= high


async def test_synthetic_loss_directions() -> None:
    request = OamRequest(kind=OamKind.SYNTHETIC_LOSS, mep=MEP, remote=REMOTE, count=2000, interval_s=0.01)
    result = await run_emulated(request, PathImpairment(loss_ratio=0.2), seed=2)
    assert result.forward_lost is not None and result.backward_lost is not None
    low, high = binomial_99(2000, 0.2)
    assert low <= result.forward_lost <= high
    low, high = binomial_99(2000 - result.forward_lost, 0.2)
    assert low <= result.backward_lost <= high


@pytest.fixture
def adapter(tmp_path: Path) -> EmulatedAdapter:
    topo = load_topology(bundled_topology_path())
    context = AdapterContext(topology=topo, base_dir=tmp_path, state_dir=tmp_path)
    return EmulatedAdapter(topo.node("pe1"), context)


async def test_emulated_adapter_runs_sessions_with_network_impairments(adapter: EmulatedAdapter) -> None:
    await adapter.set_impairment("up1", Impairment(delay_ms=5.0))
    mep = MepSpec(name="m1", node="pe1", interface="uni1", mep_id=1)
    remote = MepSpec(name="m2", node="agg1", interface="enni1", mep_id=2)
    result = await adapter.run_oam(OamRequest(kind=OamKind.DELAY, mep=mep, remote=remote, count=20))
    assert result.received == 20
    assert all(d == pytest.approx(10_000.0) for d in result.delays_us)
    trace = await adapter.run_oam(OamRequest(kind=OamKind.LINKTRACE, mep=mep, remote=remote, count=1))
    assert trace.hops and trace.hops[-1].mac == adapter.network.port("agg1", "enni1").mac
    far = MepSpec(name="m3", node="pe2", interface="uni1", mep_id=3)
    trace = await adapter.run_oam(OamRequest(kind=OamKind.LINKTRACE, mep=mep, remote=far, count=1))
    assert len(trace.hops) == 2 and trace.hops[0].relay_action == 2 and trace.hops[0].ttl == 63
    await adapter.set_impairment("up1", Impairment(down=True))
    cut = await adapter.run_oam(OamRequest(kind=OamKind.LOOPBACK, mep=mep, remote=remote, count=5))
    assert (cut.sent, cut.received) == (5, 0)


async def test_zero_delay_ping_pong_keeps_delay_matching() -> None:
    request = OamRequest(kind=OamKind.DELAY, mep=MEP, remote=REMOTE, count=50, interval_s=0.0)
    result = await run_emulated(request, PathImpairment(residence_us=0.0), seed=1)
    assert result.received == 50 and max(result.delays_us) < 1.0
