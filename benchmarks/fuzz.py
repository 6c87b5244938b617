"""Schemathesis over every served MEF API with the definitions: how many requests, which statuses, how many 5xx.

Run: ``python benchmarks/fuzz.py [--examples N]`` (the MEF definitions from ``INTERLUDE_MEF_SDK`` or
``../shared/mef``). The partner runs in process (header mode, the bundled topology); every operation of every
definition gets N generated requests. A 5xx is a defect: the run lists the first ones and exits 1.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from aiohttp import web  # noqa: E402
from tests.support.fuzz import DEFINITIONS, FuzzReport, fuzz  # noqa: E402
from tests.support.partner import fast_options  # noqa: E402

from interlude.app.runtime import Runtime  # noqa: E402
from interlude.app.web import create_app  # noqa: E402
from interlude.topology.loader import bundled_topology_path, load_topology  # noqa: E402


def serve(db: Path, ready: threading.Event, port: list[int], stop: threading.Event) -> None:
    async def main() -> None:
        runtime = Runtime(load_topology(bundled_topology_path()), db, options=fast_options())
        runner = web.AppRunner(create_app(runtime), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port.append(runner.addresses[0][1])
        ready.set()
        while not stop.is_set():
            await asyncio.sleep(0.2)
        await runner.cleanup()

    asyncio.run(main())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--examples", type=int, default=10, help="generated requests per operation")
    args = parser.parse_args()
    sdk = Path(os.environ.get("INTERLUDE_MEF_SDK", ROOT.parent / "shared" / "mef")) / "interlude-sdk-latest"
    if not sdk.is_dir():
        print(f"MEF definitions not found at {sdk}; skipped")
        return 0
    with tempfile.TemporaryDirectory(prefix="interlude-fuzz-") as tmp:
        ready, stop, port = threading.Event(), threading.Event(), []
        thread = threading.Thread(target=serve, args=(Path(tmp) / "f.db", ready, port, stop), daemon=True)
        thread.start()
        ready.wait(30)
        report = FuzzReport()
        started = time.monotonic()
        for relative in DEFINITIONS:
            fuzz(sdk / relative, f"http://127.0.0.1:{port[0]}/", {"X-Interlude-Buyer": "sp-alpha"}, args.examples,
                 report)  # fmt: skip
        elapsed = time.monotonic() - started
        stop.set()
        thread.join(30)
    by_class = {f"{k}xx": sum(v for s, v in report.statuses.items() if s // 100 == k) for k in (2, 3, 4, 5)}
    print(f"fuzz: {report.operations} operations, {report.requests} requests in {elapsed:.1f} s, {by_class}, "
          f"{len(report.skipped)} operations not generated")  # fmt: skip
    print("statuses:", dict(sorted(report.statuses.items())))
    for line in report.server_errors[:20]:
        print("  5xx", line)
    return 1 if report.server_errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
