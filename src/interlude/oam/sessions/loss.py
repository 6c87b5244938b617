"""Loss sessions: synthetic loss (SLM/SLR, ETH-SLM) and single-ended loss (LMM/LMR, ETH-LM).

Both lock onto one responder and compute far-end/near-end loss from counters rather than timestamps, which
is why they form their own family.
"""

from __future__ import annotations

from typing import Any

from interlude.domain.southbound import OamKind
from interlude.oam import codec
from interlude.oam.codec import L2, OamFrame, Opcode
from interlude.oam.sessions.base import Outgoing, Progress, Session


class SyntheticLossSession(Session):
    """SLM/SLR (ETH-SLM) for one test id: far-end and near-end loss from the responder's per-test counter.

    With F the highest TxFCf answered and B the responder's TxFCb in that SLR: forward (far-end) loss is
    ``F - B`` plus every frame sent after F whose fate is unknown (counted forward, so
    ``forward + backward = sent - received`` always holds); backward (near-end) loss is ``B - received``.
    """

    kind = OamKind.SYNTHETIC_LOSS
    reply_opcode = Opcode.SLR
    single_peer = True

    def __init__(
        self,
        l2: L2,
        *,
        level: int,
        count: int,
        interval_ns: int,
        timeout_ns: int,
        src_mep: int,
        test_id: int,
        data_size: int = 0,
    ) -> None:
        super().__init__(l2, level=level, count=count, interval_ns=interval_ns, timeout_ns=timeout_ns)
        self.src_mep = src_mep
        self.test_id = test_id
        self.template = codec.build_slm(l2, level=level, src_mep=src_mep, test_id=test_id, data_size=data_size)
        self._fc_at = l2.header_len + codec.OFF_SL_TXFCF
        self.best_txfcf = 0
        self.best_txfcb = 0
        self.responder_mep: int | None = None

    def _build(self, index: int) -> Outgoing:
        frame = bytearray(self.template)
        codec.put_u32(frame, self._fc_at, index + 1)
        return Outgoing(frame)

    def _match(self, frame: bytes, parsed: OamFrame, rx_ns: int) -> Progress | None:
        pdu = parsed.pdu
        if codec.u16(frame, pdu + codec.OFF_SL_SRC) != self.src_mep:
            return None
        if codec.u32(frame, pdu + codec.OFF_SL_TEST) != self.test_id:
            return None
        txfcf = codec.u32(frame, pdu + codec.OFF_SL_TXFCF)
        txfcb = codec.u32(frame, pdu + codec.OFF_SL_TXFCB)
        index = txfcf - 1
        if not 0 <= index < len(self.slots):
            return None
        if not self._answer(index, rx_ns, rx_ns - self.slots[index].tx_ns):
            return None
        self.responder_mep = codec.u16(frame, pdu + codec.OFF_SL_RSP)
        if txfcf > self.best_txfcf:
            self.best_txfcf, self.best_txfcb = txfcf, txfcb
        return Progress(
            index,
            (rx_ns - self.slots[index].tx_ns) / 1000.0,
            codec.mac_to_str(parsed.src),
            {"txfcf": txfcf, "txfcb": txfcb, "responder_mep": self.responder_mep},
        )

    def _extra(self) -> dict[str, Any]:
        received = self.received_count
        backward = max(0, self.best_txfcb - received)
        return {"forward_lost": self.sent_count - received - backward, "backward_lost": backward}


class LossSession(Session):
    """LMM/LMR (ETH-LM single-ended) over the frame counters the two MEPs keep for each other.

    Our MEPs count the frames they exchange with a peer (Y.1731 counts service frames, which only a
    forwarding plane sees; in a lab the MEP's own OAM traffic is what exists). Loss is computed from the
    first to the last answered LMM (Y.1731 §8.1.2): forward ``ΔTxFCf - ΔRxFCf``, backward ``ΔTxFCb - ΔRxFCl``.
    """

    kind = OamKind.LOSS
    reply_opcode = Opcode.LMR
    single_peer = True

    def __init__(self, l2: L2, *, level: int, count: int, interval_ns: int, timeout_ns: int) -> None:
        super().__init__(l2, level=level, count=count, interval_ns=interval_ns, timeout_ns=timeout_ns)
        self.template = codec.build_lmm(l2, level=level)
        self._fc_at = l2.header_len + codec.OFF_LM_TXFCF
        self.tx_frames = 0  # TxFCl: frames we sent to the peer
        self.rx_frames = 0  # RxFCl: frames we received from the peer
        self.samples: list[tuple[int, int, int, int]] = []  # (TxFCf, RxFCf, TxFCb, RxFCl)

    def _build(self, index: int) -> Outgoing:
        frame = bytearray(self.template)
        self.tx_frames += 1
        codec.put_u32(frame, self._fc_at, self.tx_frames)
        return Outgoing(frame)

    def _match(self, frame: bytes, parsed: OamFrame, rx_ns: int) -> Progress | None:
        pdu = parsed.pdu
        self.rx_frames += 1
        txfcf = codec.u32(frame, pdu + codec.OFF_LM_TXFCF)
        index = txfcf - 1
        if not 0 <= index < len(self.slots):
            return None
        if not self._answer(index, rx_ns, rx_ns - self.slots[index].tx_ns):
            return None
        sample = (
            txfcf,
            codec.u32(frame, pdu + codec.OFF_LM_RXFCF),
            codec.u32(frame, pdu + codec.OFF_LM_TXFCB),
            self.rx_frames,
        )
        self.samples.append(sample)
        return Progress(
            index,
            (rx_ns - self.slots[index].tx_ns) / 1000.0,
            codec.mac_to_str(parsed.src),
            {"txfcf": sample[0], "rxfcf": sample[1], "txfcb": sample[2], "rxfcl": sample[3]},
        )

    def _extra(self) -> dict[str, Any]:
        if len(self.samples) < 2:
            return {"forward_lost": None, "backward_lost": None}
        first = min(self.samples)
        last = max(self.samples)
        forward = (last[0] - first[0]) - (last[1] - first[1])
        backward = (last[2] - first[2]) - (last[3] - first[3])
        return {"forward_lost": max(0, forward), "backward_lost": max(0, backward)}
