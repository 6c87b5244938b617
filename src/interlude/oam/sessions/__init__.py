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

The sessions live in one module per family (import each name from its module):

* :mod:`interlude.oam.sessions.base` — :class:`Outgoing`, :class:`Progress`, :class:`PingPong`, ``MATCHED``
  and the pacing base :class:`Session`;
* :mod:`interlude.oam.sessions.loopback` — :class:`LoopbackSession`, :class:`LinktraceSession`;
* :mod:`interlude.oam.sessions.delay` — :class:`DelaySession`, :class:`OneWayDelaySession`,
  :class:`OneWayDelayReceiver`;
* :mod:`interlude.oam.sessions.loss` — :class:`SyntheticLossSession`, :class:`LossSession`;
* :mod:`interlude.oam.sessions.continuity` — :class:`ContinuityCheck`, :class:`CcmEvent`, :class:`RemoteMep`.
"""
