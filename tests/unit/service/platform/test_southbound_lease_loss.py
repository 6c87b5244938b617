"""A node's follower stops when its lease can no longer be renewed, before the lease could pass on.

The leases live in the shared database; when it becomes unreachable the holder cannot tell whether another
process has taken the node, so it stops following (half a lease after its last renewal, before that lease
could pass on), keeps trying, and follows again once a renewal succeeds.
"""

from __future__ import annotations

from interlude.errors import StoreError
from interlude.service.platform.bus import EventBus
from interlude.service.platform.network import Network
from interlude.service.platform.southbound import SouthboundIngest
from interlude.topology.loader import parse_topology
from tests.support.wait import wait_until
from tests.unit.service.platform.test_stale_samples import CachingAgent, Ports

LEASE_S = 0.4


class FlakyLeases:
    """Leases always granted while the database is reachable; every call fails while it is not."""

    def __init__(self) -> None:
        self.reachable = True
        self.calls = 0

    async def acquire_lease(self, name: str, holder: str, ttl_s: float) -> bool:
        self.calls += 1
        if not self.reachable:
            raise StoreError("connection refused")
        return True

    async def release_lease(self, name: str, holder: str) -> None:
        if not self.reachable:
            raise StoreError("connection refused")

    async def lease_holder(self, name: str) -> str | None:
        return None


async def test_follower_stops_when_renewals_fail_and_resumes_when_one_succeeds() -> None:
    topo = parse_topology({"name": "t", "nodes": {"pe1": {"kind": "snmp", "interfaces": {"uni1": {}}}}})
    leases = FlakyLeases()
    agent = CachingAgent(topo.node("pe1"), [1000.0])
    ingest = SouthboundIngest(Network(topo, {"pe1": agent}), Ports(), EventBus(), 60.0, leases, LEASE_S)
    await ingest.start()
    try:
        await wait_until(lambda: ingest.owned == {"pe1"}, what="the node followed")
        leases.reachable = False
        await wait_until(lambda: not ingest.owned, timeout=10, what="the follower to stop")
        calls = leases.calls
        await wait_until(lambda: leases.calls > calls + 1, what="renewals still tried")
        assert not ingest.owned
        leases.reachable = True
        await wait_until(lambda: ingest.owned == {"pe1"}, what="the node followed again")
    finally:
        await ingest.stop()
