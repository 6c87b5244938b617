"""TWAMP-Light (RFC 5357 §4 and Appendix I) and STAMP (RFC 8762) test packets, unauthenticated mode.

The two protocols share one wire layout, which is why one reflector serves both::

    session-sender (STAMP §4.2.1; TWAMP §4.1.2 is the first 14 bytes followed by padding)
      0 sequence number (u32)   4 timestamp (NTP 64-bit)   12 error estimate (u16)   14 MBZ / padding

    session-reflector (STAMP §4.3.1; TWAMP §4.2.1 is the first 41 bytes followed by padding)
      0 sequence number         4 timestamp (T3)           12 error estimate         14 MBZ (u16)
     16 receive timestamp (T2) 24 sender sequence number  28 sender timestamp (T1)  36 sender error estimate
     38 MBZ (u16)              40 sender TTL (u8)         41 MBZ (3 bytes, STAMP) / padding (TWAMP)

Every test packet is at least :data:`MIN_SIZE` (44) bytes, so a reply of the same length fits the reflector
layout (RFC 8762 §4.3 symmetric size; RFC 5357 recommends the sender pad to at least 27 bytes for the same
reason). Timestamps are NTP format (seconds since 1900 and a 32-bit fraction, Z bit 0) taken from
``CLOCK_REALTIME``, the clock of the kernel's ``SO_TIMESTAMPNS`` receive times.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

NTP_EPOCH_OFFSET_S = 2_208_988_800
"""Seconds from 1900-01-01 (NTP) to 1970-01-01 (Unix)."""
MIN_SIZE = 44
MAX_SIZE = 9000
OFF_SEQ = 0
OFF_TS = 4
OFF_ERR = 12
OFF_RX_TS = 16
OFF_SENDER_SEQ = 24
OFF_SENDER_TS = 28
OFF_SENDER_ERR = 36
OFF_SENDER_TTL = 40
ERROR_ESTIMATE = 0x0C01
"""S=0 (no external synchronisation claimed), Z=0 (NTP format), scale 12, multiplier 1: about 1 µs."""
ERROR_SYNCHRONIZED = 0x8000

_U32 = struct.Struct("!I")
_U16 = struct.Struct("!H")
_NTP = struct.Struct("!II")
_REFLECTED = struct.Struct("!IQHHQIQHHB")


def ns_to_ntp(ns: int) -> int:
    """Unix nanoseconds as a 64-bit NTP timestamp (rounded to the nearest fraction step, ~233 ps)."""
    seconds, rest = divmod(ns, 1_000_000_000)
    fraction = (rest * (1 << 32) + 500_000_000) // 1_000_000_000
    if fraction == 1 << 32:
        seconds, fraction = seconds + 1, 0
    return ((seconds + NTP_EPOCH_OFFSET_S) & 0xFFFFFFFF) << 32 | fraction


def ntp_to_ns(ntp: int) -> int:
    """A 64-bit NTP timestamp as Unix nanoseconds (era 0, i.e. until 2036)."""
    seconds, fraction = ntp >> 32, ntp & 0xFFFFFFFF
    return (seconds - NTP_EPOCH_OFFSET_S) * 1_000_000_000 + (fraction * 1_000_000_000 + (1 << 31)) // (1 << 32)


def put_ts(buf: bytearray, offset: int, ns: int) -> None:
    """Write ``ns`` as an NTP timestamp at ``offset``."""
    struct.pack_into("!Q", buf, offset, ns_to_ntp(ns))


def get_ts(buf: bytes | bytearray | memoryview, offset: int) -> int:
    """The NTP timestamp at ``offset`` as Unix nanoseconds."""
    seconds, fraction = _NTP.unpack_from(buf, offset)
    return ntp_to_ns(seconds << 32 | fraction)


def build_sender(size: int, *, error_estimate: int = ERROR_ESTIMATE) -> bytearray:
    """A session-sender test packet of ``size`` bytes (sequence number and timestamp set per send)."""
    if not MIN_SIZE <= size <= MAX_SIZE:
        raise ValueError(f"test packet size must be {MIN_SIZE}..{MAX_SIZE} bytes")
    packet = bytearray(size)
    _U16.pack_into(packet, OFF_ERR, error_estimate)
    return packet


def set_seq(packet: bytearray, seq: int) -> None:
    """Write the sequence number."""
    _U32.pack_into(packet, OFF_SEQ, seq & 0xFFFFFFFF)


def get_seq(packet: bytes | bytearray | memoryview) -> int:
    """The sequence number (first four bytes) of any test packet."""
    return int(_U32.unpack_from(packet, OFF_SEQ)[0])


def reflect(request: bytes | bytearray | memoryview, *, seq: int, rx_ns: int, ttl: int,
            error_estimate: int = ERROR_ESTIMATE) -> bytearray:
    """The reflector's reply to ``request``: same length (at least :data:`MIN_SIZE`), T3 still to be written.

    The sender's sequence number, timestamp and error estimate are copied, ``rx_ns`` (T2, the kernel receive
    time) and the received TTL / hop limit are set, every MBZ field is zero; bytes past the reflector layout
    keep the sender's padding. The caller writes T3 with :func:`put_ts` at :data:`OFF_TS` right before sending.
    """
    if len(request) < OFF_ERR + 2:
        raise ValueError("not a test packet (shorter than 14 bytes)")
    reply = bytearray(max(MIN_SIZE, len(request)))
    reply[MIN_SIZE:] = request[MIN_SIZE:]
    sender_seq, sender_ts, sender_err = struct.unpack_from("!IQH", request, 0)
    _REFLECTED.pack_into(reply, 0, seq & 0xFFFFFFFF, 0, error_estimate, 0, ns_to_ntp(rx_ns), sender_seq,
                         sender_ts, sender_err, 0, ttl & 0xFF)
    return reply


@dataclass(frozen=True, slots=True)
class Reflected:
    """A decoded reflector packet; timestamps in Unix ns."""

    seq: int
    tx_ns: int
    error_estimate: int
    rx_ns: int
    sender_seq: int
    sender_tx_ns: int
    sender_error_estimate: int
    sender_ttl: int


def parse_reflected(packet: bytes | bytearray | memoryview) -> Reflected | None:
    """Decode a reflector packet, or ``None`` when it is too short to be one."""
    if len(packet) < OFF_SENDER_TTL + 1:
        return None
    seq, ts, err, _mbz, rx, sseq, sts, serr, _mbz2, ttl = _REFLECTED.unpack_from(packet, 0)
    return Reflected(seq, ntp_to_ns(ts), err, ntp_to_ns(rx), sseq, ntp_to_ns(sts), serr, ttl)
