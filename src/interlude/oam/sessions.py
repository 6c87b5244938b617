"""Sans-IO OAM sessions: frames and timestamps in, frames and results out; no sockets, no clocks, no asyncio.

A session is driven by :func:`interlude.oam.runner.drive` (or a test) through four calls:

* ``wakeup_ns()`` — when the driver must next call :meth:`poll` (a send is due or the session ends);
* ``poll(now_ns)`` — returns an :class:`Outgoing` frame when one is due, else ``None``;
* ``sent(tx_ns)`` — the driver reports the TX timestamp it wrote (taken right before ``send()``);
* ``receive(frame, rx_ns)`` — a received frame with its (kernel) RX timestamp; returns a
  :class:`Progress` line for live output when the frame answered us;
* ``finished(now_ns)`` / ``result()``.

A back-to-back loopback session can also hand its whole run to the transport as a :class:`PingPong` plan
(:meth:`Session.pingpong_plan` / :meth:`Session.record_pingpong`): the plan is data (template, offsets, the
reply header to match), so the session still never touches a socket, and the transport's loop avoids the
per-frame session calls.

Timestamps are nanoseconds on ``CLOCK_REALTIME`` (what ``SO_TIMESTAMPNS`` reports); the emulator passes a
virtual clock with the same meaning. Because the same objects run over raw sockets, the in-memory
transport and synthetic tests, the maths is tested once.

Pacing: with ``interval_ns > 0`` frames go out every interval (like ``ping -i``) and the session ends when
every frame is answered or ``timeout_ns`` after the last send. With ``interval_ns == 0`` it is a ping-pong:
the next frame leaves as soon as the previous one is answered or timed out (like ``ping -f``), which is how
the benchmark measures exchanges per second.

The sessions live in one module per family, all re-exported here (import them from this module):

* :mod:`interlude.oam.session_base` — :class:`Outgoing`, :class:`Progress`, :class:`PingPong`, ``MATCHED``
  and the pacing base :class:`Session`;
* :mod:`interlude.oam.session_loopback` — :class:`LoopbackSession`, :class:`LinktraceSession`;
* :mod:`interlude.oam.session_delay` — :class:`DelaySession`, :class:`OneWayDelaySession`,
  :class:`OneWayDelayReceiver`;
* :mod:`interlude.oam.session_loss` — :class:`SyntheticLossSession`, :class:`LossSession`;
* :mod:`interlude.oam.session_continuity` — :class:`ContinuityCheck`, :class:`CcmEvent`, :class:`RemoteMep`.
"""

from __future__ import annotations

from interlude.oam.session_base import MATCHED, Outgoing, PingPong, Progress, Session
from interlude.oam.session_continuity import CcmEvent, ContinuityCheck, RemoteMep
from interlude.oam.session_delay import DelaySession, OneWayDelayReceiver, OneWayDelaySession
from interlude.oam.session_loopback import LinktraceSession, LoopbackSession
from interlude.oam.session_loss import LossSession, SyntheticLossSession

__all__ = [
    "MATCHED",
    "CcmEvent",
    "ContinuityCheck",
    "DelaySession",
    "LinktraceSession",
    "LoopbackSession",
    "LossSession",
    "OneWayDelayReceiver",
    "OneWayDelaySession",
    "Outgoing",
    "PingPong",
    "Progress",
    "RemoteMep",
    "Session",
    "SyntheticLossSession",
]
