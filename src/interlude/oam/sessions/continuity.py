"""Continuity check (CCM, ETH-CC) with AIS: a long-lived MEP state machine, not a request/reply session.

It has its own poll/receive/check cycle and emits :class:`CcmEvent` changes instead of an
:class:`~interlude.domain.southbound.OamResult`, so it does not derive from
:class:`~interlude.oam.sessions.base.Session`; the responder and the runner use it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from interlude.oam import codec
from interlude.oam.codec import L2, OamFrame, Opcode
from interlude.oam.sessions.base import Outgoing

# -- continuity check -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CcmEvent:
    """A change of a remote MEP's continuity state."""

    kind: str  # "loc" | "loc-cleared" | "rdi" | "rdi-cleared" | "new-mep" | "mismerge" | "unexpected-level"
    #            | "ais" | "ais-cleared"
    mep_id: int | None
    at_ns: int
    detail: str = ""


@dataclass(slots=True)
class RemoteMep:
    """What we know about a remote MEP from its CCMs."""

    mep_id: int
    mac: str = ""
    last_seen_ns: int = 0
    last_seq: int = 0
    received: int = 0
    loc: bool = False
    rdi: bool = False


class ContinuityCheck:
    """CCM sender and checker for one MEP (ETH-CC): loss of continuity after 3.5 intervals, RDI both ways.

    Remote MEPs are the configured ``remote_meps`` (expected from the start) plus any learned from valid
    CCMs of our MEG and level. A remote MEP enters LOC when no CCM arrived for 3.5 intervals and leaves it on
    the next valid CCM. Our CCMs carry RDI while any remote MEP is in LOC. A CCM with our level but another
    MEG ID is a mismerge defect and is not learned.

    AIS (ETH-AIS, Y.1731 §7.4): with ``send_ais=True`` the MEP sends AIS frames on the client level
    (``level + 1``, to that level's class-1 group address) while any remote MEP is in LOC: the first one as
    soon as LOC is raised, then every ``ais_interval_ns`` (1 s, the standard period), none once continuity is
    back (a level-7 MEP has no client level and sends none). Received AIS frames of *our* level are a defect
    reported as an ``ais`` event; it clears (``ais-cleared``) when none arrived for 3.5 AIS periods.
    """

    LOC_FACTOR = 3.5
    AIS_INTERVAL_NS = 1_000_000_000

    def __init__(
        self,
        l2: L2,
        *,
        level: int,
        mep_id: int,
        meg_id: str,
        interval_ns: int,
        remote_meps: Iterable[int] = (),
        start_ns: int = 0,
        send_ais: bool = False,
        ais_interval_ns: int = AIS_INTERVAL_NS,
    ) -> None:
        self.l2 = l2
        self.level = level
        self.mep_id = mep_id
        self.meg_id = meg_id
        self.interval_ns = interval_ns
        self.template = codec.build_ccm(l2, level=level, mep_id=mep_id, meg_id=meg_id, interval_s=interval_ns / 1e9)
        self._maid = codec.maid_bytes(meg_id)
        self._flags_at = l2.header_len + 2
        self._seq_at = l2.header_len + codec.OFF_SEQ
        self.seq = 0
        self.next_send_ns = start_ns
        self.remotes: dict[int, RemoteMep] = {m: RemoteMep(m, last_seen_ns=start_ns) for m in remote_meps}
        self.tx_count = 0
        self.ais_interval_ns = ais_interval_ns
        self.ais_template: bytearray | None = None
        if send_ais and level < 7:
            client = L2(dst=codec.class1_multicast(level + 1), src=l2.src, vlan=l2.vlan, priority=l2.priority)
            self.ais_template = codec.build_ais(client, level=level + 1, interval_s=ais_interval_ns / 1e9)
        self.next_ais_ns: int | None = None
        """When the next AIS is due (``None``: not sending, the next LOC sends one at once)."""
        self.ais_sent = 0
        self.ais_defect = False
        """Whether AIS frames of our level are arriving (a server layer below us reported a failure)."""
        self.ais_received = 0
        self.ais_source = ""
        self._ais_last_rx_ns = 0
        self._ais_rx_period_ns = self.AIS_INTERVAL_NS

    @property
    def rdi(self) -> bool:
        """Whether our CCMs currently signal a remote defect."""
        return any(r.loc for r in self.remotes.values())

    def wakeup_ns(self) -> int:
        """Next CCM to send or LOC deadline to check."""
        deadlines = [self.next_send_ns]
        for remote in self.remotes.values():
            if not remote.loc:
                deadlines.append(remote.last_seen_ns + int(self.LOC_FACTOR * self.interval_ns))
        if self.ais_template is not None and self.rdi:
            deadlines.append(self.next_ais_ns or 0)
        if self.ais_defect:
            deadlines.append(self._ais_last_rx_ns + int(self.LOC_FACTOR * self._ais_rx_period_ns))
        return min(deadlines)

    def poll_ais(self, now_ns: int) -> Outgoing | None:
        """An AIS frame for the client level when one is due (only while a remote MEP is in LOC)."""
        if self.ais_template is None or not self.rdi:
            self.next_ais_ns = None
            return None
        if self.next_ais_ns is not None and now_ns < self.next_ais_ns:
            return None
        self.next_ais_ns = now_ns + self.ais_interval_ns
        self.ais_sent += 1
        return Outgoing(bytearray(self.ais_template))

    def poll(self, now_ns: int) -> tuple[Outgoing | None, list[CcmEvent]]:
        """A CCM when one is due, and LOC events for remote MEPs that fell silent."""
        events = self.check(now_ns)
        if now_ns < self.next_send_ns:
            return None, events
        self.seq += 1
        self.tx_count += 1
        frame = bytearray(self.template)
        codec.put_u32(frame, self._seq_at, self.seq)
        if self.rdi:
            frame[self._flags_at] |= codec.FLAG_RDI
        self.next_send_ns = max(self.next_send_ns + self.interval_ns, now_ns + self.interval_ns // 2)
        return Outgoing(frame), events

    def check(self, now_ns: int) -> list[CcmEvent]:
        """Raise LOC for remote MEPs silent for 3.5 intervals."""
        events: list[CcmEvent] = []
        limit = int(self.LOC_FACTOR * self.interval_ns)
        for remote in self.remotes.values():
            if not remote.loc and now_ns - remote.last_seen_ns > limit:
                remote.loc = True
                events.append(
                    CcmEvent("loc", remote.mep_id, now_ns, f"no CCM for {(now_ns - remote.last_seen_ns) / 1e6:.0f} ms")
                )
        if self.ais_defect and now_ns - self._ais_last_rx_ns > int(self.LOC_FACTOR * self._ais_rx_period_ns):
            self.ais_defect = False
            events.append(CcmEvent("ais-cleared", None, now_ns, f"no AIS from {self.ais_source}"))
        return events

    def _receive_ais(self, frame: bytes, parsed: OamFrame, rx_ns: int) -> list[CcmEvent]:
        period_code = parsed.flags & 0x07
        self._ais_rx_period_ns = 60_000_000_000 if period_code == 0b110 else self.AIS_INTERVAL_NS
        self._ais_last_rx_ns = rx_ns
        self.ais_received += 1
        self.ais_source = codec.mac_to_str(parsed.src)
        if self.ais_defect:
            return []
        self.ais_defect = True
        return [CcmEvent("ais", None, rx_ns, f"AIS from {self.ais_source}")]

    def receive(self, frame: bytes, rx_ns: int) -> list[CcmEvent]:
        """Process a received frame (CCM and AIS; other frames are ignored)."""
        parsed = codec.parse(frame)
        if parsed is None or parsed.vlan != self.l2.vlan:
            return []
        if parsed.opcode == Opcode.AIS:
            return self._receive_ais(frame, parsed, rx_ns) if parsed.level == self.level else []
        if parsed.opcode != Opcode.CCM:
            return []
        if parsed.level != self.level:
            if parsed.level < self.level:
                return [CcmEvent("unexpected-level", None, rx_ns, f"CCM at level {parsed.level}")]
            return []
        pdu = parsed.pdu
        if len(frame) < pdu + codec.OFF_CCM_MAID + 48:
            return []
        mep_id = codec.u16(frame, pdu + codec.OFF_CCM_MEPID) & 0x1FFF
        if bytes(frame[pdu + codec.OFF_CCM_MAID : pdu + codec.OFF_CCM_MAID + 48]) != self._maid:
            return [CcmEvent("mismerge", mep_id, rx_ns, "CCM with another MEG ID")]
        if mep_id == self.mep_id:
            return []  # our own CCM reflected back
        events: list[CcmEvent] = []
        remote = self.remotes.get(mep_id)
        if remote is None:
            remote = self.remotes[mep_id] = RemoteMep(mep_id)
            events.append(CcmEvent("new-mep", mep_id, rx_ns, codec.mac_to_str(parsed.src)))
        remote.mac = codec.mac_to_str(parsed.src)
        remote.last_seen_ns = rx_ns
        remote.last_seq = codec.u32(frame, pdu + codec.OFF_SEQ)
        remote.received += 1
        if remote.loc:
            remote.loc = False
            events.append(CcmEvent("loc-cleared", mep_id, rx_ns))
        rdi = bool(parsed.flags & codec.FLAG_RDI)
        if rdi != remote.rdi:
            remote.rdi = rdi
            events.append(CcmEvent("rdi" if rdi else "rdi-cleared", mep_id, rx_ns))
        return events

    def state(self) -> dict[str, Any]:
        """JSON-ready state: what a lab or adapter reads from the responder's state file."""
        return {
            "mep_id": self.mep_id,
            "level": self.level,
            "meg_id": self.meg_id,
            "rdi": self.rdi,
            "ccm_sent": self.tx_count,
            "ais": {
                "enabled": self.ais_template is not None,
                "sending": self.ais_template is not None and self.rdi,
                "sent": self.ais_sent,
                "defect": self.ais_defect,
                "received": self.ais_received,
            },
            "remotes": {
                str(r.mep_id): {
                    "mac": r.mac,
                    "loc": r.loc,
                    "rdi": r.rdi,
                    "received": r.received,
                    "last_seq": r.last_seq,
                }
                for r in self.remotes.values()
            },
        }
