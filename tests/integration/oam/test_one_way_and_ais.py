"""One-way delay (1DM) through the relay, and AIS sent on the client level when a CCM link is cut (tshark)."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from interlude.domain import metrics
from interlude.domain.southbound import MepSpec, OamKind, OamRequest
from interlude.lab.agents.base import stop_pid
from interlude.lab.agents.oam_responder import read_responder_state, start_responder
from interlude.lab.relay import RelayConfig, start_relay, update_relay
from interlude.oam.runner import run_one_way_delay
from tests.integration.oam.conftest import make_pair
from tests.support.lab import require_binaries
from tests.support.netns import NetnsFactory
from tests.support.wait import wait_until_sync

pytestmark = pytest.mark.lab


def test_one_way_delay_through_relay(netns_factory: NetnsFactory, tmp_path: Path) -> None:
    """5 ms one way lands within 5 % (or 50 µs): both namespaces read the machine's one CLOCK_REALTIME."""
    require_binaries("ethtool")
    pair = make_pair(netns_factory, "6", relay=True)
    assert pair.relay is not None
    relay = start_relay(pair.relay, tmp_path, if_a=pair.relay_ifs[0], if_b=pair.relay_ifs[1],
                        config=RelayConfig(delay_ms=5.0), realtime=True)
    try:
        mep = MepSpec(name="m1", node="a", interface=pair.if_a, mep_id=1)
        request = OamRequest(kind=OamKind.DELAY, mep=mep, count=100, interval_s=0.01, timeout_s=0.5)
        result = asyncio.run(run_one_way_delay(request, netns=pair.a, interface=pair.if_a, receiver_netns=pair.b,
                                               receiver_interface=pair.if_b))
        assert (result.sent, result.received) == (100, 100) and all(result.answered)
        fd = metrics.frame_delay(result)
        assert abs(fd.median_us - 5_000) <= max(0.05 * 5_000, 50), fd
        assert fd.min_us >= 5_000, fd  # the relay counts from the kernel RX time: never early
        # the CLI runs both ends too; a tagged MEP's 1DMs keep their tag through the relay
        cli = str(Path(sys.executable).parent / "interlude")
        out = subprocess.run([cli, "oam", "delay", "--one-way", "--netns", pair.a, "--interface", pair.if_a,
                              "--receiver-netns", pair.b, "--receiver-interface", pair.if_b, "--vlan", "300",
                              "-c", "20", "-i", "0.002", "--json"], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        data = json.loads(out.stdout)
        assert data["one_way"] is True and data["sent"] == data["received"] == 20
        assert abs(data["fd_us"]["median"] - 5_000) <= 500, data
        out = subprocess.run([cli, "oam", "delay", "--one-way", "--netns", pair.a, "--interface", pair.if_a],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 2 and "--receiver-interface" in out.stderr
    finally:
        stop_pid(relay.pid)


def test_ais_sent_on_client_level_when_ccm_link_is_cut(netns_factory: NetnsFactory, tmp_path: Path) -> None:
    require_binaries("ethtool", "tshark")
    pair = make_pair(netns_factory, "7", relay=True)
    assert pair.relay is not None
    relay = start_relay(pair.relay, tmp_path, if_a=pair.relay_ifs[0], if_b=pair.relay_ifs[1])
    pcap, tshark_log = tmp_path / "ais.pcap", tmp_path / "tshark.log"
    with tshark_log.open("wb") as err:
        capture = netns_factory.spawn(pair.a, ["tshark", "-q", "-i", pair.if_a, "-f", "ether proto 0x8902",
                                               "-w", str(pcap)], stderr=err, stdout=subprocess.DEVNULL)
    state = tmp_path / "mep1.json"
    remote = start_responder(pair.b, tmp_path, interface=pair.if_b, level=3, mep_id=2, vlan=None,
                             ccm_interval_s=0.1, remote_meps=(1,))
    with (tmp_path / "mep1.log").open("wb") as log:
        local = subprocess.Popen([sys.executable, "-m", "interlude.oam.responder", "--netns", pair.a, "--interface",
                                  pair.if_a, "--mep-id", "1", "--ccm-interval", "0.1", "--remote-mep", "2", "--ais",
                                  "--state", str(state)], stdout=log, stderr=subprocess.STDOUT)
    try:
        assert wait_until_sync(lambda: "Capturing on" in tshark_log.read_text(), timeout=20)

        def mep1() -> dict[str, Any]:
            try:
                return json.loads(state.read_text())["ccm"]  # type: ignore[no-any-return]
            except (OSError, ValueError, KeyError):
                return {}

        assert wait_until_sync(lambda: mep1().get("remotes", {}).get("2", {}).get("received", 0) >= 3, timeout=10)
        assert mep1()["ais"]["sent"] == 0  # continuity: no AIS
        update_relay(relay, RelayConfig(down=True))
        # LOC after 3.5 x 100 ms sends the first AIS at once, the next one a second later
        assert wait_until_sync(lambda: mep1()["ais"]["sent"] >= 2, timeout=3, interval=0.02)
        update_relay(relay, RelayConfig())
        assert wait_until_sync(lambda: mep1()["remotes"]["2"]["loc"] is False, timeout=2, interval=0.02)
        sent = mep1()["ais"]["sent"]
        assert mep1()["ais"]["sending"] is False
        time.sleep(1.3)
        assert mep1()["ais"]["sent"] == sent  # continuity back: AIS stops
        assert read_responder_state(remote)["ccm"]["ais"]["sent"] == 0  # not asked to send AIS
    finally:
        local.send_signal(signal.SIGTERM)
        local.wait(timeout=10)
        stop_pid(remote.pid)
        stop_pid(relay.pid)
        capture.send_signal(signal.SIGINT)
        capture.wait(timeout=10)
    mac = netns_factory.sysfs(pair.a, pair.if_a, "address")
    out = subprocess.run(["tshark", "-r", str(pcap), "-Y", "cfm.opcode == 33", "-T", "fields", "-E", "separator=|",
                          "-e", "cfm.md.level", "-e", "eth.dst", "-e", "eth.src", "-e", "cfm.flags",
                          "-e", "cfm.first.tlv.offset"], capture_output=True, text=True, check=True)
    rows = [line.split("|") for line in out.stdout.splitlines()]
    assert len(rows) == sent, out.stdout
    assert all(row == ["4", "01:80:c2:00:00:34", mac, "0x04", "0"] for row in rows), rows
    events = [json.loads(line)["event"] for line in (tmp_path / "mep1.log").read_text().splitlines()]
    assert events[:1] == ["ready"] and "loc" in events and "loc-cleared" in events and events[-1] == "stopped"
