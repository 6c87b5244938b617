"""Every frame type the engine sends (and every reply the responder sends) decodes in tshark's CFM dissector
with the intended opcode, level, version, flags, TLV offset, sequence/transaction ids and timestamps."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

from interlude.domain.southbound import MepSpec, OamKind, OamRequest
from interlude.lab.agents.base import stop_pid
from interlude.lab.agents.oam_responder import start_responder
from interlude.oam import codec
from interlude.oam.codec import L2, Opcode
from interlude.oam.runner import run_session
from interlude.oam.transport import RawTransport
from tests.integration.oam.conftest import make_pair
from tests.support.lab import require_binaries
from tests.support.netns import NetnsFactory
from tests.support.wait import wait_until_sync

pytestmark = pytest.mark.lab

FIELDS = ["vlan.id", "cfm.opcode", "cfm.md.level", "cfm.version", "cfm.flags", "cfm.first.tlv.offset",
          "cfm.ccm.seq.num", "cfm.lb.transaction.id", "cfm.lt.transaction.id", "cfm.odm.dmm.dmr.txtimestampf",
          "cfm.slm.txfcf", "cfm.slm.test_id", "cfm.lmm.lmr.txfcf", "cfm.dmm.dmr.txtimestampb",
          "cfm.odm.dmm.dmr.rxtimestampf", "cfm.slr.txfcb", "cfm.slr.rsp_mep_id", "cfm.ccm.ma.ep.id",
          "cfm.maid.ma.name.string", "cfm.lt.ttl", "cfm.tlv.type", "eth.src"]
TS = 1_790_000_000_123_456_789


def _norm(field: str, value: str) -> str:
    return value if field == "eth.src" else value.replace(":", "")


def _ts_hex(ns: int) -> str:
    return codec.ns_to_ptp(ns).hex()


def _frames(l2: L2) -> list[tuple[bytearray, dict[str, str]]]:
    pdu = l2.header_len
    ccm = codec.build_ccm(l2, level=3, mep_id=7, meg_id="ILT-MEG", interval_s=1.0, rdi=True)
    codec.put_u32(ccm, pdu + codec.OFF_SEQ, 17)
    lbm = codec.build_lbm(l2, level=3, data_size=12)
    codec.put_u32(lbm, pdu + codec.OFF_SEQ, 0x01020304)
    ltm = codec.build_ltm(l2, level=3, ttl=64, origin=l2.src, target=l2.dst)
    codec.put_u32(ltm, pdu + codec.OFF_SEQ, 0x0A0B0C0D)
    dmm = codec.build_dmm(l2, level=3)
    codec.put_ts(dmm, pdu + codec.OFF_DM_TXF, TS)
    one_dm = codec.build_1dm(l2, level=3)
    codec.put_ts(one_dm, pdu + codec.OFF_DM_TXF, TS + 1)
    slm = codec.build_slm(l2, level=3, src_mep=1, test_id=42)
    codec.put_u32(slm, pdu + codec.OFF_SL_TXFCF, 5)
    lmm = codec.build_lmm(l2, level=3)
    codec.put_u32(lmm, pdu + codec.OFF_LM_TXFCF, 9)
    ais = codec.build_ais(l2, level=3)
    return [
        (ccm, {"cfm.opcode": "1", "cfm.version": "0", "cfm.flags": "0x84", "cfm.first.tlv.offset": "70",
               "cfm.ccm.seq.num": "17", "cfm.ccm.ma.ep.id": "7", "cfm.maid.ma.name.string": "ILT-MEG"}),
        (lbm, {"cfm.opcode": "3", "cfm.version": "0", "cfm.flags": "0x00", "cfm.first.tlv.offset": "4",
               "cfm.lb.transaction.id": str(0x01020304), "cfm.tlv.type": "3,0"}),
        (ltm, {"cfm.opcode": "5", "cfm.flags": "0x80", "cfm.first.tlv.offset": "17",
               "cfm.lt.transaction.id": str(0x0A0B0C0D), "cfm.lt.ttl": "64", "cfm.tlv.type": "7,0"}),
        (dmm, {"cfm.opcode": "47", "cfm.version": "1", "cfm.first.tlv.offset": "32",
               "cfm.odm.dmm.dmr.txtimestampf": _ts_hex(TS)}),
        (one_dm, {"cfm.opcode": "45", "cfm.version": "1", "cfm.first.tlv.offset": "16",
                  "cfm.odm.dmm.dmr.txtimestampf": _ts_hex(TS + 1)}),
        (slm, {"cfm.opcode": "55", "cfm.version": "0", "cfm.first.tlv.offset": "16", "cfm.slm.txfcf": "5",
               "cfm.slm.test_id": "00:00:00:2a"}),
        (lmm, {"cfm.opcode": "43", "cfm.version": "1", "cfm.first.tlv.offset": "12",
               "cfm.lmm.lmr.txfcf": "00:00:00:09"}),
        (ais, {"cfm.opcode": "33", "cfm.version": "0", "cfm.flags": "0x04", "cfm.first.tlv.offset": "0"}),
    ]


def test_every_frame_type_decodes_in_tshark(netns_factory: NetnsFactory, tmp_path: Path) -> None:
    require_binaries("tshark")
    pair = make_pair(netns_factory, "5")
    pcap = tmp_path / "oam.pcap"
    log = tmp_path / "tshark.log"
    with log.open("wb") as err:
        capture = netns_factory.spawn(pair.a, ["tshark", "-q", "-i", pair.if_a, "-w", str(pcap)], stderr=err,
                                      stdout=subprocess.DEVNULL)
    assert wait_until_sync(lambda: "Capturing on" in log.read_text(), timeout=20)
    agent = start_responder(pair.b, tmp_path, interface=pair.if_b, level=3, mep_id=2, vlan=None, ccm_interval_s=None)
    try:
        target = netns_factory.sysfs(pair.b, pair.if_b, "address")
        transport = RawTransport(pair.if_a, pair.a)
        expected: list[dict[str, str]] = []
        try:
            for vlan in (None, 100):
                l2 = L2(dst=codec.mac_to_bytes(target), src=transport.mac, vlan=vlan, priority=3 if vlan else 0)
                for frame, fields in _frames(l2):
                    if fields["cfm.opcode"] in ("3", "47", "55", "43", "5") and vlan is None:
                        continue  # untagged requests are sent by the sessions below (and answered)
                    transport.send(frame)
                    expected.append({**fields, "vlan.id": str(vlan or ""), "cfm.md.level": "3"})
        finally:
            transport.close()
        mep = MepSpec(name="m1", node="a", interface=pair.if_a, mep_id=1)
        for kind in (OamKind.LOOPBACK, OamKind.DELAY, OamKind.SYNTHETIC_LOSS, OamKind.LOSS, OamKind.LINKTRACE):
            result = run_session(OamRequest(kind=kind, mep=mep, count=1, interval_s=0, timeout_s=0.5, test_id=42),
                                 netns=pair.a, interface=pair.if_a, target_mac=target)
            assert result.received == 1, kind
        time.sleep(0.3)
    finally:
        stop_pid(agent.pid)
        capture.send_signal(signal.SIGINT)
        capture.wait(timeout=10)
    out = subprocess.run(["tshark", "-r", str(pcap), "-Y", "cfm", "-T", "fields", "-E", "separator=|",
                          *[arg for f in FIELDS for arg in ("-e", f)]], capture_output=True, text=True, check=True)
    # tshark prints byte fields sometimes as aa:bb:.., sometimes as aabb..: compare them without colons
    rows = [{k: _norm(k, v) for k, v in zip(FIELDS, line.split("|"), strict=True)} for line in out.stdout.splitlines()]
    for want in expected:
        want = {k: _norm(k, v) for k, v in want.items()}
        assert any(all(row[k] == v for k, v in want.items()) for row in rows), (want, rows)
    by_opcode = {int(row["cfm.opcode"]): row for row in rows if not row["vlan.id"]}
    # requests from the sessions, and the responder's replies
    assert {Opcode.LBM, Opcode.LBR, Opcode.DMM, Opcode.DMR, Opcode.SLM, Opcode.SLR, Opcode.LMM, Opcode.LMR,
            Opcode.LTM, Opcode.LTR} <= set(by_opcode)
    assert by_opcode[Opcode.LBR]["cfm.lb.transaction.id"] == by_opcode[Opcode.LBM]["cfm.lb.transaction.id"] == "1"
    dmm, dmr = by_opcode[Opcode.DMM], by_opcode[Opcode.DMR]
    assert dmr["cfm.version"] == "1" and dmr["cfm.first.tlv.offset"] == "32"
    assert dmr["cfm.odm.dmm.dmr.txtimestampf"] == dmm["cfm.odm.dmm.dmr.txtimestampf"] != "0" * 16
    assert dmr["cfm.odm.dmm.dmr.rxtimestampf"] != "0" * 16
    assert dmr["cfm.dmm.dmr.txtimestampb"] >= dmr["cfm.odm.dmm.dmr.rxtimestampf"]  # same-width hex: ordered
    slr = by_opcode[Opcode.SLR]
    assert (slr["cfm.slr.rsp_mep_id"], slr["cfm.slr.txfcb"], slr["cfm.slm.test_id"]) == ("2", "1", "0000002a")
    assert by_opcode[Opcode.LMR]["cfm.version"] == "1" and by_opcode[Opcode.LMR]["cfm.first.tlv.offset"] == "12"
    ltr = by_opcode[Opcode.LTR]
    assert ltr["cfm.lt.ttl"] == "63" and ltr["cfm.first.tlv.offset"] == "6" and ltr["eth.src"] == target
    assert ltr["cfm.lt.transaction.id"] == by_opcode[Opcode.LTM]["cfm.lt.transaction.id"]
