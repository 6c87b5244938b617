"""Faults through the lab adapter, end to end: a cut link comes back after the clear (traffic and OAM), 0-100 %
loss works, and CCM loss between two lab MEPs surfaces as ``ccmLoss`` / ``ccmRestored`` events.

One small lab of two ``lab`` nodes (no agents but the MEP responders), joined by a plain veth link and by a
link through the delay relay, with a MEP at each end of each link.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from interlude.adapters import lab as lab_adapter
from interlude.adapters.base import AdapterContext
from interlude.adapters.lab import LabAdapter
from interlude.domain.southbound import EventKind, MepSpec, OamKind, OamRequest, OamResult, SouthboundEvent
from interlude.errors import ValidationError
from interlude.lab.builder import Lab
from interlude.oam.runner import run_oam_session
from interlude.topology.model import Impairment
from tests.support.lab import require_netns
from tests.support.labkit import addr, leftovers, make_lab, nsexec

pytestmark = pytest.mark.lab

CCM_S = 0.1

TOPOLOGY = {
    "name": "faults",
    "nodes": {
        "pe1": {"kind": "lab", "interfaces": {"up1": {}, "up2": {}, "up3": {}}},
        "pe2": {"kind": "lab", "interfaces": {"dn1": {}, "dn2": {}, "dn3": {}}},
    },
    "links": [
        {"endpoints": ["pe1:up1", "pe2:dn1"]},
        {"endpoints": ["pe1:up2", "pe2:dn2"], "impairment": {"delay_ms": 1}},
        {"endpoints": ["pe1:up3", "pe2:dn3"], "impairment": {"delay_ms": 2}},
    ],
    "meps": {
        "a1": {"node": "pe1", "interface": "up1", "mep_id": 1, "meg_id": "plain", "ccm_interval_s": CCM_S},
        "b1": {"node": "pe2", "interface": "dn1", "mep_id": 2, "meg_id": "plain", "ccm_interval_s": CCM_S},
        "a2": {"node": "pe1", "interface": "up2", "mep_id": 3, "meg_id": "relayed", "ccm_interval_s": CCM_S},
        "b2": {"node": "pe2", "interface": "dn2", "mep_id": 4, "meg_id": "relayed", "ccm_interval_s": CCM_S},
    },
}

LINKS = {  # near interface on pe1 -> (near MEP, far MEP, pe1 address, pe2 address, pe2 interface)
    "up1": ("a1", "b1", "192.0.2.1/30", "192.0.2.2", "dn1"),
    "up2": ("a2", "b2", "192.0.2.5/30", "192.0.2.6", "dn2"),
}


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    require_netns()
    built = make_lab(TOPOLOGY, tmp_path_factory.mktemp("faults-lab"))
    state = built.up()
    try:
        for near, (_, _, cidr, far_ip, far_if) in LINKS.items():
            addr(state.nodes["pe1"].namespace, near, cidr)
            addr(state.nodes["pe2"].namespace, far_if, f"{far_ip}/30")
        yield built
    finally:
        built.down()
        assert leftovers(built.pfx) == []


def _context(lab: Lab, tmp: Path) -> AdapterContext:
    ctx = AdapterContext(topology=lab.topology, base_dir=lab.base_dir, state_dir=tmp)
    ctx.resources["lab-state-dir"] = lab.folder
    return ctx


@pytest.fixture
async def pe1(lab: Lab, tmp_path: Path) -> AsyncIterator[LabAdapter]:
    adapter = LabAdapter(lab.topology.node("pe1"), _context(lab, tmp_path))
    await adapter.open()
    yield adapter
    await adapter.close()


@pytest.fixture
async def pe2(lab: Lab, tmp_path: Path) -> AsyncIterator[LabAdapter]:
    adapter = LabAdapter(lab.topology.node("pe2"), _context(lab, tmp_path))
    await adapter.open()
    yield adapter
    await adapter.close()


def _mep(lab: Lab, name: str) -> MepSpec:
    m = lab.topology.meps[name]
    return MepSpec(name, m.node, m.interface, m.mep_id, m.level, m.vlan)


async def _loopback(adapter: LabAdapter, lab: Lab, near: str, count: int = 5) -> int:
    mep, remote, *_ = LINKS[near]
    request = OamRequest(
        kind=OamKind.LOOPBACK, mep=_mep(lab, mep), remote=_mep(lab, remote), count=count, interval_s=0.02,
        timeout_s=0.5,
    )
    result = await asyncio.wait_for(adapter.run_oam(request), 20)
    return result.received


def _ping(lab: Lab, far_ip: str) -> bool:
    out = nsexec(lab.require_state().nodes["pe1"].namespace, "ping", "-c", "3", "-i", "0.1", "-W", "1", far_ip,
                 check=False)
    return " 0% packet loss" in out


@pytest.mark.parametrize("near", ["up1", "up2"], ids=["veth", "relay"])
async def test_link_comes_back_after_a_down_fault_is_cleared(pe1: LabAdapter, lab: Lab, near: str) -> None:
    far_ip = LINKS[near][3]
    assert await _loopback(pe1, lab, near) == 5
    await pe1.set_impairment(near, Impairment(down=True))
    try:
        assert await _loopback(pe1, lab, near, count=3) == 0
    finally:
        await pe1.set_impairment(near, Impairment())
    deadline = time.monotonic() + 5
    received = 0
    while time.monotonic() < deadline and received < 5:
        received = await _loopback(pe1, lab, near)
    assert received == 5, "OAM loopback still fails after the down fault was cleared"
    assert await asyncio.to_thread(_ping, lab, far_ip), "IP traffic still fails after the clear"


@pytest.mark.parametrize("percent", [0.0, 0.004, 33.3, 99.99, 100.0])
async def test_every_loss_percentage_applies(pe1: LabAdapter, lab: Lab, percent: float) -> None:
    try:
        await pe1.set_impairment("up1", Impairment(loss_percent=percent))
        received = await _loopback(pe1, lab, "up1", count=20)
        if percent == 100.0:
            assert received == 0
        elif percent == 0.0:
            assert received == 20
    finally:
        await pe1.set_impairment("up1", Impairment())
    assert await _loopback(pe1, lab, "up1") == 5


async def test_bad_loss_is_a_clear_validation_error(pe1: LabAdapter) -> None:
    with pytest.raises(ValidationError, match="loss_percent"):
        await pe1.set_impairment("up1", Impairment.model_construct(loss_percent=150.0))
    with pytest.raises(ValidationError, match="loss_percent"):
        await pe1.set_impairment("up1", Impairment.model_construct(loss_percent=float("nan")))


async def _next(stream: AsyncIterator[SouthboundEvent], kind: EventKind, interface: str) -> SouthboundEvent:
    async for event in stream:
        if event.kind is kind and event.interface == interface:
            return event
    raise AssertionError("event stream ended")


@pytest.mark.parametrize(
    "cut", [Impairment(down=True), Impairment(loss_percent=100.0)], ids=["link-down", "loss-100"]
)
async def test_ccm_loss_and_restore_are_events(pe1: LabAdapter, pe2: LabAdapter, lab: Lab, cut: Impairment) -> None:
    stream = pe2.events()
    waiter = asyncio.ensure_future(_next(stream, EventKind.CCM_LOSS, "dn1"))
    await asyncio.sleep(0.5)  # subscribed, and the MEPs have exchanged CCMs
    assert not waiter.done()
    before = time.time()
    await pe1.set_impairment("up1", cut)  # CCMs stop arriving at pe2:dn1
    try:
        loss = await asyncio.wait_for(waiter, 3.5 * CCM_S + 1.5)
        assert loss.source == "oam" and loss.node == "pe2"
        assert loss.details["mep_id"] == 2 and loss.details["remote_mep_id"] == 1
        # LOC = last CCM seen + 3.5 intervals; the last one arrived at most one interval before the drop began
        assert 2.5 * CCM_S - 0.05 <= loss.at - before <= 3.5 * CCM_S + 1.0
    finally:
        await pe1.set_impairment("up1", Impairment())
    restored = await asyncio.wait_for(_next(stream, EventKind.CCM_RESTORED, "dn1"), 3.0)
    assert restored.source == "oam" and restored.details["remote_mep_id"] == 1
    await stream.aclose()  # type: ignore[attr-defined]


async def test_each_relay_has_its_own_control_file_and_log(pe1: LabAdapter, lab: Lab) -> None:
    from interlude.lab.relay import RelayConfig, read_control

    relays = [w.relay for w in lab.require_state().wires if w.relay is not None]
    assert len(relays) == 2
    assert len({r.control for r in relays}) == 2 and len({r.log for r in relays}) == 2
    for relay in relays:  # SCHED_FIFO by default (docs/labs.md, "Delay accuracy")
        assert relay.pid is not None and os.sched_getscheduler(relay.pid) == os.SCHED_FIFO
    by_link = {w.id: w.relay for w in lab.require_state().wires if w.relay is not None}
    before = read_control(Path(by_link["link1"].control), RelayConfig()).delay_ms
    await pe1.set_impairment("up3", Impairment(delay_ms=3))
    try:
        assert read_control(Path(by_link["link2"].control), RelayConfig()).delay_ms == 3
        assert read_control(Path(by_link["link1"].control), RelayConfig()).delay_ms == before  # untouched
    finally:
        await pe1.set_impairment("up3", Impairment(delay_ms=2))


async def test_faults_api_loss_100_on_a_lab_link_is_201_and_drops_everything(
    pe1: LabAdapter, lab: Lab, tmp_path: Path
) -> None:
    from aiohttp.test_utils import TestClient, TestServer

    from interlude.adapters.base import Adapter
    from interlude.app.runtime import Runtime, RuntimeOptions
    from interlude.app.web import create_app
    from interlude.topology.model import NodeSpec

    def factory(node: NodeSpec, context: AdapterContext) -> Adapter:
        context.resources["lab-state-dir"] = lab.folder
        return LabAdapter(node, context)

    options = RuntimeOptions(provision_seed=False, run_orders=False)
    runtime = Runtime(lab.topology, tmp_path / "lab.db", base_dir=lab.base_dir, state_dir=tmp_path,
                      adapter_factory=factory, options=options)  # fmt: skip
    async with TestClient(TestServer(create_app(runtime))) as client:
        body = {"type": "loss", "node": "pe1", "interface": "up1", "lossPercent": 100}
        resp = await client.post("/interlude/v1/faults", json=body)
        assert resp.status == 201, await resp.text()
        fault = await resp.json()
        try:
            assert await _loopback(pe1, lab, "up1", count=10) == 0
        finally:
            resp = await client.delete(f"/interlude/v1/faults/{fault['id']}")
            assert resp.status == 204, await resp.text()
        assert await _loopback(pe1, lab, "up1") == 5


async def test_sessions_address_the_remote_mep_by_unicast(
    pe1: LabAdapter, lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A MEP spec without a MAC still reaches exactly the remote MEP: the lab resolves its port's MAC, so the
    session ends when every frame is answered instead of waiting out the group-address reply timeout."""
    seen: list[str | None] = []

    async def spy(request: OamRequest, **kw: Any) -> OamResult:
        seen.append(kw.get("target_mac"))
        return await run_oam_session(request, **kw)

    monkeypatch.setattr(lab_adapter, "run_oam_session", spy)
    for kind in (OamKind.LOOPBACK, OamKind.DELAY, OamKind.SYNTHETIC_LOSS):
        request = OamRequest(kind=kind, mep=_mep(lab, "a1"), remote=_mep(lab, "b1"), count=5, interval_s=0.02)
        result = await asyncio.wait_for(pe1.run_oam(request), 20)
        assert result.received == 5, kind
    state = lab.require_state()
    far = state.mep_port("pe2", "dn1")
    far_mac = nsexec(far.netns, "cat", f"/sys/class/net/{far.ifname}/address").strip()
    assert seen == [far_mac] * 3
