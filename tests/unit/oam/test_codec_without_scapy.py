"""The responder process never imports scapy (0.16 s of CPU per lab MEP), and the struct-built CCM is
byte-identical to the frame scapy builds."""

from __future__ import annotations

import itertools
import subprocess
import sys

import pytest

from interlude.oam import codec

DST, SRC = bytes.fromhex("0180c2000034"), bytes.fromhex("020000000001")


def _scapy_ccm(l2: codec.L2, level: int, mep_id: int, meg_id: str, interval_s: float, rdi: bool) -> bytes:
    from scapy.contrib.oam import OAM, MegId
    from scapy.layers.l2 import Dot1Q, Ether

    ether = Ether(dst=codec.mac_to_str(l2.dst), src=codec.mac_to_str(l2.src))
    if l2.vlan is not None:
        ether = ether / Dot1Q(vlan=l2.vlan, prio=l2.priority)
    oam = OAM(
        mel=level, version=0, opcode=1, flags=0x10 if rdi else 0, period=codec.ccm_period_code(interval_s),
        tlv_offset=70, seq_num=0, mep_id=mep_id, meg_id=MegId(format=32, values=[0] * 13),
    )  # fmt: skip
    codec._scapy()  # binds OAM under Ether
    frame = bytearray(bytes(ether / oam).ljust(60, b"\0"))
    start = l2.header_len + codec.OFF_CCM_MAID
    frame[start : start + 48] = codec.maid_bytes(meg_id)
    return bytes(frame)


@pytest.mark.parametrize(("vlan", "priority"), [(None, 0), (100, 0), (4094, 5)])
def test_struct_ccm_equals_the_scapy_frame(vlan: int | None, priority: int) -> None:
    l2 = codec.L2(dst=DST, src=SRC, vlan=vlan, priority=priority)
    for level, mep_id, meg_id, interval, rdi in itertools.product(
        (0, 4, 7), (1, 8191), ("m", "ovc1001", "x" * 45), (0.00333, 0.1, 1.0, 600.0), (False, True)
    ):
        built = codec.build_ccm(l2, level=level, mep_id=mep_id, meg_id=meg_id, interval_s=interval, rdi=rdi)
        assert bytes(built) == _scapy_ccm(l2, level, mep_id, meg_id, interval, rdi)
        parsed = codec.parse(built)
        assert parsed is not None and parsed.opcode == codec.Opcode.CCM and parsed.level == level


def test_a_ccm_responder_process_does_not_import_scapy() -> None:
    script = (
        "import sys\n"
        "from interlude.oam.responder import MepResponder\n"
        "import interlude.oam.runner\n"
        "r = MepResponder(bytes(6), level=4, mep_id=1, vlan=100, ccm_interval_s=0.1)\n"
        "frame, _ = r.poll_ccm(0)\n"
        "assert frame is not None\n"
        "print('scapy' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
