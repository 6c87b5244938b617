"""Y.1731 / IEEE 802.1ag frame codec: scapy builds templates once, the hot path patches and parses bytes.

This is the only module of the project that imports scapy (``scapy.contrib.oam``). Scapy needs ~3 ms per
frame to build and dissect (LAB-RECIPES §4: 280 exchanges/s), so it is used only to build each *template*
frame once, and imported only then (a lab's responder processes, which only patch requests and send CCMs
built with :mod:`struct`, never import it); sequence numbers, transaction ids, counters and timestamps
are then patched in place at fixed offsets and replies are parsed with :mod:`struct`. The offsets below
are those of the PDUs in ITU-T Y.1731 (G.8013) / IEEE 802.1Q clause 21, counted from the start of the CFM
header (after the EtherType), and are checked against scapy and tshark by the tests.

Frames are untagged or carry one 802.1Q tag (the kernel here has no 8021q module, so a VLAN-tagged MEP puts
the tag on the wire itself). ``OamFrame.pdu`` is the offset of the CFM header inside the frame: 14 untagged,
18 tagged.

Timestamps are IEEE 1588 (PTP) 32-bit seconds + 32-bit nanoseconds taken from ``CLOCK_REALTIME``, the clock
``SO_TIMESTAMPNS`` reports, so kernel RX timestamps and our TX timestamps are comparable.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass
from functools import lru_cache
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, NamedTuple

from interlude.errors import OamError

if TYPE_CHECKING:
    from scapy.contrib.oam import OAM_DATA_TLV
    from scapy.layers.l2 import Ether


@lru_cache(maxsize=1)
def _scapy() -> Any:
    """scapy, imported on the first template that needs it.

    Importing ``scapy.contrib.oam`` costs ~0.16 s of CPU, which a lab pays once per responder process; a
    responder needs no scapy at all (replies are patched requests, CCMs come from :func:`build_ccm`).
    """
    from scapy.contrib.oam import OAM, OAM_DATA_TLV, OAM_LTM_TLV, OAM_TEST_TLV, MegId
    from scapy.layers.l2 import Dot1Q, Ether
    from scapy.packet import Raw, bind_layers

    bind_layers(Ether, OAM, type=0x8902)  # scapy binds OAM only under Dot1Q
    return SimpleNamespace(
        OAM=OAM, OAM_DATA_TLV=OAM_DATA_TLV, OAM_LTM_TLV=OAM_LTM_TLV, OAM_TEST_TLV=OAM_TEST_TLV, MegId=MegId,
        Dot1Q=Dot1Q, Ether=Ether, Raw=Raw,
    )  # fmt: skip

ETH_P_CFM = 0x8902
ETH_P_8021Q = 0x8100


class Opcode(enum.IntEnum):
    """CFM / Y.1731 OpCodes we speak."""

    CCM = 1
    LBR = 2
    LBM = 3
    LTR = 4
    LTM = 5
    AIS = 33
    LMR = 42
    LMM = 43
    ONE_DM = 45
    DMR = 46
    DMM = 47
    SLR = 54
    SLM = 55


# First-TLV offsets (the value of the header's TLV Offset field) per opcode.
TLV_OFFSET: dict[int, int] = {
    Opcode.CCM: 70,
    Opcode.LBM: 4,
    Opcode.LBR: 4,
    Opcode.LTM: 17,
    Opcode.LTR: 6,
    Opcode.AIS: 0,
    Opcode.LMM: 12,
    Opcode.LMR: 12,
    Opcode.ONE_DM: 16,
    Opcode.DMM: 32,
    Opcode.DMR: 32,
    Opcode.SLM: 16,
    Opcode.SLR: 16,
}
# PDU version: Y.1731 sets 1 for DMM/DMR/1DM/LMM/LMR (as scapy and the lab probes do), 0 for the rest.
VERSION: dict[int, int] = {Opcode.DMM: 1, Opcode.DMR: 1, Opcode.ONE_DM: 1, Opcode.LMM: 1, Opcode.LMR: 1}

# Byte offsets inside the PDU (from the CFM header).
OFF_SEQ = 4  # CCM, LBM, LBR sequence number; LTM/LTR transaction id
OFF_CCM_MEPID = 8
OFF_CCM_MAID = 10
OFF_CCM_TXFCF = 58
OFF_CCM_RXFCB = 62
OFF_CCM_TXFCB = 66
OFF_LTM_TTL = 8
OFF_LTM_ORIG = 9
OFF_LTM_TARGET = 15
OFF_LTR_TTL = 8
OFF_LTR_RELAY = 9
OFF_DM_TXF = 4  # TxTimestampf
OFF_DM_RXF = 12  # RxTimestampf (DMR)
OFF_DM_TXB = 20  # TxTimestampb (DMR)
OFF_SL_SRC = 4
OFF_SL_RSP = 6
OFF_SL_TEST = 8
OFF_SL_TXFCF = 12
OFF_SL_TXFCB = 16
OFF_LM_TXFCF = 4
OFF_LM_RXFCF = 8
OFF_LM_TXFCB = 12

FLAG_RDI = 0x80
LTM_FLAG_USE_FDB_ONLY = 0x80
LTR_FLAG_FWD_YES = 0x40
LTR_FLAG_TERMINAL_MEP = 0x20
TLV_END = 0
TLV_DATA = 3
TLV_REPLY_INGRESS = 5
TLV_REPLY_EGRESS = 6
TLV_LTM_EGRESS_ID = 7
TLV_LTR_EGRESS_ID = 8
TLV_TEST = 32

# CCM transmission-period field values (Y.1731 table 9-3).
CCM_PERIODS_S: dict[int, float] = {1: 0.00333, 2: 0.01, 3: 0.1, 4: 1.0, 5: 10.0, 6: 60.0, 7: 600.0}

_U32 = struct.Struct("!I")
_U16 = struct.Struct("!H")
_TS = struct.Struct("!II")


def mac_to_bytes(mac: str) -> bytes:
    """``aa:bb:cc:dd:ee:ff`` (or ``-`` separated) to six bytes; :class:`OamError` when malformed."""
    parts = mac.replace("-", ":").split(":")
    try:
        raw = bytes(int(p, 16) for p in parts)
    except ValueError as exc:
        raise OamError(f"{mac!r} is not a MAC address") from exc
    if len(raw) != 6:
        raise OamError(f"{mac!r} is not a MAC address")
    return raw


def mac_to_str(raw: bytes) -> str:
    """Six bytes to ``aa:bb:cc:dd:ee:ff``."""
    return ":".join(f"{b:02x}" for b in raw)


def class1_multicast(level: int) -> bytes:
    """The CCM / multicast-LBM group address 01:80:C2:00:00:3y for MD level y."""
    return bytes((0x01, 0x80, 0xC2, 0x00, 0x00, 0x30 + level))


def class2_multicast(level: int) -> bytes:
    """The LTM group address 01:80:C2:00:00:38+y for MD level y."""
    return bytes((0x01, 0x80, 0xC2, 0x00, 0x00, 0x38 + level))


def ccm_period_code(interval_s: float) -> int:
    """The CCM period code closest to ``interval_s`` (1 s -> 4)."""
    return min(CCM_PERIODS_S, key=lambda code: abs(CCM_PERIODS_S[code] - interval_s))


def ns_to_ptp(ns: int) -> bytes:
    """Nanoseconds since the epoch to an 8-byte PTP timestamp."""
    sec, nsec = divmod(ns, 1_000_000_000)
    return _TS.pack(sec & 0xFFFFFFFF, nsec)


def ptp_to_ns(raw: bytes | bytearray | memoryview, offset: int = 0) -> int:
    """An 8-byte PTP timestamp to nanoseconds (0 stays 0, meaning "not filled")."""
    sec, nsec = _TS.unpack_from(raw, offset)
    return int(sec) * 1_000_000_000 + int(nsec)


def maid_bytes(meg_id: str) -> bytes:
    """The 48-byte MAID field: MD name format 1 (no MD name) + a character-string short MA name.

    802.1ag format 2 (character string, up to 45 bytes) carries any MEG name readably in tshark; the rest is
    zero padding as the standard requires.
    """
    name = meg_id.encode()
    if not 1 <= len(name) <= 45:
        raise OamError("a MEG ID must be 1..45 bytes")
    return (bytes((1, 2, len(name))) + name).ljust(48, b"\0")


@dataclass(frozen=True, slots=True)
class L2:
    """Where a frame goes: addresses, optional 802.1Q tag and priority."""

    dst: bytes
    src: bytes
    vlan: int | None = None
    priority: int = 0

    @property
    def header_len(self) -> int:
        """Bytes before the CFM header."""
        return 14 if self.vlan is None else 18


def _scapy_l2(l2: L2) -> Ether:
    sc = _scapy()
    ether: Ether = sc.Ether(dst=mac_to_str(l2.dst), src=mac_to_str(l2.src))
    if l2.vlan is None:
        return ether
    tagged: Ether = ether / sc.Dot1Q(vlan=l2.vlan, prio=l2.priority)
    return tagged


def _data_tlv(size: int) -> OAM_DATA_TLV | None:
    if size <= 0:
        return None
    sc = _scapy()
    tlv: OAM_DATA_TLV = sc.OAM_DATA_TLV() / sc.Raw(bytes(range(256)) * (size // 256) + bytes(range(size % 256)))
    return tlv


def _l2_header(l2: L2) -> bytes:
    """Destination, source, optional 802.1Q tag (PCP + VID) and the CFM EtherType."""
    head = l2.dst + l2.src
    if l2.vlan is not None:
        head += _U16.pack(ETH_P_8021Q) + _U16.pack((l2.priority & 7) << 13 | l2.vlan)
    return head + _U16.pack(ETH_P_CFM)


def _finish(pkt: Ether, l2: L2, min_size: int = 60) -> bytearray:
    """Serialise once; pad to the 60-byte Ethernet minimum like a NIC would (the End TLV ends the PDU)."""
    raw = bytes(pkt)
    if len(raw) < min_size:
        raw += b"\0" * (min_size - len(raw))
    return bytearray(raw)


def pad_for_size(l2: L2, base_pdu: int, frame_size: int) -> int:
    """Data TLV value length that makes the frame ``frame_size`` bytes (without FCS); 0 when already larger."""
    overhead = l2.header_len + base_pdu + 3 + 1  # TLV header + End TLV
    return max(0, frame_size - 4 - overhead)


def build_ccm(l2: L2, *, level: int, mep_id: int, meg_id: str, interval_s: float, rdi: bool = False) -> bytearray:
    """A CCM template (Y.1731 counters zero); patch seq at ``pdu+4`` and RDI in the flags byte.

    Built with :mod:`struct`, not scapy (byte-identical to scapy's, which the tests check), so a responder
    process sending CCMs never imports scapy.
    """
    flags = (FLAG_RDI if rdi else 0) | ccm_period_code(interval_s)
    pdu = bytes((level << 5, Opcode.CCM, flags, TLV_OFFSET[Opcode.CCM])) + _U32.pack(0) + _U16.pack(mep_id)
    pdu += maid_bytes(meg_id) + bytes(16) + bytes((TLV_END,))
    return bytearray(_l2_header(l2) + pdu)


def build_lbm(l2: L2, *, level: int, data_size: int = 0, test_tlv: bool = False) -> bytearray:
    """An LBM template with an optional Data TLV (or Test TLV, null pattern without CRC) of ``data_size``."""
    oam = _scapy().OAM(mel=level, version=0, opcode=Opcode.LBM, flags=0, tlv_offset=4, seq_num=0)
    if data_size > 0 and test_tlv:
        oam.tlvs = [_scapy().OAM_TEST_TLV(pat_type=0) / _scapy().Raw(b"\0" * max(data_size - 1, 0))]
    elif data_size > 0:
        oam.tlvs = [_data_tlv(data_size)]
    return _finish(_scapy_l2(l2) / oam, l2)


def build_ltm(l2: L2, *, level: int, ttl: int, origin: bytes, target: bytes) -> bytearray:
    """An LTM template (UseFDBonly set, LTM Egress Identifier TLV); patch the transaction id at ``pdu+4``."""
    oam = _scapy().OAM(
        mel=level,
        version=0,
        opcode=Opcode.LTM,
        flags=LTM_FLAG_USE_FDB_ONLY,
        tlv_offset=17,
        trans_id=0,
        ttl=ttl,
        orig_mac=mac_to_str(origin),
        targ_mac=mac_to_str(target),
        tlvs=[_scapy().OAM_LTM_TLV(egress_id=int.from_bytes(b"\0\0" + origin, "big"))],
    )
    return _finish(_scapy_l2(l2) / oam, l2)


def build_dmm(l2: L2, *, level: int, data_size: int = 0) -> bytearray:
    """A DMM template; patch TxTimestampf at ``pdu+4`` right before sending."""
    oam = _scapy().OAM(mel=level, version=1, opcode=Opcode.DMM, flags=0, tlv_offset=32)
    tlv = _data_tlv(data_size)
    if tlv is not None:
        oam.tlvs = [tlv]
    return _finish(_scapy_l2(l2) / oam, l2)


def build_1dm(l2: L2, *, level: int, data_size: int = 0) -> bytearray:
    """A 1DM template with an optional Data TLV of ``data_size``; patch TxTimestampf at ``pdu+4``."""
    oam = _scapy().OAM(mel=level, version=1, opcode=Opcode.ONE_DM, flags=0, tlv_offset=16)
    tlv = _data_tlv(data_size)
    if tlv is not None:
        oam.tlvs = [tlv]
    return _finish(_scapy_l2(l2) / oam, l2)


def build_slm(l2: L2, *, level: int, src_mep: int, test_id: int, data_size: int = 0) -> bytearray:
    """An SLM template; patch TxFCf at ``pdu+12``."""
    oam = _scapy().OAM(
        mel=level,
        version=0,
        opcode=Opcode.SLM,
        flags=0,
        tlv_offset=16,
        src_mep_id=src_mep,
        rcv_mep_id=0,
        test_id=test_id,
        txfcf=0,
        txfcb=0,
    )
    tlv = _data_tlv(data_size)
    if tlv is not None:
        oam.tlvs = [tlv]
    return _finish(_scapy_l2(l2) / oam, l2)


def build_lmm(l2: L2, *, level: int) -> bytearray:
    """An LMM template; patch TxFCf at ``pdu+4``."""
    oam = _scapy().OAM(mel=level, version=1, opcode=Opcode.LMM, flags=0, tlv_offset=12, txfcf=0, rxfcf=0, txfcb=0)
    return _finish(_scapy_l2(l2) / oam, l2)


def build_ais(l2: L2, *, level: int, interval_s: float = 1.0) -> bytearray:
    """An AIS frame (period 1 s or 1 min), sent at ``level`` (the client MEG level)."""
    period = 0b110 if interval_s >= 60 else 0b100
    oam = _scapy().OAM(mel=level, version=0, opcode=Opcode.AIS, flags=0, period=period, tlv_offset=0)
    return _finish(_scapy_l2(l2) / oam, l2)


class OamFrame(NamedTuple):
    """The parsed essentials of a received CFM frame (struct only, no scapy; a tuple: cheap on the hot path)."""

    dst: bytes
    src: bytes
    vlan: int | None
    pdu: int
    level: int
    version: int
    opcode: int
    flags: int
    tlv_offset: int


def parse(frame: bytes | bytearray | memoryview) -> OamFrame | None:
    """Parse the L2 and CFM common headers; ``None`` when the frame is not CFM (or truncated)."""
    if len(frame) < 18:
        return None
    ethertype = (frame[12] << 8) | frame[13]
    vlan: int | None = None
    pdu = 14
    if ethertype == ETH_P_8021Q:
        if len(frame) < 22:
            return None
        vlan = ((frame[14] << 8) | frame[15]) & 0x0FFF
        ethertype = (frame[16] << 8) | frame[17]
        pdu = 18
    if ethertype != ETH_P_CFM:
        return None
    first = frame[pdu]
    return OamFrame(
        bytes(frame[0:6]), bytes(frame[6:12]), vlan, pdu, first >> 5, first & 0x1F, frame[pdu + 1],
        frame[pdu + 2], frame[pdu + 3],
    )


def u32(frame: bytes | bytearray | memoryview, offset: int) -> int:
    """Read a big-endian 32-bit value."""
    return int(_U32.unpack_from(frame, offset)[0])


def u16(frame: bytes | bytearray | memoryview, offset: int) -> int:
    """Read a big-endian 16-bit value."""
    return int(_U16.unpack_from(frame, offset)[0])


def put_u32(frame: bytearray, offset: int, value: int) -> None:
    """Patch a big-endian 32-bit value in place."""
    _U32.pack_into(frame, offset, value & 0xFFFFFFFF)


def put_u16(frame: bytearray, offset: int, value: int) -> None:
    """Patch a big-endian 16-bit value in place."""
    _U16.pack_into(frame, offset, value & 0xFFFF)


def put_ts(frame: bytearray, offset: int, ns: int) -> None:
    """Patch a PTP timestamp in place."""
    sec, nsec = divmod(ns, 1_000_000_000)
    _TS.pack_into(frame, offset, sec & 0xFFFFFFFF, nsec)


def tlvs(frame: bytes | bytearray | memoryview, parsed: OamFrame) -> list[tuple[int, bytes]]:
    """The TLVs after the fixed part, up to the End TLV (type, value)."""
    pos = parsed.pdu + 4 + parsed.tlv_offset
    out: list[tuple[int, bytes]] = []
    while pos < len(frame):
        kind = frame[pos]
        if kind == TLV_END or pos + 3 > len(frame):
            break
        length = u16(frame, pos + 1)
        out.append((kind, bytes(frame[pos + 3 : pos + 3 + length])))
        pos += 3 + length
    return out


def swap_reply(frame: bytes | bytearray, parsed: OamFrame, opcode: int, own_mac: bytes) -> bytearray:
    """A reply built from a request: destination = requester, source = us, new opcode, same tag and level."""
    reply = bytearray(frame)
    reply[0:6] = parsed.src
    reply[6:12] = own_mac
    reply[parsed.pdu + 1] = opcode
    return reply


def build_ltr(
    request: bytes | bytearray, parsed: OamFrame, own_mac: bytes, *, terminal: bool, relay_action: int = 1
) -> bytearray:
    """An LTR answering ``request`` at a MEP (RlyHit when ``terminal``): Egress ID + Reply Ingress TLVs."""
    pdu = parsed.pdu
    head = bytearray(request[:pdu])
    head[0:6] = request[pdu + OFF_LTM_ORIG : pdu + OFF_LTM_ORIG + 6]
    head[6:12] = own_mac
    ttl = max(request[pdu + OFF_LTM_TTL] - 1, 0)
    flags = LTM_FLAG_USE_FDB_ONLY & parsed.flags | (LTR_FLAG_TERMINAL_MEP if terminal else LTR_FLAG_FWD_YES)
    body = bytearray((request[pdu], Opcode.LTR, flags, 6))
    body += request[pdu + OFF_SEQ : pdu + OFF_SEQ + 4]
    body += bytes((ttl, relay_action))
    egress = b"\0\0" + bytes(request[pdu + OFF_LTM_ORIG : pdu + OFF_LTM_ORIG + 6])
    body += bytes((TLV_LTR_EGRESS_ID,)) + _U16.pack(16) + egress + b"\0\0" + own_mac
    body += bytes((TLV_REPLY_INGRESS,)) + _U16.pack(7) + bytes((1,)) + own_mac  # IngOK
    body += b"\0"
    return head + body


@lru_cache(maxsize=1)
def scapy_version() -> str:
    """The scapy version the templates were built with (for diagnostics)."""
    import scapy

    return str(scapy.VERSION)
