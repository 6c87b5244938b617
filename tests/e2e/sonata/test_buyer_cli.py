"""``interlude buyer`` against ``interlude emulate`` as a real process: the whole flow, then modify and disconnect."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

from click.testing import CliRunner

from interlude.cli.main import main
from tests.support.sonata import MAIN
from tests.support.wait import wait_until_sync


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> object:
    request = urllib.request.Request(url, headers={"X-Interlude-Buyer": "sp-alpha"})
    with urllib.request.urlopen(request, timeout=2) as resp:
        return json.loads(resp.read())


def test_order_internet_access_from_the_command_line(tmp_path: Path) -> None:
    port = _free_port()
    cmd = [sys.executable, "-c", "from interlude.cli.main import main; main()", "emulate", "--port", str(port),
           "--db", str(tmp_path / "emu.db"), "--no-device-agents"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=tmp_path)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_sync(lambda: _get(f"{url}/mefApi/sonata/productCatalog/v4/productOffering"), timeout=30,
                        interval=0.2, ignore=(OSError,), what="the seller to serve")  # fmt: skip
        runner = CliRunner()
        flow = runner.invoke(main, ["buyer", "--url", url, "--json", "order-internet-access", "--address", MAIN,
                                    "--bandwidth", "100"])  # fmt: skip
        assert flow.exit_code == 0, flow.output
        product = json.loads(flow.output)["product"]
        assert product["status"] == "active"
        services = _get(f"{url}/mefApi/interlude/serviceInventory/v2/service?externalId={product['id']}")
        assert isinstance(services, list) and len(services) == 3
        shown = runner.invoke(main, ["buyer", "--url", url, "products"])
        assert shown.exit_code == 0 and "100 MBPS" in shown.output
        modified = runner.invoke(main, ["buyer", "--url", url, "modify", product["id"], "--bandwidth", "500"])
        assert modified.exit_code == 0 and "completed" in modified.output, modified.output
        now = _get(f"{url}/mefApi/sonata/productInventory/v8/product/{product['id']}")
        assert isinstance(now, dict) and now["productConfiguration"]["bandwidth"]["upstream"]["irValue"] == 500
        gone = runner.invoke(main, ["buyer", "--url", url, "disconnect", product["id"]])
        assert gone.exit_code == 0, gone.output
        red = runner.invoke(main, ["buyer", "--url", url, "validate-address", "1 Nowhere Lane, Shelbyville, 9, US"])
        assert red.exit_code == 1 and "outside" in red.output
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=20)
    assert "Traceback" not in out.decode()
