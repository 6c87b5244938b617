"""Sans-IO sessions and the responder with synthetic timestamps: the maths, matching and pacing."""

from __future__ import annotations

from interlude.domain.southbound import OamKind
from interlude.oam import codec
from interlude.oam.codec import L2, Opcode
from interlude.oam.responder import MepResponder
from interlude.oam.sessions.base import Outgoing
from interlude.oam.sessions.continuity import ContinuityCheck
from interlude.oam.sessions.delay import DelaySession, OneWayDelayReceiver, OneWayDelaySession
from interlude.oam.sessions.loopback import LinktraceSession, LoopbackSession
from interlude.oam.sessions.loss import LossSession, SyntheticLossSession

A = codec.mac_to_bytes("02:00:00:00:00:01")
B = codec.mac_to_bytes("02:00:00:00:00:02")
MS = 1_000_000
T0 = 1_700_000_000 * 1_000_000_000


def _send(session: object, now: int) -> Outgoing:
    out: Outgoing | None = session.poll(now)  # type: ignore[attr-defined]
    assert out is not None
    if out.stamp_at is not None:
        codec.put_ts(out.frame, out.stamp_at, now)
    session.sent(now)  # type: ignore[attr-defined]
    return out


def test_loopback_rtt_matching_and_timeout() -> None:
    session = LoopbackSession(L2(dst=B, src=A), level=3, count=3, interval_ns=100 * MS, timeout_ns=50 * MS)
    responder = MepResponder(B, level=3, mep_id=2)
    assert session.wakeup_ns() == 0
    out1 = _send(session, T0)
    assert session.poll(T0 + 10 * MS) is None  # not due before the interval
    [(reply, stamp)] = responder.handle(bytes(out1.frame), T0 + 1 * MS)
    assert stamp is None and codec.parse(reply).opcode == Opcode.LBR  # type: ignore[union-attr]
    progress = session.receive(bytes(reply), T0 + 2 * MS)
    assert progress is not None and progress.delay_us == 2000.0 and progress.details["seq"] == 1
    assert session.receive(bytes(reply), T0 + 3 * MS) is None  # duplicate ignored
    _send(session, T0 + 100 * MS)  # lost
    out3 = _send(session, T0 + 200 * MS)
    [(reply3, _)] = responder.handle(bytes(out3.frame), T0 + 200 * MS)
    session.receive(bytes(reply3), T0 + 205 * MS)
    assert not session.finished(T0 + 240 * MS)
    assert session.finished(T0 + 250 * MS)
    result = session.result()
    assert result.kind is OamKind.LOOPBACK
    assert (result.sent, result.received, result.delays_us) == (3, 2, (2000.0, 5000.0))
    assert result.answered == (True, False, True)


def test_loopback_ignores_wrong_level_vlan_and_source() -> None:
    session = LoopbackSession(L2(dst=B, src=A), level=3, count=1, interval_ns=0, timeout_ns=MS)
    out = _send(session, T0)
    assert MepResponder(B, level=4, mep_id=2).handle(bytes(out.frame), T0) == []
    assert MepResponder(B, level=3, mep_id=2, vlan=10).handle(bytes(out.frame), T0) == []
    [(reply, _)] = MepResponder(B, level=3, mep_id=2).handle(bytes(out.frame), T0)
    forged = bytearray(reply)
    forged[6:12] = codec.mac_to_bytes("02:00:00:00:00:09")
    for report in (True, False):  # the general path and the hot path (no progress objects)
        session.report = report
        assert session.receive(bytes(forged), T0 + MS) is None
    assert session.receive(bytes(reply), T0 + MS) is not None
    assert session.receive(bytes(reply), T0 + MS) is None  # answered already


def test_delay_removes_responder_residence_time() -> None:
    session = DelaySession(L2(dst=B, src=A), level=3, count=1, interval_ns=0, timeout_ns=MS * 100)
    responder = MepResponder(B, level=3, mep_id=2)
    out = _send(session, T0)
    # 5 ms out, 300 us in the responder, 5 ms back
    [(reply, stamp_at)] = responder.handle(bytes(out.frame), T0 + 5 * MS)
    assert stamp_at is not None
    codec.put_ts(reply, stamp_at, T0 + 5 * MS + 300_000)
    progress = session.receive(bytes(reply), T0 + 10 * MS + 300_000)
    assert progress is not None
    assert progress.delay_us == 10_000.0 and progress.details["residence_us"] == 300.0
    assert session.finished(T0 + 11 * MS)
    assert session.result().delays_us == (10_000.0,)


def test_synthetic_loss_splits_forward_and_backward() -> None:
    session = SyntheticLossSession(
        L2(dst=B, src=A), level=3, count=10, interval_ns=MS, timeout_ns=MS, src_mep=1, test_id=7
    )
    responder = MepResponder(B, level=3, mep_id=2)
    for i in range(10):
        out = _send(session, T0 + i * MS)
        if i in (2, 5):  # lost on the way out
            continue
        [(reply, _)] = responder.handle(bytes(out.frame), T0 + i * MS)
        if i == 7:  # lost on the way back
            continue
        assert codec.u16(reply, 14 + codec.OFF_SL_RSP) == 2
        session.receive(bytes(reply), T0 + i * MS + 1000)
    result = session.result()
    assert (result.sent, result.received, result.forward_lost, result.backward_lost) == (10, 7, 2, 1)
    # another test id has its own counter
    other = SyntheticLossSession(L2(dst=B, src=A), level=3, count=1, interval_ns=0, timeout_ns=MS, src_mep=1, test_id=8)
    [(reply, _)] = responder.handle(bytes(_send(other, T0).frame), T0)
    assert codec.u32(reply, 14 + codec.OFF_SL_TXFCB) == 1


def test_lmm_counters() -> None:
    session = LossSession(L2(dst=B, src=A), level=3, count=6, interval_ns=MS, timeout_ns=MS)
    responder = MepResponder(B, level=3, mep_id=2)
    for i in range(6):
        out = _send(session, T0 + i * MS)
        if i == 2:
            continue  # forward loss
        [(reply, _)] = responder.handle(bytes(out.frame), T0 + i * MS)
        if i == 4:
            continue  # backward loss
        session.receive(bytes(reply), T0 + i * MS + 10)
    result = session.result()
    assert (result.forward_lost, result.backward_lost) == (1, 1)


def test_linktrace_collects_hops_and_stops_at_target() -> None:
    session = LinktraceSession(L2(dst=B, src=A), level=3, target=B, timeout_ns=MS * 100, transaction_id=99)
    out = _send(session, T0)
    assert out.frame[0:6] == codec.class2_multicast(3)
    parsed = codec.parse(out.frame)
    assert parsed is not None
    mip = codec.build_ltr(out.frame, parsed, codec.mac_to_bytes("02:00:00:00:00:0a"), terminal=False, relay_action=2)
    session.receive(bytes(mip), T0 + MS)
    assert not session.finished(T0 + 2 * MS)
    [(ltr, _)] = MepResponder(B, level=3, mep_id=2).handle(bytes(out.frame), T0)
    session.receive(bytes(ltr), T0 + 2 * MS)
    assert session.finished(T0 + 2 * MS)
    result = session.result()
    assert [h.mac for h in result.hops] == ["02:00:00:00:00:0a", "02:00:00:00:00:02"]
    assert result.hops[0].relay_action == 2 and result.hops[1].ttl == 63


def test_ping_pong_sends_next_after_reply() -> None:
    session = LoopbackSession(L2(dst=B, src=A), level=3, count=2, interval_ns=0, timeout_ns=10 * MS)
    out = _send(session, T0)
    assert session.poll(T0 + 1) is None
    [(reply, _)] = MepResponder(B, level=3, mep_id=2).handle(bytes(out.frame), T0)
    session.receive(bytes(reply), T0 + 100)
    assert session.poll(T0 + 200) is not None


def test_ccm_loc_after_three_and_a_half_intervals_and_rdi() -> None:
    group = L2(dst=codec.class1_multicast(3), src=A)
    a = ContinuityCheck(group, level=3, mep_id=1, meg_id="meg", interval_ns=100 * MS, remote_meps=(2,), start_ns=T0)
    b = ContinuityCheck(L2(dst=group.dst, src=B), level=3, mep_id=2, meg_id="meg", interval_ns=100 * MS, start_ns=T0)
    out_b, _ = b.poll(T0)
    assert out_b is not None
    assert a.receive(bytes(out_b.frame), T0 + MS) == []  # expected MEP: no new-mep event
    assert a.check(T0 + MS + 350 * MS) == []
    events = a.check(T0 + MS + 351 * MS)
    assert [e.kind for e in events] == ["loc"]
    out_a, _ = a.poll(T0 + 400 * MS)
    assert out_a is not None and codec.parse(out_a.frame).flags & codec.FLAG_RDI  # type: ignore[union-attr]
    kinds = [e.kind for e in b.receive(bytes(out_a.frame), T0 + 401 * MS)]
    assert kinds == ["new-mep", "rdi"]
    out_b, _ = b.poll(T0 + 402 * MS)
    assert [e.kind for e in a.receive(bytes(out_b.frame), T0 + 403 * MS)] == ["loc-cleared"]  # type: ignore[union-attr]
    assert not a.rdi
    other = ContinuityCheck(L2(dst=group.dst, src=B), level=3, mep_id=5, meg_id="other", interval_ns=100 * MS)
    frame, _ = other.poll(T0)
    assert [e.kind for e in a.receive(bytes(frame.frame), T0)] == ["mismerge"]  # type: ignore[union-attr]
    assert a.state()["remotes"]["2"]["loc"] is False


def test_responder_lmm_and_dmm_fields() -> None:
    responder = MepResponder(B, level=3, mep_id=2, vlan=100)
    l2 = L2(dst=B, src=A, vlan=100)
    dmm = codec.build_dmm(l2, level=3)
    codec.put_ts(dmm, 18 + codec.OFF_DM_TXF, T0)
    [(dmr, stamp_at)] = responder.handle(bytes(dmm), T0 + 7)
    assert stamp_at == 18 + codec.OFF_DM_TXB
    assert codec.ptp_to_ns(dmr, 18 + codec.OFF_DM_RXF) == T0 + 7
    assert codec.parse(dmr).vlan == 100 and dmr[0:6] == A  # type: ignore[union-attr]
    assert responder.answered == {"DMM": 1}


def test_group_addressed_slm_locks_onto_the_first_responder() -> None:
    group = L2(dst=codec.class1_multicast(3), src=A)
    session = SyntheticLossSession(group, level=3, count=2, interval_ns=MS, timeout_ns=MS, src_mep=1, test_id=7)
    first = MepResponder(B, level=3, mep_id=2)
    other = MepResponder(codec.mac_to_bytes("02:00:00:00:00:03"), level=3, mep_id=3)
    out1 = _send(session, T0)
    out2 = _send(session, T0 + MS)
    [(reply2, _)] = first.handle(bytes(out2.frame), T0 + MS)
    assert session.receive(bytes(reply2), T0 + MS + 10) is not None  # locks onto B
    [(other1, _)] = other.handle(bytes(out1.frame), T0)
    assert session.receive(bytes(other1), T0 + MS + 20) is None  # an unanswered slot, but another responder
    result = session.result()
    assert result.received == 1 and session.peer == B


def test_ais_sent_on_client_level_while_loc_and_received_ais_is_a_defect() -> None:
    group = L2(dst=codec.class1_multicast(3), src=A)
    server = MepResponder(A, level=3, mep_id=1, ccm_interval_s=0.1, remote_meps=(2,), start_ns=T0, send_ais=True)
    assert server.poll_ais(T0) is None  # continuity fine: no AIS
    server.poll_ccm(T0 + 351 * MS)
    assert [e.kind for e in server.events] == ["loc"]
    assert server.ccm is not None and server.ccm.wakeup_ns() <= T0 + 351 * MS  # the first AIS is due at once
    ais = server.poll_ais(T0 + 351 * MS)
    assert ais is not None
    frame, stamp_at = ais
    parsed = codec.parse(frame)
    assert parsed is not None and stamp_at is None
    assert (parsed.opcode, parsed.level, parsed.dst, parsed.flags & 7) == (Opcode.AIS, 4, codec.class1_multicast(4), 4)
    assert server.poll_ais(T0 + 900 * MS) is None  # one per second
    assert server.poll_ais(T0 + 1351 * MS) is not None
    assert server.ccm.state()["ais"] == {"enabled": True, "sending": True, "sent": 2, "defect": False, "received": 0}

    # a client-level MEP (level 4) receiving that AIS raises the defect; 3.5 periods of silence clear it
    client = ContinuityCheck(L2(dst=codec.class1_multicast(4), src=B), level=4, mep_id=7, meg_id="meg",
                             interval_ns=1000 * MS, start_ns=T0)
    assert ContinuityCheck(group, level=3, mep_id=8, meg_id="meg", interval_ns=MS).receive(bytes(frame), T0) == []
    events = client.receive(bytes(frame), T0 + 400 * MS)
    assert [(e.kind, e.detail) for e in events] == [("ais", "AIS from 02:00:00:00:00:01")]
    assert client.receive(bytes(frame), T0 + 1400 * MS) == []  # still the same defect
    assert client.state()["ais"]["defect"] is True and client.wakeup_ns() <= T0 + 4900 * MS
    assert client.check(T0 + 4900 * MS) == []
    assert [e.kind for e in client.check(T0 + 4901 * MS)] == ["ais-cleared"]

    # continuity back: AIS stops; a level-7 MEP has no client level
    b = ContinuityCheck(L2(dst=group.dst, src=B), level=3, mep_id=2, meg_id="interlude", interval_ns=100 * MS)
    ccm, _ = b.poll(T0 + 1400 * MS)
    assert ccm is not None
    server.handle(bytes(ccm.frame), T0 + 1400 * MS)
    assert "loc-cleared" in [e.kind for e in server.events]
    assert server.poll_ais(T0 + 2400 * MS) is None
    top = ContinuityCheck(L2(dst=codec.class1_multicast(7), src=A), level=7, mep_id=1, meg_id="m",
                          interval_ns=100 * MS, remote_meps=(2,), start_ns=T0, send_ais=True)
    top.check(T0 + 400 * MS)
    assert top.rdi and top.poll_ais(T0 + 400 * MS) is None


def test_one_way_delay_sender_and_receiver() -> None:
    session = OneWayDelaySession(L2(dst=B, src=A), level=3, count=3, interval_ns=0, timeout_ns=MS)
    receiver = OneWayDelayReceiver(B, level=3, source=A)
    frames = []
    for i in range(3):  # no replies: back to back
        assert session.wakeup_ns() == 0
        frames.append(_send(session, T0 + i * MS))
    assert session.finished(T0 + 2 * MS) and session.poll(T0 + 3 * MS) is None
    assert session.tx_timestamps() == [T0, T0 + MS, T0 + 2 * MS]
    parsed = codec.parse(frames[0].frame)
    assert parsed is not None and (parsed.opcode, parsed.version, parsed.tlv_offset) == (Opcode.ONE_DM, 1, 16)
    progress = receiver.receive(bytes(frames[0].frame), T0 + 5 * MS)
    assert progress is not None and progress.delay_us == 5000.0
    assert receiver.receive(bytes(frames[0].frame), T0 + 6 * MS) is not None  # a duplicate arrives...
    receiver.receive(bytes(frames[2].frame), T0 + 2 * MS + 4 * MS)  # frame 1 is lost
    assert OneWayDelayReceiver(B, level=4).receive(bytes(frames[0].frame), T0) is None  # other level
    assert OneWayDelayReceiver(B, level=3, source=B).receive(bytes(frames[0].frame), T0) is None
    assert OneWayDelayReceiver(A, level=3).receive(bytes(frames[0].frame), T0) is None  # not for us
    result = receiver.result(session.tx_timestamps())
    assert result.kind is OamKind.DELAY
    assert (result.sent, result.received, result.delays_us) == (3, 2, (5000.0, 4000.0))  # ...and counts once
    assert result.answered == (True, False, True)
    assert receiver.result().received == 3  # without the sender's view: every arrival
    paced = OneWayDelaySession(L2(dst=B, src=A, vlan=7), level=3, count=2, interval_ns=10 * MS, timeout_ns=MS,
                               data_size=40)
    out = _send(paced, T0)
    assert paced.wakeup_ns() == T0 + 10 * MS and paced.poll(T0 + 5 * MS) is None
    assert codec.tlvs(out.frame, codec.parse(out.frame)) == [(codec.TLV_DATA, bytes(range(40)))]  # type: ignore[arg-type]
    assert OneWayDelayReceiver(B, level=3, vlan=7).receive(bytes(out.frame), T0 + 30_000) is not None


def test_pingpong_plan_only_for_back_to_back_untagged_unicast_and_records_the_run() -> None:
    def loopback(**kw: object) -> LoopbackSession:
        args: dict[str, object] = {"level": 3, "count": 3, "interval_ns": 0, "timeout_ns": MS, **kw}
        session = LoopbackSession(args.pop("l2", L2(dst=B, src=A)), **args)  # type: ignore[arg-type]
        session.report = False
        return session

    assert loopback(interval_ns=MS).pingpong_plan() is None
    assert loopback(l2=L2(dst=B, src=A, vlan=5)).pingpong_plan() is None
    assert loopback(l2=L2(dst=codec.class1_multicast(3), src=A)).pingpong_plan() is None
    watched = loopback()
    watched.report = True
    assert watched.pingpong_plan() is None
    assert DelaySession(L2(dst=B, src=A), level=3, count=1, interval_ns=0, timeout_ns=MS).pingpong_plan() is None
    session = loopback()
    plan = session.pingpong_plan()
    assert plan is not None and plan.count == 3 and plan.timeout_ns == MS
    # the header the transport matches is exactly the responder's LBR header; the seq sits where it patches
    codec.put_u32(plan.frame, plan.seq_at, plan.first_seq + 1)
    [(reply, _)] = MepResponder(B, level=3, mep_id=2).handle(bytes(plan.frame), T0)
    assert reply.startswith(plan.reply_head) and codec.u32(reply, plan.reply_seq_at) == plan.first_seq + 1
    plan.tx_ns[:] = [T0, T0 + MS, T0 + 3 * MS]
    plan.rx_ns[:] = [T0 + 10_000, 0, 0]
    session.record_pingpong(plan, 2)  # cancelled after two frames
    result = session.result()
    assert (result.sent, result.received, result.delays_us, result.answered) == (2, 1, (10.0,), (True, False))
