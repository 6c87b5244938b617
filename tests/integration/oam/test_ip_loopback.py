"""The IP engine on the loopback interface (no namespace, no root): both drivers against the real reflector."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from interlude.domain import ipsls
from interlude.domain.ipsls import IpProtocol
from interlude.oam.ip.reflector import Reflector, open_reflector
from interlude.oam.ip.udp import run_probe, session_for


class _Lossy(Reflector):
    """Ignores every fifth packet it receives (as if lost on the way in)."""

    def handle(self, view: memoryview, address: tuple[object, ...], rx_ns: int, ttl: int | None,
               tclass: int | None) -> None:
        self.seen = getattr(self, "seen", 0) + 1
        if self.seen % 5:
            super().handle(view, address, rx_ns, ttl, tclass)


@pytest.fixture(params=[Reflector, _Lossy], ids=["reflector", "lossy"])
def reflector(request: pytest.FixtureRequest) -> Iterator[Reflector]:
    plain = open_reflector(None, "127.0.0.1", 0)
    refl: Reflector = request.param(plain.sock)
    worker = threading.Thread(target=refl.run)
    worker.start()
    try:
        yield refl
    finally:
        refl.stop()
        worker.join()
        refl.close()


@pytest.mark.parametrize("interval_s", [0.0, 0.001], ids=["back-to-back", "paced"])
def test_every_reply_is_matched_and_loss_counted_forward(reflector: Reflector, interval_s: float) -> None:
    session = session_for(IpProtocol.STAMP, target="127.0.0.1", port=reflector.port, count=100,
                          interval_s=interval_s, timeout_s=0.05, clocks_shared=True)
    result = run_probe(session, None, "127.0.0.1", reflector.port)
    lossy = isinstance(reflector, _Lossy)
    assert result.sent == 100 and result.received == (80 if lossy else 100)
    lost = ipsls.loss(result)
    assert lost.backward_lost == 0
    tail = 99 - max(p.seq for p in result.packets if p.delivered)
    assert lost.forward_lost == (20 if lossy else 0) - tail
    for packet in result.packets:
        if packet.delivered:
            assert packet.reflector_rx_ns is not None and packet.reflector_tx_ns is not None
            assert packet.tx_ns <= packet.reflector_rx_ns <= packet.reflector_tx_ns <= (packet.rx_ns or 0)
    assert [p.reflector_seq for p in result.packets if p.delivered] == list(range(result.received))
