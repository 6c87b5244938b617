"""``/interlude/v1/faults`` on a served lab reaches every node, not only ``lab`` nodes.

The ``labs/two-site-eline`` bundle is served as ``interlude serve`` does it: one adapter per node *kind*
through the registry (``snmp`` over the management network to the lab's snmpd, ``netconf`` to its netconfd,
``lab`` through netlink). The ``snmp`` and ``netconf`` adapters have no ImpairmentControl; the runtime's hook
(:mod:`interlude.lab.impairments`) lets the lab impair their links: a ``linkDown`` on the SNMP node's UNI
really drops the kernel link (its carrier, as sysfs shows inside the namespace), the E-Line goes DISABLED in
the inventory (read back over SNMP), and DELETE restores both; a ``delay`` on the NETCONF node's uplink
inserts the relay at run time, and ping across the Internet Access service measures it.

The tests without the ``lab`` marker check the hook's wiring without root: no hook on an emulated topology,
None without a recorded running lab (so the fault API keeps its capability error), the lab's controller when
one is recorded up.
"""

from __future__ import annotations

import asyncio
import re
import statistics
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from aiohttp.test_utils import TestClient, TestServer

from interlude.adapters.base import AdapterContext
from interlude.api.common import RUNTIME as RUNTIME_KEY
from interlude.app.runtime import Runtime, RuntimeOptions
from interlude.app.web import create_app
from interlude.domain.model import OperStatus
from interlude.domain.southbound import Capability
from interlude.lab.builder import Lab
from interlude.topology.model import NodeSpec
from tests.support.bundle import BUNDLE, bundle_lab_up, lab_runtime
from tests.support.labkit import addr, nsexec, sysfs

FAULTS = "/interlude/v1/faults"
INVENTORY = "/mefApi/interlude/serviceInventory/v2"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    yield from bundle_lab_up(tmp_path_factory.mktemp("serve-faults"), "ping", own_trap_port=True)


@pytest.fixture
async def client(lab: Lab, tmp_path: Path) -> AsyncIterator[TestClient[Any, Any]]:
    runtime = lab_runtime(lab, tmp_path, "serve.db", by_kind=True)  # by kind, as `interlude serve` does
    assert Capability.IMPAIRMENT not in runtime.adapters["acc-snmp"].capabilities
    assert Capability.IMPAIRMENT not in runtime.adapters["acc-netconf"].capabilities
    async with TestClient(TestServer(create_app(runtime))) as c:
        yield c


async def _until(predicate: Any, timeout: float) -> None:
    async with asyncio.timeout(timeout):
        while not await asyncio.to_thread(predicate):
            await asyncio.sleep(0.1)


def _oper(client: TestClient[Any, Any], service_id: str) -> OperStatus:
    inventory = client.app[RUNTIME_KEY].inventory
    oper: OperStatus = inventory.with_oper(inventory.indexed(service_id)).oper
    return oper


def _states(body: Any) -> Iterator[str]:
    if isinstance(body, dict):
        for key, value in body.items():
            if key == "operationalState" and isinstance(value, dict):
                yield str(value.get("state"))
            else:
                yield from _states(value)
    elif isinstance(body, list):
        for value in body:
            yield from _states(value)


async def _api_oper(client: TestClient[Any, Any], service_id: str) -> set[str]:
    resp = await client.get(f"{INVENTORY}/service/{service_id}", headers={"X-Interlude-Buyer": "sp-alpha"})
    assert resp.status == 200, await resp.text()
    return set(_states(await resp.json()))


@pytest.mark.lab
async def test_link_down_on_the_snmp_node_cuts_the_kernel_link_and_disables_the_eline(
    client: TestClient[Any, Any], lab: Lab
) -> None:

    ns = lab.require_state().nodes["acc-snmp"].namespace
    assert sysfs(ns, "uni1", "carrier") == "1"
    await _until(lambda: _oper(client, "ovc-1001") is OperStatus.ENABLED, 10)

    resp = await client.post(FAULTS, json={"type": "linkDown", "node": "acc-snmp", "interface": "uni1"})
    fault = await resp.json()
    assert resp.status == 201, fault
    try:
        assert sysfs(ns, "uni1", "carrier") == "0"  # the kernel link really is down, as seen inside the node
        assert sysfs(ns, "uni1", "operstate") in ("down", "lowerlayerdown")
        assert [f["id"] for f in await (await client.get(FAULTS)).json()] == [fault["id"]]
        # read back over SNMP (snmpd's IF-MIB), first by the fault's own refresh, else by the poll
        await _until(lambda: _oper(client, "ovc-1001") is OperStatus.DISABLED, 15)
        assert _oper(client, "ia-2001") is OperStatus.ENABLED  # the other service does not cross uni1
        # and the Service Inventory API says so (awaited, not sampled once: on a loaded box the SNMP poll can
        # read snmpd's ~3 s IF-MIB cache from before the cut right after the fault's own refresh)
        async with asyncio.timeout(15):
            while await _api_oper(client, "ovc-1001") != {"DISABLED"}:
                await asyncio.sleep(0.2)
    finally:
        deleted = await client.delete(f"{FAULTS}/{fault['id']}")
    assert deleted.status == 204
    assert sysfs(ns, "uni1", "carrier") == "1"
    await _until(lambda: _oper(client, "ovc-1001") is OperStatus.ENABLED, 15)
    async with asyncio.timeout(15):  # the API shows the stored state, written just after the port's
        while await _api_oper(client, "ovc-1001") != {"ENABLED"}:
            await asyncio.sleep(0.2)
    assert await (await client.get(FAULTS)).json() == []


def _ping_ms(src_ns: str, dst: str, count: int = 15) -> float:

    out = nsexec(src_ns, "ping", "-c", str(count), "-i", "0.05", "-W", "2", dst, timeout=30)
    rtts = [float(m) for m in re.findall(r"time=([\d.]+) ms", out)]
    assert len(rtts) >= count - 1, out
    return statistics.median(rtts)


@pytest.mark.lab
async def test_delay_on_the_netconf_node_measures_true(client: TestClient[Any, Any], lab: Lab) -> None:

    state = lab.require_state()
    # ia-2001 bridges acc-netconf:uni1 through up1 (the link the fault delays) to agg1:inet0: ping between
    # the two edge namespaces crosses it.
    a = state.wire_of("acc-netconf", "uni1").b
    b = state.wire_of("agg1", "inet0").b
    addr(a.netns, a.ifname, "192.0.2.1/30")
    addr(b.netns, b.ifname, "192.0.2.2/30")
    before = await asyncio.to_thread(_ping_ms, a.netns, "192.0.2.2")
    assert before < 3.0, before

    resp = await client.post(FAULTS, json={"type": "delay", "node": "acc-netconf", "interface": "up1", "delayMs": 10})
    fault = await resp.json()
    assert resp.status == 201, fault
    try:
        assert lab.require_state().wire_of("acc-netconf", "up1").relay is not None  # inserted at run time
        delayed = await asyncio.to_thread(_ping_ms, a.netns, "192.0.2.2")
        assert 19.5 <= delayed <= 21.0 + before, delayed  # 10 ms each way through the relay
    finally:
        deleted = await client.delete(f"{FAULTS}/{fault['id']}")
    assert deleted.status == 204
    after = await asyncio.to_thread(_ping_ms, a.netns, "192.0.2.2")
    assert after < 3.0, after


@pytest.mark.lab
async def test_an_unknown_interface_is_the_same_422_as_before(client: TestClient[Any, Any]) -> None:
    resp = await client.post(FAULTS, json={"type": "linkDown", "node": "acc-netconf", "interface": "nope0"})
    assert resp.status == 422, await resp.text()
    assert "referenceNotFound" in await resp.text()


# ----------------------------------------------------------------------------------------------- the hook, no root


class _NoImpairment:
    """An adapter that can do nothing (as a real SNMP/NETCONF device cannot impair its links)."""

    kind: ClassVar[str] = "snmp"

    def __init__(self, node: NodeSpec, context: AdapterContext) -> None:
        self.node = node

    @property
    def capabilities(self) -> frozenset[Capability]:
        return frozenset()

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        pass


def _bundle_topology() -> Any:
    from interlude.topology.loader import load_topology

    return load_topology(BUNDLE / "topology.yaml")


def _record(folder: Path, status: str) -> None:
    from interlude.lab.state import LabState, NodeState

    state = LabState(name="two-site-eline", prefix="tse", state_dir=str(folder), subnet="10.250.0.0/24",
                     status=status)  # type: ignore[arg-type]  # fmt: skip
    state.nodes["acc-snmp"] = NodeState(name="acc-snmp", kind="snmp", namespace="iltse-acc-snmp")
    state.save()


def test_the_hook_answers_only_for_a_recorded_running_lab(tmp_path: Path) -> None:
    from interlude.lab.impairments import LabImpairmentControl, impairment_control_for

    topology, lab_dir = _bundle_topology(), tmp_path / "lab"
    assert impairment_control_for("acc-snmp", topology, tmp_path, lab_dir) is None  # no lab recorded
    _record(tmp_path / "lab", "failed")
    assert impairment_control_for("acc-snmp", topology, tmp_path, lab_dir) is None  # recorded, not up
    _record(tmp_path / "lab", "up")
    ctl = impairment_control_for("acc-snmp", topology, tmp_path, lab_dir)
    assert isinstance(ctl, LabImpairmentControl) and ctl.state_dir == tmp_path / "lab"
    assert impairment_control_for("acc-netconf", topology, tmp_path, lab_dir) is None  # not a node of that lab
    (tmp_path / "lab" / "state.json").write_text("{not json")
    assert impairment_control_for("acc-snmp", topology, tmp_path, lab_dir) is None  # unreadable: no crash


async def test_faults_route_through_the_hook_and_keep_the_capability_error_without_it(tmp_path: Path) -> None:
    from interlude.errors import CapabilityError
    from interlude.topology.model import Impairment

    runtime = Runtime(_bundle_topology(), tmp_path / "f.db", base_dir=BUNDLE, state_dir=tmp_path,
                      adapter_factory=_NoImpairment,
                      options=RuntimeOptions(provision_seed=False, run_orders=False, run_notifier=False))  # fmt: skip
    assert runtime.faults.impairment_fallback is not None  # some adapter lacks ImpairmentControl
    runtime.context.resources["lab-state-dir"] = tmp_path / "no-lab"  # never a real lab of this name
    await runtime.start()
    try:
        with pytest.raises(CapabilityError):  # no lab of this topology is up: as before
            await runtime.faults.inject("linkDown", "acc-snmp", "uni1")
        assert await runtime.faults.list() == []
        applied: list[tuple[str, str, Impairment]] = []

        class Recorder:
            def __init__(self, node: str) -> None:
                self.node = node

            async def set_impairment(self, interface: str, impairment: Impairment) -> None:
                applied.append((self.node, interface, impairment))

        runtime.faults.impairment_fallback = Recorder
        fault = await runtime.faults.inject("delay", "acc-netconf", "up1", delay_ms=7)
        await runtime.faults.clear(fault.id)
        assert applied == [("acc-netconf", "up1", Impairment(delay_ms=7)), ("acc-netconf", "up1", Impairment())]
    finally:
        await runtime.stop()


def test_an_emulated_topology_gets_no_hook(tmp_path: Path) -> None:
    from interlude.topology.loader import bundled_topology_path, load_topology

    runtime = Runtime(load_topology(bundled_topology_path()), tmp_path / "e.db", state_dir=tmp_path)
    assert runtime.faults.impairment_fallback is None  # every emulated adapter impairs by itself


@pytest.mark.lab
async def test_a_restart_puts_back_ports_shut_out_of_band(lab: Lab, tmp_path: Path) -> None:
    """Between two runs of the partner, someone shuts the UNIs of the SNMP and the NETCONF node with ``ip``:
    the next start reads that through snmpd and netconfd and brings them up again (``reapply``)."""
    state = lab.require_state()
    for node in ("acc-snmp", "acc-netconf"):
        nsexec(state.nodes[node].namespace, "ip", "link", "set", "uni1", "down")
    # snmpd answers IF-MIB from a cache of a few seconds: the shut port is on the device once snmpd says so.
    snmp_ns = state.nodes["acc-snmp"].namespace
    community = (lab.base_dir / "secrets" / "snmp-community").read_text().strip()
    ifindex = nsexec(snmp_ns, "cat", "/sys/class/net/uni1/ifindex").strip()
    admin_oid = f"1.3.6.1.2.1.2.2.1.7.{ifindex}"
    get = ("snmpget", "-M", "/dev/null", "-v2c", "-c", community, "-On", "-Oqv", "127.0.0.1", admin_oid)
    await _until(lambda: nsexec(snmp_ns, *get).strip() in ("2", "down"), timeout=15)
    runtime = lab_runtime(lab, tmp_path, "reconcile.db", by_kind=True)
    try:
        async with TestClient(TestServer(create_app(runtime))):
            report = runtime.reconciler.last
            assert report is not None
            found = {d.subject: (d.actual, d.action) for d in report.drifts}
            assert found == {"acc-snmp:uni1": ("down", "reapplied"), "acc-netconf:uni1": ("down", "reapplied")}
            for node in ("acc-snmp", "acc-netconf"):
                flags = nsexec(state.nodes[node].namespace, "ip", "-o", "link", "show", "uni1").split("<", 1)[1]
                assert ",UP" in flags.split(">", 1)[0], (node, flags)
    finally:
        for node in ("acc-snmp", "acc-netconf"):
            nsexec(state.nodes[node].namespace, "ip", "link", "set", "uni1", "up")
