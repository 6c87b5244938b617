"""Internet Access bought over Sonata on a real lab (``labs/internet-access``): the order really delivers.

The lab is one Linux PE in a network namespace; the customer edge is the edge namespace behind the free UNI
the order takes, the internet host the edge namespace behind the PE's internet port. After the order
completes, the customer edge takes the address the product names (the second host of its transit /30; the
internet host answers on the first, the partner's side) and:

* reaches the internet host (ping);
* gets an iperf3 (UDP) throughput within 5 % of the ordered bandwidth (the kernel's tbf at the UNI);
* after a Sonata ``modify`` the throughput follows the new bandwidth;
* after ``delete`` the path is cut (the bridge is gone) and the port and the subnet are free again.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp.test_utils import TestClient, TestServer

from interlude.adapters.base import Adapter, AdapterContext
from interlude.adapters.lab import LabAdapter
from interlude.app.runtime import Runtime, RuntimeOptions
from interlude.app.web import create_app
from interlude.lab.builder import Lab
from interlude.sp.buyer import INVENTORY, ORDER, QUOTE, order_body, quote_body
from interlude.topology.model import NodeSpec
from tests.support.bundle import lab_up
from tests.support.lab import require_binaries, require_netns
from tests.support.labkit import addr, make_lab, nsexec
from tests.support.partner import ALPHA, runtime_of
from tests.support.sonata import wait_order_done

pytestmark = pytest.mark.lab

BUNDLE = Path(__file__).resolve().parents[3] / "labs" / "internet-access" / "topology.yaml"
OFFERING = "ia-dedicated"
PLACE = "addr-lab-1"
MEASURED: dict[str, float] = {}
"""The iperf3 figures of the last run (Mbit/s by ordered bandwidth), for a reader with ``pytest -s``."""


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    require_netns()
    require_binaries("iperf3", "ping")
    yield from lab_up(make_lab(yaml.safe_load(BUNDLE.read_text()), tmp_path_factory.mktemp("ia-lab")))


@pytest.fixture
async def client(lab: Lab, tmp_path: Path) -> AsyncIterator[TestClient[Any, Any]]:
    def factory(node: NodeSpec, context: AdapterContext) -> Adapter:
        context.resources["lab-state-dir"] = lab.folder
        return LabAdapter(node, context)

    options = RuntimeOptions(notify_base_delay_s=0.05, poll_interval_s=0.5)
    runtime = Runtime(lab.topology, tmp_path / "ia.db", base_dir=lab.base_dir, state_dir=tmp_path,
                      adapter_factory=factory, options=options)  # fmt: skip
    async with TestClient(TestServer(create_app(runtime))) as c:
        yield c


def edge(lab: Lab, interface: str) -> tuple[str, str]:
    """The namespace and interface behind ``pe1:<interface>`` (the customer's or the internet's side)."""
    wire = lab.require_state().wire_of("pe1", interface)
    end = wire.b if wire.a.node == "pe1" else wire.a
    return end.netns, end.ifname


def iperf_mbps(client_ns: str, server_ns: str, server_ip: str, offered_mbps: float, seconds: int = 4) -> float:
    """UDP throughput from the customer edge to the internet host, as iperf3's receiver measured it.

    The customer offers 20 % more than ordered in full-size datagrams (1472 bytes: no fragmentation); what
    arrives is what the shaper lets through, counted as UDP payload (2.8 % below the frame rate it shapes).
    """
    server = subprocess.Popen(["ip", "netns", "exec", server_ns, "iperf3", "-s", "-1", "-B", server_ip],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        for _ in range(50):
            out = nsexec(client_ns, "iperf3", "-c", server_ip, "-u", "-b", f"{offered_mbps * 1.2:g}M", "-l", "1472",
                         "-t", str(seconds), "-O", "1", "-J", check=False, timeout=seconds + 20)  # fmt: skip
            if out.strip():
                result = json.loads(out)
                if "error" not in result:
                    return float(result["end"]["sum_received"]["bits_per_second"]) / 1e6
            subprocess.run(["sleep", "0.1"], check=False)
        raise AssertionError("iperf3 never connected")
    finally:
        server.wait(timeout=seconds + 30)


def flush(*ends: tuple[str, str]) -> None:
    """Remove the test addresses again."""
    for ns, ifname in ends:
        subprocess.run(["ip", "-n", ns, "addr", "flush", "dev", ifname], capture_output=True)


def pings(ns: str, ip: str) -> bool:
    return subprocess.run(["ip", "netns", "exec", ns, "ping", "-c", "2", "-W", "1", "-i", "0.2", ip],
                          capture_output=True).returncode == 0  # fmt: skip


async def order(client: TestClient[Any, Any], body: dict[str, Any]) -> dict[str, Any]:
    resp = await client.post(f"{ORDER}/productOrder", json=body, headers=ALPHA)
    assert resp.status == 201, await resp.text()
    return await wait_order_done(client, (await resp.json())["id"], ALPHA, timeout=30)


async def test_ordered_internet_access_delivers_its_bandwidth(lab: Lab, client: TestClient[Any, Any]) -> None:
    done = await order(client, order_body(OFFERING, PLACE, 50))
    assert done["state"] == "completed", done["productOrderItem"][0].get("terminationError")
    [product] = await (await client.get(f"{INVENTORY}/product", params={"productOrderId": done["id"]},
                                        headers=ALPHA)).json()  # fmt: skip
    product = await (await client.get(f"{INVENTORY}/product/{product['id']}", headers=ALPHA)).json()
    transit = product["productConfiguration"]["transitAddresses"]["serviceProviderIpv4TransitAddress"]
    subnet = ipaddress.IPv4Network(transit)
    partner_ip, customer_ip = (str(h) for h in list(subnet.hosts())[:2])
    ce_ns, ce_if = edge(lab, "uni1")
    inet_ns, inet_if = edge(lab, "inet0")
    await asyncio.to_thread(addr, ce_ns, ce_if, f"{customer_ip}/{subnet.prefixlen}")
    await asyncio.to_thread(addr, inet_ns, inet_if, f"{partner_ip}/{subnet.prefixlen}")
    try:
        assert await asyncio.to_thread(pings, ce_ns, partner_ip)
        measured = await asyncio.to_thread(iperf_mbps, ce_ns, inet_ns, partner_ip, 50)
        assert abs(measured - 50) <= 2.5, f"{measured:.2f} Mbit/s for 50 ordered"
        MEASURED["50"] = measured
        # modify to 20 Mbit/s: the measured rate follows
        quote = await (await client.post(f"{QUOTE}/quote", json=quote_body(OFFERING, "", 20, product_id=product["id"]),
                                         headers=ALPHA)).json()  # fmt: skip
        changed = await order(client, order_body(OFFERING, None, 20, quote=(quote["id"], "1"),
                                                 product_id=product["id"], action="modify"))  # fmt: skip
        assert changed["state"] == "completed", changed
        measured = await asyncio.to_thread(iperf_mbps, ce_ns, inet_ns, partner_ip, 20)
        assert abs(measured - 20) <= 1.0, f"{measured:.2f} Mbit/s for 20 ordered"
        MEASURED["20"] = measured
        # delete: the path is cut, the port and the subnet are free for the next order
        gone = await order(client, order_body(OFFERING, None, 0, product_id=product["id"], action="delete"))
        assert gone["state"] == "completed", gone
        assert not await asyncio.to_thread(pings, ce_ns, partner_ip)
        assert not [s for s in runtime_of(client).inventory.services() if s.external_id == product["id"]
                    and s.state.value != "terminated"]  # fmt: skip
        again = await order(client, order_body(OFFERING, PLACE, 10))
        assert again["state"] == "completed"
        [reused] = await (await client.get(f"{INVENTORY}/product", params={"productOrderId": again["id"]},
                                           headers=ALPHA)).json()  # fmt: skip
        reused = await (await client.get(f"{INVENTORY}/product/{reused['id']}", headers=ALPHA)).json()
        assert reused["productConfiguration"]["transitAddresses"]["serviceProviderIpv4TransitAddress"] == str(subnet)
    finally:
        await asyncio.to_thread(flush, (ce_ns, ce_if), (inet_ns, inet_if))
        print(f"iperf3 Mbit/s by ordered Mbit/s: {MEASURED}")
