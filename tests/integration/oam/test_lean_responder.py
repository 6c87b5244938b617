"""The responder's lean socket loop answers exactly like the generic path.

Lean reads (``RawTransport(lean_rx=True)``, what the responder process uses) drop the per-frame source
address and timestamp cmsg: a BPF filter drops outgoing and other-host frames in the kernel and DMM asks for
the RX time with ``SIOCGSTAMPNS``. Both modes run the same script here and must give the same replies and
counters; the DMR's RxTimestampf must be the very kernel RX time a second (cmsg) socket sees for that DMM.
"""

from __future__ import annotations

import threading
import time

import pytest

from interlude.oam import codec
from interlude.oam.codec import L2, Opcode
from interlude.oam.responder import MepResponder, serve_blocking
from interlude.oam.transport import RawTransport, open_cfm_socket, read_frame
from tests.integration.oam.conftest import make_pair
from tests.support.netns import NetnsFactory

pytestmark = pytest.mark.lab


def _replies(transport: RawTransport, wait_s: float) -> list[bytes]:
    """Every CFM frame that reaches ``transport`` within ``wait_s`` (replies only: it sends no requests)."""
    got: list[bytes] = []
    until = time.time_ns() + int(wait_s * 1e9)
    while (frame := transport.read_until(until)) is not None:
        got.append(frame[0])
    return got


@pytest.mark.parametrize("lean", [True, False], ids=["lean", "generic"])
def test_lean_loop_answers_like_the_generic_path(netns_factory: NetnsFactory, lean: bool) -> None:
    pair = make_pair(netns_factory, "9l" if lean else "9g")
    served = RawTransport(pair.if_b, pair.b, lean_rx=lean)
    assert served.lean_rx is lean
    witness = open_cfm_socket(pair.if_b, pair.b)  # SO_TIMESTAMPNS: the kernel RX time of every frame
    initiator = RawTransport(pair.if_a, pair.a)
    responder = MepResponder(served.mac, level=3, mep_id=2)
    stop = threading.Event()
    thread = threading.Thread(target=serve_blocking, args=(responder, served, stop))
    thread.start()
    try:
        unicast = L2(dst=served.mac, src=initiator.mac)
        for seq in range(1, 6):
            lbm = codec.build_lbm(unicast, level=3)
            codec.put_u32(lbm, 14 + codec.OFF_SEQ, seq)
            initiator.send(lbm)
            assert [codec.u32(r, 14 + codec.OFF_SEQ) for r in _replies(initiator, 0.2)] == [seq]
        # tagged frames reach an untagged socket as PACKET_OTHERHOST (no VLAN device): never answered
        for _ in range(3):
            initiator.send(codec.build_lbm(L2(dst=served.mac, src=initiator.mac, vlan=100), level=3))
        # another level, another MAC: not ours either
        initiator.send(codec.build_lbm(unicast, level=4))
        initiator.send(codec.build_lbm(L2(dst=bytes.fromhex("02aabbccddee"), src=initiator.mac), level=3))
        assert _replies(initiator, 0.2) == []
        # the level's group address goes through MepResponder.handle
        initiator.send(codec.build_lbm(L2(dst=codec.class1_multicast(3), src=initiator.mac), level=3))
        (lbr,) = _replies(initiator, 0.2)
        assert lbr[15] == Opcode.LBR and lbr[0:6] == initiator.mac and lbr[6:12] == served.mac
        while read_frame(witness, False) is not None:  # what the witness saw so far
            pass
        initiator.send(codec.build_dmm(unicast, level=3), 14 + codec.OFF_DM_TXF)
        (dmr,) = _replies(initiator, 0.2)
        seen = read_frame(witness, False)
        assert seen is not None and seen[0][15] == Opcode.DMM
        assert dmr[15] == Opcode.DMR
        rx_f = codec.ptp_to_ns(dmr, 14 + codec.OFF_DM_RXF)
        assert rx_f == seen[1]  # exactly the kernel's RX timestamp of that DMM
        assert codec.ptp_to_ns(dmr, 14 + codec.OFF_DM_TXB) >= rx_f
        # the batched LBM/DMM counters are flushed before LMM reads them: 5 + 1 LBM, 1 DMM, this LMM
        initiator.send(codec.build_lmm(unicast, level=3))
        (lmr,) = _replies(initiator, 0.2)
        assert lmr[15] == Opcode.LMR
        assert codec.u32(lmr, 14 + codec.OFF_LM_RXFCF) == 8
        assert codec.u32(lmr, 14 + codec.OFF_LM_TXFCB) == 8
    finally:
        stop.set()
        thread.join(timeout=5)
        for closable in (served, initiator):
            closable.close()
        witness.close()
    assert not thread.is_alive()
    assert responder.answered == {"LBM": 6, "DMM": 1, "LMM": 1}
    assert responder.rx_from[initiator.mac] == responder.tx_to[initiator.mac] == 8
