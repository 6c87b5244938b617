"""Link events from two producers (polling, notifications) are reported once per change."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from interlude.adapters.base import AdapterContext
from interlude.adapters.netconf.adapter import NetconfAdapter
from interlude.domain.southbound import EventKind, OperState, SouthboundEvent
from interlude.topology.loader import parse_topology


@pytest.fixture
def adapter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> NetconfAdapter:
    monkeypatch.setenv("NC_PW", "x")
    topo = parse_topology(
        {
            "name": "t",
            "nodes": {
                "r1": {
                    "kind": "netconf",
                    "address": "192.0.2.1",
                    "settings": {"profile": "yuma123", "hostkey_policy": "insecure", "interface_map": {"uni1": "e1"}},
                    "credentials": {"password": {"env": "NC_PW"}},
                    "interfaces": {"uni1": {}},
                }
            },
        }
    )
    return NetconfAdapter(topo.node("r1"), AdapterContext(topo, tmp_path, tmp_path))


def published(adapter: NetconfAdapter) -> asyncio.Queue[SouthboundEvent]:
    queue: asyncio.Queue[SouthboundEvent] = asyncio.Queue()
    adapter._subscribers.append(queue)
    return queue


async def test_first_poll_is_a_baseline_and_each_change_is_reported_once(adapter: NetconfAdapter) -> None:
    queue = published(adapter)
    adapter._link_changed("e1", OperState.UP, "poll", 1.0)  # baseline
    adapter._link_changed("e1", OperState.DOWN, "netconf-notification", 2.0)  # the notification is first
    adapter._link_changed("e1", OperState.DOWN, "poll", 2.5)  # the poller sees the same change: nothing
    adapter._link_changed("e1", OperState.UNKNOWN, "poll", 2.7)  # unknown is not a change
    adapter._link_changed("e1", OperState.UP, "poll", 3.0)  # the poller is first this time
    adapter._link_changed("e1", OperState.UP, "netconf-notification", 3.1)
    events = [queue.get_nowait() for _ in range(queue.qsize())]
    assert [(e.kind, e.source, e.interface) for e in events] == [
        (EventKind.LINK_DOWN, "netconf-notification", "uni1"),  # device name mapped back to the topology name
        (EventKind.LINK_UP, "poll", "uni1"),
    ]


async def test_reachability_is_reported_on_change_only(adapter: NetconfAdapter) -> None:
    queue = published(adapter)
    adapter._reachability(True, "poll")
    adapter._reachability(False, "poll", "refused")
    adapter._reachability(False, "netconf-notification", "refused")
    adapter._reachability(True, "netconf-notification")
    kinds = [queue.get_nowait().kind for _ in range(queue.qsize())]
    assert kinds == [EventKind.DEVICE_UNREACHABLE, EventKind.DEVICE_REACHABLE]
