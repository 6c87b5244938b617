"""Memory one order-list request costs with large orders: bounded pages versus the old one-page-of-everything.

Run: ``python benchmarks/list_memory.py [--orders N] [--note-kb K]``. N orders whose request carries a K KB
note are placed, then ``GET /serviceOrder?limit=1000`` is measured twice in one run: with the bounds
(``MAX_ORDER_PAGE`` orders a page, pages stopped at ``MAX_PAGE_BYTES``) and with them lifted as before. Printed:
response bytes, items returned and the Python heap peak during the request (tracemalloc).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import tracemalloc
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from aiohttp.test_utils import TestClient, TestServer  # noqa: E402

from interlude.api import common, ordering  # noqa: E402
from interlude.app.runtime import Runtime  # noqa: E402
from interlude.app.web import create_app  # noqa: E402
from interlude.topology.loader import bundled_topology_path, load_topology  # noqa: E402

ORD = "/mefApi/interlude/serviceOrderingManagement/v1"
OVC = "urn:mef:lso:spec:legato:carrier-ethernet-ovc:v0.0.1:all"


async def measure(client: TestClient[Any, Any]) -> tuple[int, int, float]:
    tracemalloc.start()
    resp = await client.get(f"{ORD}/serviceOrder", params={"limit": "1000"}, headers={"X-Interlude-Buyer": "sp-alpha"})
    body = await resp.read()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return len(body), int(resp.headers["X-Result-Count"]), peak / 2**20


async def main(orders: int, note_kb: int) -> None:
    with tempfile.TemporaryDirectory(prefix="interlude-listmem-") as tmp:
        runtime = Runtime(load_topology(bundled_topology_path()), Path(tmp) / "l.db")
        async with TestClient(TestServer(create_app(runtime))) as client:
            note = [{"id": "1", "author": "b", "date": "2026-01-01T00:00:00Z", "text": "n" * note_kb * 1024}]
            placed, state = 0, "LOCKED"
            while placed < orders:
                config = {"@type": OVC, "administrativeState": {"state": state}}
                item = {"id": "1", "action": "modify", "service": {"id": "ovc-1001", "serviceConfiguration": config}}
                body = {"requestedStartDate": "2026-01-01T00:00:00Z", "externalId": f"m{placed}",
                        "requestedCompletionDate": "2026-01-02T00:00:00Z", "serviceOrderItem": [item], "note": note}
                resp = await client.post(f"{ORD}/serviceOrder", json=body, headers={"X-Interlude-Buyer": "sp-alpha"})
                if resp.status == 201:
                    placed += 1
                else:  # the service is already in that state: ask for the other one
                    state = "UNLOCKED" if state == "LOCKED" else "LOCKED"
            bounded = await measure(client)
            saved = (ordering.MAX_ORDER_PAGE, common.MAX_PAGE_BYTES)
            ordering.MAX_ORDER_PAGE, common.MAX_PAGE_BYTES = 1000, 2**40
            unbounded = await measure(client)
            ordering.MAX_ORDER_PAGE, common.MAX_PAGE_BYTES = saved
    for name, (size, items, peak) in (("unbounded (before)", unbounded), ("bounded (after)", bounded)):
        print(f"list_memory {name}: {items} orders, {size / 2**20:.1f} MiB response, heap peak {peak:.1f} MiB")
    print(f"list_memory ratio: heap peak after/before = {bounded[2] / unbounded[2]:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=150)
    parser.add_argument("--note-kb", type=int, default=200)
    args = parser.parse_args()
    asyncio.run(main(args.orders, args.note_kb))
