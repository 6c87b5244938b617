"""``serve_blocking`` reads frames that already wait before it judges continuity.

CCMs queued in the socket while the responder starts (or while it is not scheduled) carry kernel RX times
from before the loop's clock reading; judging loss of continuity first raised a false LOC and sent AIS
(seen as a flaky AIS lab test on a loaded machine). A scripted transport replays exactly that.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import cast

from interlude.oam import codec
from interlude.oam.codec import L2
from interlude.oam.responder import MepResponder, serve_blocking
from interlude.oam.transport import RawTransport

T0 = 1_700_000_000_000_000_000
MS = 1_000_000


class QueuedTransport:
    """Frames already queued with their RX times; the clock starts late; ``stop`` once the queue is empty."""

    lean_rx = False

    def __init__(self, frames: list[tuple[bytes, int]], start_ns: int, stop: threading.Event) -> None:
        self._backlog: deque[tuple[bytes, int]] = deque(frames)
        self.clock = start_ns
        self.stop = stop
        self.sent: list[bytearray] = []

    def now_ns(self) -> int:
        return self.clock

    def send(self, frame: bytearray, stamp_at: int | None = None) -> int:
        self.sent.append(frame)
        return self.clock

    def read_until(self, until_ns: int) -> tuple[bytes, int] | None:
        if self._backlog:
            return self._backlog.popleft()
        self.clock += MS
        if until_ns > 0:  # a real wait: nothing more will come
            self.stop.set()
        return None


def test_queued_ccms_are_read_before_loss_of_continuity_is_judged() -> None:
    ours, theirs = bytes.fromhex("020000000001"), bytes.fromhex("020000000002")
    ccms = []
    for i in range(5):  # MEP 2 sent every 100 ms from T0; the loop only starts 450 ms later
        frame = codec.build_ccm(L2(dst=codec.class1_multicast(3), src=theirs), level=3, mep_id=2,
                                meg_id="interlude", interval_s=0.1)
        codec.put_u32(frame, 14 + codec.OFF_SEQ, i + 1)
        ccms.append((bytes(frame), T0 + i * 100 * MS))
    stop = threading.Event()
    transport = QueuedTransport(ccms, T0 + 450 * MS, stop)
    responder = MepResponder(ours, level=3, mep_id=1, ccm_interval_s=0.1, remote_meps=(2,), start_ns=T0,
                             send_ais=True)
    events: list[str] = []
    serve_blocking(responder, cast(RawTransport, transport), stop, on_event=lambda e: events.append(e.kind))
    assert responder.ccm is not None
    state = responder.ccm.state()
    assert state["remotes"]["2"]["received"] == 5
    assert "loc" not in events, events
    assert state["ais"]["sent"] == 0
    assert all(frame[15] != codec.Opcode.AIS for frame in transport.sent)
