"""The transport's back-to-back loopback loop (``RawTransport.pingpong``) keeps the session's semantics.

A scripted far end answers with strays first, skips a frame and answers it late; the ping-pong path (no
progress callback) and the frame-by-frame path (progress callback) must report the same outcome.
"""

from __future__ import annotations

import socket
import threading
import time

import pytest

from interlude.domain.southbound import MepSpec, OamKind, OamRequest
from interlude.oam.runner import run_session
from interlude.oam.sessions.base import PingPong, Progress
from interlude.oam.transport import RawTransport, open_cfm_socket
from tests.integration.oam.conftest import make_pair
from tests.support.netns import NetnsFactory

pytestmark = pytest.mark.lab


def _scripted_far_end(sock: socket.socket, stop: threading.Event) -> None:
    """Per LBM seq: 1 -> a stray (wrong seq, other source) then the reply; 2 -> nothing; 3 -> the late reply
    to 2, then the reply to 3; others -> the reply."""
    sock.settimeout(0.05)
    mac = sock.getsockname()[4]
    while not stop.is_set():
        try:
            data, addr = sock.recvfrom(2048)
        except TimeoutError:
            continue
        if addr[2] == socket.PACKET_OUTGOING or data[15] != 3:
            continue
        seq = int.from_bytes(data[18:22], "big")

        def reply(seq: int, src: bytes = mac, data: bytes = data) -> bytes:
            return data[6:12] + src + data[12:15] + b"\x02" + data[16:18] + seq.to_bytes(4, "big") + data[22:]

        if seq % 10 == 1:
            sock.send(reply(seq + 50))
            sock.send(reply(seq, src=bytes.fromhex("02aabbccddee")))
        if seq % 10 == 2:
            continue
        if seq % 10 == 3:
            time.sleep(0.005)
            sock.send(reply(seq - 1))
        sock.send(reply(seq))


@pytest.mark.parametrize("watched", [False, True], ids=["pingpong", "frame-by-frame"])
def test_pingpong_matches_frame_by_frame_semantics(
    netns_factory: NetnsFactory, watched: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs: list[int] = []
    original = RawTransport.pingpong

    def spy(self: RawTransport, plan: PingPong, cancelled: threading.Event | None = None) -> int:
        runs.append(plan.count)
        return original(self, plan, cancelled)

    monkeypatch.setattr(RawTransport, "pingpong", spy)
    pair = make_pair(netns_factory, "8p" if watched else "8f")
    far = open_cfm_socket(pair.if_b, pair.b)
    far.setblocking(True)
    stop = threading.Event()
    thread = threading.Thread(target=_scripted_far_end, args=(far, stop))
    thread.start()
    try:
        target = netns_factory.sysfs(pair.b, pair.if_b, "address")
        mep = MepSpec(name="m1", node="a", interface=pair.if_a, mep_id=1)
        seen: list[Progress] = []
        request = OamRequest(kind=OamKind.LOOPBACK, mep=mep, count=14, interval_s=0, timeout_s=0.05)
        started = time.monotonic()
        result = run_session(request, netns=pair.a, interface=pair.if_a, target_mac=target,
                             on_progress=seen.append if watched else None)
        elapsed = time.monotonic() - started
    finally:
        stop.set()
        thread.join()
        far.close()
    # frames 2 and 12 get no reply in time: the session waits out their timeout, then the late reply counts
    assert (result.sent, result.received) == (14, 14), result
    assert all(result.answered)
    delays = result.delays_us
    assert delays[1] >= 50_000 and delays[11] >= 50_000, delays
    assert max(d for i, d in enumerate(delays) if i not in (1, 11)) < 40_000, delays
    assert 0.1 <= elapsed < 5
    assert bool(seen) == watched
    assert runs == ([] if watched else [14])  # the path under test really ran
