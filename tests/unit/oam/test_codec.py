"""Codec: every template decodes in scapy with the intended fields, and struct offsets match scapy's view."""

from __future__ import annotations

import pytest
from scapy.contrib.oam import OAM
from scapy.layers.l2 import Dot1Q, Ether

from interlude.errors import OamError
from interlude.oam import codec
from interlude.oam.codec import L2, Opcode

A = codec.mac_to_bytes("02:00:00:00:00:01")
B = codec.mac_to_bytes("02:00:00:00:00:02")
UNTAGGED = L2(dst=B, src=A)
TAGGED = L2(dst=B, src=A, vlan=100, priority=5)


def _oam(frame: bytes | bytearray) -> OAM:
    pkt = Ether(bytes(frame))
    assert OAM in pkt, pkt.summary()
    layer: OAM = pkt[OAM]
    return layer


@pytest.mark.parametrize("l2", [UNTAGGED, TAGGED], ids=["untagged", "tagged"])
def test_templates_decode_with_intended_header(l2: L2) -> None:
    frames = {
        Opcode.CCM: codec.build_ccm(l2, level=5, mep_id=7, meg_id="MEG-1", interval_s=1.0),
        Opcode.LBM: codec.build_lbm(l2, level=5, data_size=10),
        Opcode.LTM: codec.build_ltm(l2, level=5, ttl=64, origin=A, target=B),
        Opcode.DMM: codec.build_dmm(l2, level=5),
        Opcode.ONE_DM: codec.build_1dm(l2, level=5),
        Opcode.SLM: codec.build_slm(l2, level=5, src_mep=1, test_id=9),
        Opcode.LMM: codec.build_lmm(l2, level=5),
        Opcode.AIS: codec.build_ais(l2, level=5),
    }
    for opcode, frame in frames.items():
        assert len(frame) >= 60
        oam = _oam(frame)
        parsed = codec.parse(frame)
        assert parsed is not None
        assert (oam.opcode, oam.mel) == (opcode, 5) == (parsed.opcode, parsed.level)
        assert oam.version == codec.VERSION.get(opcode, 0) == parsed.version
        assert oam.tlv_offset == codec.TLV_OFFSET[opcode] == parsed.tlv_offset
        assert parsed.vlan == l2.vlan and parsed.pdu == l2.header_len
        assert (parsed.src, parsed.dst) == (A, B)
        if l2.vlan is not None:
            tag = Ether(bytes(frame))[Dot1Q]
            assert (tag.vlan, tag.prio) == (100, 5)


def test_patched_fields_are_where_scapy_reads_them() -> None:
    pdu = UNTAGGED.header_len
    lbm = codec.build_lbm(UNTAGGED, level=3, data_size=20)
    codec.put_u32(lbm, pdu + codec.OFF_SEQ, 0xDEADBEEF)
    oam = _oam(lbm)
    assert oam.seq_num == 0xDEADBEEF
    assert codec.tlvs(lbm, codec.parse(lbm)) == [(codec.TLV_DATA, bytes(range(20)))]  # type: ignore[arg-type]

    dmm = codec.build_dmm(UNTAGGED, level=3)
    codec.put_ts(dmm, pdu + codec.OFF_DM_TXF, 1_700_000_000_123_456_789)
    oam = _oam(dmm)
    assert (oam.txtsf.seconds, oam.txtsf.nanoseconds) == (1_700_000_000, 123_456_789)
    assert codec.ptp_to_ns(dmm, pdu + codec.OFF_DM_TXF) == 1_700_000_000_123_456_789

    slm = codec.build_slm(UNTAGGED, level=3, src_mep=11, test_id=77)
    codec.put_u32(slm, pdu + codec.OFF_SL_TXFCF, 42)
    oam = _oam(slm)
    assert (oam.src_mep_id, oam.test_id, oam.txfcf) == (11, 77, 42)

    lmm = codec.build_lmm(UNTAGGED, level=3)
    codec.put_u32(lmm, pdu + codec.OFF_LM_TXFCF, 5)
    assert _oam(lmm).txfcf == 5

    ccm = codec.build_ccm(UNTAGGED, level=3, mep_id=300, meg_id="x", interval_s=0.1, rdi=True)
    oam = _oam(ccm)
    assert oam.mep_id == 300 and oam.period == 3 and oam.flags == 0x10
    assert codec.parse(ccm).flags & codec.FLAG_RDI  # type: ignore[union-attr]
    assert bytes(ccm[pdu + codec.OFF_CCM_MAID : pdu + codec.OFF_CCM_MAID + 4]) == b"\x01\x02\x01x"

    ltm = codec.build_ltm(UNTAGGED, level=3, ttl=9, origin=A, target=B)
    oam = _oam(ltm)
    assert (oam.ttl, oam.orig_mac, oam.targ_mac) == (9, "02:00:00:00:00:01", "02:00:00:00:00:02")


def test_ltr_reply_decodes() -> None:
    ltm = codec.build_ltm(L2(dst=codec.class2_multicast(3), src=A), level=3, ttl=64, origin=A, target=B)
    codec.put_u32(ltm, 14 + codec.OFF_SEQ, 1234)
    ltr = codec.build_ltr(ltm, codec.parse(ltm), B, terminal=True)  # type: ignore[arg-type]
    oam = _oam(ltr)
    assert (oam.opcode, oam.trans_id, oam.ttl, oam.relay_act) == (Opcode.LTR, 1234, 63, 1)
    assert int(oam.flags) & codec.LTR_FLAG_TERMINAL_MEP
    pkt = Ether(bytes(ltr))
    assert (pkt.dst, pkt.src) == ("02:00:00:00:00:01", "02:00:00:00:00:02")


def test_parse_rejects_non_cfm_and_short_frames() -> None:
    assert codec.parse(b"\x00" * 10) is None
    assert codec.parse(bytes(Ether(dst="02:00:00:00:00:02", type=0x0800) / (b"\0" * 46))) is None
    with pytest.raises(OamError):
        codec.mac_to_bytes("02:00:00")
    with pytest.raises(OamError):
        codec.maid_bytes("x" * 46)


def test_ccm_period_codes_and_groups() -> None:
    assert codec.ccm_period_code(1.0) == 4 and codec.ccm_period_code(0.1) == 3 and codec.ccm_period_code(0.0033) == 1
    assert codec.class1_multicast(7) == bytes.fromhex("0180c2000037")
    assert codec.class2_multicast(0) == bytes.fromhex("0180c2000038")


def test_frame_size_padding() -> None:
    size = codec.pad_for_size(UNTAGGED, 8, 128)
    frame = codec.build_lbm(UNTAGGED, level=3, data_size=size)
    assert len(frame) + 4 == 128
