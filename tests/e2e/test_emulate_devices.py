"""``interlude emulate`` serves its devices over SNMP and NETCONF too: one device model, three ways in.

A MEF order locks a UNI; the SNMP agent (through our ``snmp`` adapter) and the NETCONF server (through plain
ncclient, as an SP developer would use it) both see the port down, and up again after the unlock order. A port
disabled on the device itself over NETCONF takes the Internet Access on it DISABLED in the Interlude inventory.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from ncclient import manager

from interlude.adapters.base import AdapterContext
from interlude.adapters.registry import create_adapter
from interlude.domain.southbound import AdminState
from interlude.topology.loader import bundled_topology_path, parse_topology
from tests.support.wait import wait_until_sync

API = "/mefApi/interlude"
UNI = "urn:mef:lso:spec:legato:carrier-ethernet-operator-uni:v0.0.1:all"
IETF_IF = "urn:ietf:params:xml:ns:yang:ietf-interfaces"


def _free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _http(url: str, body: dict[str, Any] | None = None) -> Any:
    req = urllib.request.Request(url, headers={"X-Interlude-Buyer": "sp-alpha", "Content-Type": "application/json"})
    if body is not None:
        req.data = json.dumps(body).encode()
    with urllib.request.urlopen(req, timeout=5) as resp:
        return json.loads(resp.read())


@pytest.fixture
def emulator(tmp_path: Path) -> Any:
    ports = {"http": _free_port(), "snmp": _free_port(socket.SOCK_DGRAM), "netconf": _free_port()}
    cmd = [
        str(Path(sys.executable).parent / "interlude"), "emulate", "--port", str(ports["http"]),
        "--db", str(tmp_path / "emu.db"), "--snmp-port", str(ports["snmp"]),
        "--netconf-port", str(ports["netconf"]), "--topology", str(tmp_path / "topology.yaml"),
    ]  # fmt: skip
    raw = yaml.safe_load(bundled_topology_path().read_text(encoding="utf-8"))
    raw["nodes"]["pe1"]["credentials"] = {"community": {"env": "ILT_DEVICES_COMMUNITY"}}
    (tmp_path / "topology.yaml").write_text(yaml.safe_dump(raw))
    env = {**os.environ, "INTERLUDE_NETCONF_PASSWORD": "bench", "ILT_DEVICES_COMMUNITY": "pe1-c0mmunity"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=tmp_path, env=env)
    base = f"http://127.0.0.1:{ports['http']}{API}"
    try:
        assert wait_until_sync(
            lambda: _http(f"{base}/serviceInventory/v2/service/pe1-uni1"),
            timeout=15.0, interval=0.2, ignore=(OSError,), what="the emulator to serve",
        )
        yield base, ports
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=20)
    text = out.decode()
    assert proc.returncode == 0, text
    assert f"udp:127.0.0.1:{ports['snmp']}" in text and f"ssh:127.0.0.1:{ports['netconf']}" in text


def _uni_order(state: str) -> dict[str, Any]:
    config = {"@type": UNI, "administrativeState": {"state": state}}
    item = {"id": "1", "action": "modify", "service": {"id": "pe1-uni1", "serviceConfiguration": config}}
    return {"requestedStartDate": "2026-01-01T00:00:00Z", "requestedCompletionDate": "2026-01-02T00:00:00Z",
            "externalId": "devices-test", "serviceOrderItem": [item]}


def _netconf_admin(port: int, node: str, interface: str) -> str:
    with manager.connect(host="127.0.0.1", port=port, username=node, password="bench", hostkey_verify=False,
                         allow_agent=False, look_for_keys=False, timeout=10) as m:  # fmt: skip
        reply = m.get_config(source="running", filter=("subtree", f'<interfaces xmlns="{IETF_IF}"/>')).data_ele
        for entry in reply.iter(f"{{{IETF_IF}}}interface"):
            if entry.findtext(f"{{{IETF_IF}}}name") == interface:
                return str(entry.findtext(f"{{{IETF_IF}}}enabled"))
    return "absent"


def _netconf_set_enabled(port: int, node: str, interface: str, enabled: bool) -> None:
    config = (f'<config><interfaces xmlns="{IETF_IF}"><interface><name>{interface}</name>'
              f"<enabled>{'true' if enabled else 'false'}</enabled></interface></interfaces></config>")  # fmt: skip
    with manager.connect(host="127.0.0.1", port=port, username=node, password="bench", hostkey_verify=False,
                         allow_agent=False, look_for_keys=False, timeout=10) as m:  # fmt: skip
        m.edit_config(target="candidate", config=config)
        m.commit()


async def test_one_device_model_three_ways_in(emulator: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    base, ports = emulator
    monkeypatch.setenv("ILT_DEVICES_COMMUNITY", "pe1-c0mmunity")
    topo = parse_topology({"name": "view", "nodes": {"pe1": {
        "kind": "snmp", "address": "127.0.0.1", "port": ports["snmp"], "settings": {"version": "2c"},
        "credentials": {"community": {"env": "ILT_DEVICES_COMMUNITY"}},
        "interfaces": {"uni1": {}, "uni2": {}, "uni3": {}}}}})  # fmt: skip
    snmp = create_adapter(topo.node("pe1"), AdapterContext(topo, tmp_path, tmp_path))
    await snmp.open()
    try:
        assert (await snmp.get_interface("uni1")).admin is AdminState.UP  # type: ignore[attr-defined]
        order = _http(f"{base}/serviceOrderingManagement/v1/serviceOrder", _uni_order("LOCKED"))
        url = f"{base}/serviceOrderingManagement/v1/serviceOrder/{order['id']}"
        done = wait_until_sync(
            lambda: _http(url)["state"] == "completed",
            timeout=15.0, interval=0.2, ignore=(OSError,), what="the lock order to complete",
        )  # fmt: skip
        assert done, "the lock order did not complete"
        assert (await snmp.get_interface("uni1")).admin is AdminState.DOWN  # type: ignore[attr-defined]
        assert (await snmp.get_interface("uni2")).admin is AdminState.UP  # type: ignore[attr-defined]
        assert _netconf_admin(ports["netconf"], "pe1", "uni1") == "false"

        order = _http(f"{base}/serviceOrderingManagement/v1/serviceOrder", _uni_order("UNLOCKED"))
        url = f"{base}/serviceOrderingManagement/v1/serviceOrder/{order['id']}"
        done = wait_until_sync(
            lambda: _http(url)["state"] == "completed",
            timeout=15.0, interval=0.2, ignore=(OSError,), what="the unlock order to complete",
        )  # fmt: skip
        assert done, "the unlock order did not complete"
        assert _netconf_admin(ports["netconf"], "pe1", "uni1") == "true"
        assert (await snmp.get_interface("uni1")).admin is AdminState.UP  # type: ignore[attr-defined]

        # A change made on the device itself (not through Interlude) reaches the inventory's oper state.
        def ia_oper() -> str:
            svc = _http(f"{base}/serviceInventory/v2/service/ia-3001")
            return str(svc["serviceConfiguration"]["operationalState"]["state"])

        assert ia_oper() == "ENABLED"
        _netconf_set_enabled(ports["netconf"], "pe1", "uni3", False)
        assert (await snmp.get_interface("uni3")).admin is AdminState.DOWN  # type: ignore[attr-defined]
        assert wait_until_sync(
            lambda: ia_oper() == "DISABLED",
            timeout=15.0, interval=0.2, ignore=(OSError,), what="the inventory to follow the device-side change",
        )
        _netconf_set_enabled(ports["netconf"], "pe1", "uni3", True)
        assert wait_until_sync(lambda: ia_oper() == "ENABLED", timeout=15.0, interval=0.2, ignore=(OSError,))
    finally:
        await snmp.close()
