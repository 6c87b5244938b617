"""Store behaviour every implementation keeps: :class:`StoreCases` runs against the ``store`` fixture of the
test directory that subclasses it (SQLite in ``tests/unit/store``, PostgreSQL in ``tests/integration/store``)."""

from __future__ import annotations

import time

import pytest

from interlude.domain.model import ItemAction, OrderItem, OrderState, ServiceOrder, ServiceState, iso, utcnow
from interlude.domain.queries import ServiceQuery
from interlude.errors import ValidationError
from interlude.service.inventory.config import seed_services
from interlude.store import rows
from interlude.store.base import (
    AgeQuery,
    Document,
    DocumentStamp,
    OutboxFailure,
    OutboxMessage,
    Store,
    Subscription,
)
from interlude.topology.loader import bundled_topology_path, load_topology

TOPO = load_topology(bundled_topology_path())


class StoreCases:
    """The generic store tests (a ``Test*`` subclass per implementation collects them)."""

    async def test_services_filters_and_paging(self, store: Store) -> None:
        async with store.transaction() as tx:
            for svc in seed_services(TOPO):
                await tx.save_service(svc)
        total = await store.count_services()
        page, count = await store.list_services(ServiceQuery(buyer="sp-alpha"), 0, 3)
        assert len(page) == 3 and count < total
        assert all(s.buyer == "sp-alpha" for s in page)
        _, n_ovc = await store.list_services(ServiceQuery(kind="ovc"), 0, 100)
        assert n_ovc == 4
        none, zero = await store.list_services(ServiceQuery(state=ServiceState.TERMINATED), 0, 10)
        assert none == [] and zero == 0
        future = iso(utcnow().replace(year=2100))
        _, before = await store.list_services(ServiceQuery(service_date_lt=future), 0, 1)
        assert before == total
        assert await store.get_service("ovc-1001", buyer="sp-beta") is None
        assert (await store.get_service("ovc-1001", buyer="sp-alpha")) is not None

    async def test_all_services_in_creation_order_across_read_batches(
        self, store: Store, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(rows, "LOAD_BATCH", 4)  # the 26 seed services span seven batches
        seed = seed_services(TOPO)
        async with store.transaction() as tx:
            for svc in seed:
                await tx.save_service(svc)
        loaded = await store.all_services()
        assert loaded == seed
        assert loaded[-1].ports[0] is next(s for s in loaded if s.ports == loaded[-1].ports[:1]).ports[0]
        assert await store.get_service(seed[0].id) == seed[0]  # the store's reads go on after the load

    async def test_pages_of_each_filter_follow_creation_order(self, store: Store) -> None:
        seed = seed_services(TOPO)
        async with store.transaction() as tx:
            for svc in seed:
                await tx.save_service(svc)
        queries = [ServiceQuery(), ServiceQuery(buyer="sp-beta"), ServiceQuery(state=ServiceState.ACTIVE),
                   ServiceQuery(buyer="sp-alpha", kind="ovcEndPoint"), ServiceQuery(service_type="UNI"),
                   ServiceQuery(buyer="sp-alpha", state=ServiceState.ACTIVE, service_type="UNI")]  # fmt: skip
        for query in queries:
            expected = [
                s for s in seed if query.buyer in (None, s.buyer) and query.kind in (None, s.kind)
                and query.state in (None, s.state) and query.service_type in (None, s.service_type)
            ]  # fmt: skip
            paged: list[object] = []
            for offset in range(0, len(seed) + 3, 3):
                page, total = await store.list_services(query, offset, 3)
                assert total == len(expected)
                paged.extend(page)
            assert paged == expected, query

    async def test_a_filter_total_follows_every_change_of_services(self, store: Store) -> None:
        seed = seed_services(TOPO)
        async with store.transaction() as tx:
            for svc in seed:
                await tx.save_service(svc)
        alpha = ServiceQuery(buyer="sp-alpha", state=ServiceState.ACTIVE)
        _, before = await store.list_services(alpha, 0, 5)
        assert before == sum(1 for s in seed if s.buyer == "sp-alpha")
        assert (await store.list_services(alpha, 5, 5))[1] == before
        first = next(s for s in seed if s.buyer == "sp-alpha")
        async with store.transaction() as tx:
            await tx.save_service(first.evolve(state=ServiceState.TERMINATED))
        assert (await store.list_services(alpha, 0, 5))[1] == before - 1
        with pytest.raises(RuntimeError):
            async with store.transaction() as tx:
                await tx.save_service(first.evolve(id="rolled-back"))
                raise RuntimeError("abandoned")
        assert (await store.list_services(alpha, 0, 5))[1] == before - 1
        async with store.transaction() as tx:
            await tx.save_services([first.evolve(id="bulk-1"), first.evolve(id="bulk-2")])
        assert (await store.list_services(alpha, 0, 5))[1] == before + 1

    async def test_a_transaction_holding_the_services_lock_saves_and_commits(self, store: Store) -> None:
        svc = seed_services(TOPO)[0]
        async with store.transaction() as tx:
            await tx.lock_services()
            await tx.lock_services()  # taken again in the same transaction: no wait on itself
            await tx.save_service(svc)
        assert await store.get_service(svc.id) == svc

    async def test_change_and_outbox_commit_or_roll_back_together(self, store: Store) -> None:
        svc = seed_services(TOPO)[0]
        msg = OutboxMessage("serviceInventory", "serviceCreateEvent", {"a": 1}, "http://x/listener/e")
        with pytest.raises(RuntimeError):
            async with store.transaction() as tx:
                await tx.save_service(svc)
                await tx.add_outbox([msg])
                raise RuntimeError("crash mid-way")
        assert await store.count_services() == 0
        assert await store.outbox_rows() == []
        async with store.transaction() as tx:
            await tx.save_service(svc)
            await tx.add_outbox([msg])
        assert await store.count_services() == 1
        assert len(await store.outbox_rows(delivered=False)) == 1

    async def test_outbox_claim_retry_deliver(self, store: Store) -> None:
        async with store.transaction() as tx:
            await tx.add_outbox([OutboxMessage("a", "e", {}, "http://x")])
        now = time.time()
        [row] = await store.claim_outbox("w1", now, 30)
        assert await store.claim_outbox("w2", now, 30) == []  # held by w1
        await store.mark_failed(row.id, "boom", now + 100)
        assert await store.claim_outbox("w2", now, 30) == []  # not due yet
        [again] = await store.claim_outbox("w2", now + 101, 30)
        assert again.attempts == 1 and again.last_error == "boom"
        await store.mark_delivered(again.id, now)
        assert await store.outbox_rows(delivered=False) == []

    async def test_announce_commits_with_the_change_and_a_store_never_hears_itself(self, store: Store) -> None:
        heard: list[list[str]] = []
        store.watch("services", heard.append)
        svc = seed_services(TOPO)[0]
        async with store.transaction() as tx:
            await tx.save_service(svc)
            await tx.announce("services", [svc.id])
        assert (await store.get_service(svc.id)) is not None
        async with store.transaction() as tx:  # a trip through the database: any notice would be in by now
            await tx.get_service(svc.id)
        assert heard == []

    async def test_subscriptions_and_documents(self, store: Store) -> None:
        sub = Subscription("s1", "serviceInventory", "http://cb", None, None, iso(utcnow()) or "")
        await store.add_subscription(sub)
        assert (await store.get_subscription("serviceInventory", "s1")) is not None
        assert await store.get_subscription("serviceOrdering", "s1") is None
        assert await store.delete_subscription("serviceInventory", "s1")
        assert not await store.delete_subscription("serviceInventory", "s1")
        async with store.transaction() as tx:
            await tx.put_document(Document("jobs", "j1", {"x": 1}, state="scheduled", due_at=0))
            await tx.put_document(Document("jobs", "j2", {"x": 2}, state="done"))
        claimed = await store.claim_documents("jobs", "w", time.time(), 30, ["scheduled"])
        assert [d.id for d in claimed] == ["j1"]
        docs, total = await store.list_documents("jobs", state="done")
        assert total == 1 and docs[0].body == {"x": 2}

    async def test_a_callback_with_credentials_is_never_stored(self, store: Store) -> None:
        for i, callback in enumerate(["http://user:secret@sp.example/cb", "https://token@sp.example/cb"]):
            with pytest.raises(ValidationError, match="credentials"):
                await store.add_subscription(Subscription(f"c{i}", "serviceInventory", callback, None, None, "t"))
            assert await store.get_subscription("serviceInventory", f"c{i}") is None

    async def test_outbox_hands_out_one_row_per_subscription_in_order(self, store: Store) -> None:
        async with store.transaction() as tx:
            await tx.add_outbox(
                [
                    OutboxMessage("a", f"e{i}", {"n": i}, "http://x", subscription_id=("s1" if i < 3 else "s2"))
                    for i in range(5)
                ]
            )
        now = time.time()
        first = await store.claim_outbox("w", now, 30)
        assert [(r.subscription_id, r.body["n"]) for r in first] == [("s1", 0), ("s2", 3)]
        assert await store.claim_outbox("w", now, 30) == []  # heads are in flight
        await store.mark_failed(first[0].id, "down", now + 60)  # s1's head waits for a retry: s1 is held back
        await store.mark_delivered(first[1].id, now)
        second = await store.claim_outbox("w", now, 30)
        assert [(r.subscription_id, r.body["n"]) for r in second] == [("s2", 4)]
        await store.mark_delivered(second[0].id, now)
        third = await store.claim_outbox("w", now + 61, 30)
        assert [(r.subscription_id, r.body["n"]) for r in third] == [("s1", 0)]

    async def test_add_document_only_when_absent(self, store: Store) -> None:
        async with store.transaction() as tx:
            assert await tx.add_document(Document("jobs", "k:1", {"n": 1}, state="scheduled", created_at="2026-01-01"))
            assert not await tx.add_document(Document("jobs", "k:1", {"n": 2}, state="cancelled"))
        doc = await store.get_document("jobs", "k:1")
        assert doc is not None and doc.body == {"n": 1} and doc.state == "scheduled"
        assert doc.created_at == doc.updated_at == "2026-01-01"

    async def test_document_ids_by_keys_and_states(self, store: Store) -> None:
        async with store.transaction() as tx:
            await tx.put_document(Document("jobs", "a", {}, state="scheduled", key1="pm", key2="j1"))
            await tx.put_document(Document("jobs", "b", {}, state="running", key1="pm", key2="j1"))
            await tx.put_document(Document("jobs", "c", {}, state="succeeded", key1="pm", key2="j1"))
            await tx.put_document(Document("jobs", "d", {}, state="scheduled", key1="pm", key2="j2"))
            await tx.put_document(Document("other", "e", {}, state="scheduled", key1="pm", key2="j1"))
            ids = await tx.document_ids("jobs", key1="pm", key2="j1", states=("scheduled", "running"))
        assert sorted(ids) == ["a", "b"]

    async def test_release_document_lets_another_worker_claim_it(self, store: Store) -> None:
        async with store.transaction() as tx:
            await tx.put_document(Document("jobs", "j1", {}, state="scheduled", due_at=0))
        now = time.time()
        assert [d.id for d in await store.claim_documents("jobs", "w1", now, 3600, ["scheduled"])] == ["j1"]
        assert await store.claim_documents("jobs", "w2", now, 3600, ["scheduled"]) == []
        async with store.transaction() as tx:
            await tx.release_document("jobs", "j1")
        assert [d.id for d in await store.claim_documents("jobs", "w2", now, 3600, ["scheduled"])] == ["j1"]

    async def test_oldest_documents_pages_and_delete_documents(self, store: Store) -> None:
        async with store.transaction() as tx:
            for i, (state, job) in enumerate([("completed", "a"), ("failed", "b"), ("inProgress", "a"),
                                              ("completed", "a"), ("rejected", "b")]):  # fmt: skip
                created = f"2026-01-0{i + 1}T00:00:00Z"
                await tx.put_document(Document("reports", f"r{i}", {}, state=state, key1=job, created_at=created))
            await tx.put_document(Document("reports", "r9", {}, state="completed", key1="a", created_at=created))
        finished = ("completed", "failed", "rejected")
        async with store.transaction() as tx:
            first = await tx.oldest_documents(AgeQuery("reports", finished), None, 2)
            assert first == [DocumentStamp("r0", "2026-01-01T00:00:00Z"), DocumentStamp("r1", "2026-01-02T00:00:00Z")]
            rest = await tx.oldest_documents(AgeQuery("reports", finished), first[-1], 10)
            assert [d.id for d in rest] == ["r3", "r4", "r9"]  # same creation time: by id
            tie = await tx.oldest_documents(AgeQuery("reports", finished), rest[1], 10)
            assert [d.id for d in tie] == ["r9"]
            of_a = await tx.oldest_documents(AgeQuery("reports", finished, key1="a"), None, 10)
            assert [d.id for d in of_a] == ["r0", "r3", "r9"]
            old = await tx.oldest_documents(AgeQuery("reports", finished, created_before="2026-01-04"), None, 10)
            assert [d.id for d in old] == ["r0", "r1"]
            assert await tx.delete_documents("reports", ["r0", "r1", "missing"]) == 2
            assert await tx.delete_documents("reports", []) == 0
        _, total = await store.list_documents("reports")
        assert total == 4

    async def test_renew_order_claims_keeps_other_workers_off(self, store: Store) -> None:
        async with store.transaction() as tx:
            for oid in ("o1", "o2"):
                items = [OrderItem("1", ItemAction.MODIFY)]
                await tx.save_order(ServiceOrder(id=oid, buyer="sp-alpha", items=items, order_date=iso(utcnow())))
        assert sorted(await store.claim_orders("w1", -60)) == ["o1", "o2"]  # leases already expired
        await store.renew_order_claims("w1", time.time() + 3600)
        await store.renew_order_claims("w2", 0.0)  # not its claims: nothing changes
        assert await store.claim_orders("w2", 60) == []
        await store.release_order("o1", "w1")
        assert await store.claim_orders("w2", 60) == ["o1"]

    async def test_a_lease_has_one_holder_until_released_or_expired(self, store: Store) -> None:
        assert await store.lease_holder("southbound:pe1") is None
        assert await store.acquire_lease("southbound:pe1", "a", 60)
        assert await store.acquire_lease("southbound:pe1", "a", 60)  # renewal
        assert not await store.acquire_lease("southbound:pe1", "b", 60)
        assert await store.lease_holder("southbound:pe1") == "a"
        assert await store.acquire_lease("southbound:pe2", "b", 60)  # leases are independent
        await store.release_lease("southbound:pe1", "b")  # not b's: nothing changes
        assert await store.lease_holder("southbound:pe1") == "a"
        await store.release_lease("southbound:pe1", "a")
        assert await store.lease_holder("southbound:pe1") is None
        assert await store.acquire_lease("southbound:pe1", "b", -1)  # granted, but already expired
        assert await store.lease_holder("southbound:pe1") is None
        assert await store.acquire_lease("southbound:pe1", "a", 60)  # an expired lease passes on

    async def test_renew_document_claims_of_one_worker(self, store: Store) -> None:
        async with store.transaction() as tx:
            for doc_id in ("j1", "j2"):
                await tx.put_document(Document("jobs", doc_id, {}, state="running", due_at=0))
        now = time.time()
        assert len(await store.claim_documents("jobs", "w1", now, -60, ["running"])) == 2  # expired at once
        await store.renew_document_claims("jobs", "w1", ["j1"], now + 3600)
        await store.renew_document_claims("jobs", "w2", ["j2"], now + 3600)  # w2 holds nothing
        await store.renew_document_claims("jobs", "w1", [], now + 3600)
        assert [d.id for d in await store.claim_documents("jobs", "w2", now, 60, ["running"])] == ["j2"]

    async def test_count_documents_by_key1(self, store: Store) -> None:
        async with store.transaction() as tx:
            cases = [("a", "completed"), ("a", "failed"), ("a", "inProgress"), ("b", "completed"),
                     (None, "completed"), (None, "completed")]  # fmt: skip
            for i, (job, state) in enumerate(cases):
                await tx.put_document(Document("reports", f"r{i}", {}, state=state, key1=job))
        finished = ("completed", "failed", "rejected")
        assert await store.count_documents_by_key1("reports", finished, above=0) == {"a": 2, "b": 1}
        assert await store.count_documents_by_key1("reports", finished, above=1) == {"a": 2}
        assert await store.count_documents_by_key1("jobs", finished, above=0) == {}

    async def test_pending_outbox_of_an_api(self, store: Store) -> None:
        async with store.transaction() as tx:
            await tx.add_outbox([
                OutboxMessage("pm", "ready", {"n": 0}, "http://x", "s1"),
                OutboxMessage("pm", "ready", {"n": 1}, "http://x", "s2"),
                OutboxMessage("pm", "other", {"n": 2}, "http://x", "s3"),
                OutboxMessage("alarms", "ready", {"n": 3}, "http://x", "s4"),
                OutboxMessage("pm", "create", {"n": 4}, "http://x", "s5"),
                OutboxMessage("pm", "create", {"n": 5}, "http://x", "s6"),
            ])  # fmt: skip
        rows = {r.body["n"]: r for r in await store.outbox_rows()}
        await store.mark_delivered(rows[1].id, time.time())
        await store.mark_failed(rows[5].id, "gone", time.time(), give_up=True)
        await store.mark_failed(rows[4].id, "down", time.time() + 60)  # still pending: retried later
        pending = await store.pending_outbox("pm", ["ready", "create"])
        assert [(r.event_type, r.body["n"]) for r in pending] == [("ready", 0), ("create", 4)]

    async def test_outbox_claims_whole_queues_in_order(self, store: Store) -> None:
        async with store.transaction() as tx:
            await tx.add_outbox(
                [
                    OutboxMessage("a", "e", {"n": i}, "http://x", subscription_id="s1" if i < 5 else "s2")
                    for i in range(7)
                ]
                + [OutboxMessage("a", "e", {"n": 7}, "http://x")]
            )
        now = time.time()
        first = await store.claim_outbox("w1", now, 30, per_subscription=3)
        assert [(r.subscription_id, r.body["n"]) for r in first] == [
            ("s1", 0), ("s1", 1), ("s1", 2), ("s2", 5), ("s2", 6), (None, 7)
        ]  # fmt: skip
        assert await store.claim_outbox("w2", now, 30, per_subscription=3) == []  # s1's rows 3, 4 are not heads
        s1 = [r.id for r in first if r.subscription_id == "s1"]
        await store.settle_outbox("s1", s1[:2], now, release=s1[2:])
        again = await store.claim_outbox("w2", now, 30, per_subscription=3)
        assert [r.body["n"] for r in again] == [2, 3, 4]
        assert (await store.outbox_backlog()).pending == 6

    async def test_failed_listener_postpones_its_whole_queue(self, store: Store) -> None:
        async with store.transaction() as tx:
            await tx.add_outbox([OutboxMessage("a", "e", {"n": i}, "http://x", subscription_id="s1") for i in range(4)])
        now = time.time()
        head, *_ = await store.claim_outbox("w", now, 30, per_subscription=4)
        await store.fail_outbox(OutboxFailure(head.id, "s1", "refused", now, now + 100, keep_pending=3))
        [health] = await store.listener_health()
        assert (health.subscription_id, health.failures, health.retry_at) == ("s1", 1, now + 100)
        assert [r.body["n"] for r in await store.pending_outbox("a", ["e"])] == [1, 2, 3]  # bounded to 3
        async with store.transaction() as tx:  # queued while the listener is backed off: waits for the retry
            await tx.add_outbox([OutboxMessage("a", "e", {"n": 4}, "http://x", subscription_id="s1")])
        assert all(r.next_attempt_at >= now + 100 for r in await store.pending_outbox("a", ["e"]))
        assert await store.claim_outbox("w", now + 50, 30, per_subscription=4) == []
        retried = await store.claim_outbox("w", now + 101, 30, per_subscription=10)
        assert [r.body["n"] for r in retried] == [1, 2, 3, 4]
        await store.fail_outbox(OutboxFailure(retried[0].id, "s1", "refused", now + 101, now + 200))
        assert [h.failures for h in await store.listener_health()] == [2]
        [row] = await store.claim_outbox("w", now + 201, 30)
        await store.settle_outbox("s1", [row.id], now + 201)
        assert await store.listener_health() == []

    async def test_purge_outbox_keeps_pending_rows(self, store: Store) -> None:
        async with store.transaction() as tx:
            await tx.add_outbox([OutboxMessage("a", "e", {"n": i}, "http://x", f"s{i}") for i in range(3)])
        now = time.time()
        claimed = await store.claim_outbox("w", now, 30)
        await store.settle_outbox("s0", [claimed[0].id], now - 100)
        await store.fail_outbox(OutboxFailure(claimed[1].id, "s1", "gone", now - 100, now - 100, give_up=True))
        await store.settle_outbox("s2", [], now, release=[claimed[2].id])
        assert await store.purge_outbox(now - 200) == 0
        assert await store.purge_outbox(now - 50) == 2
        assert [r.body["n"] for r in await store.outbox_rows()] == [2]
        backlog = await store.outbox_backlog()
        assert backlog.pending == 1 and backlog.oldest_created_at is not None

    async def test_a_saved_service_is_found_by_exactly_the_order_items_it_lists_now(self, store: Store) -> None:
        svc = next(s for s in seed_services(TOPO) if s.id == "pe1-uni1")
        for refs in ((("o1", "1"), ("o2", "1")), (("o2", "1"), ("o3", "2")), ()):
            async with store.transaction() as tx:
                await tx.save_service(svc.evolve(order_items=refs))
            for order_id, item_id in (("o1", "1"), ("o2", "1"), ("o3", "2"), ("o3", "1")):
                _, found = await store.list_services(ServiceQuery(order_id=order_id, order_item_id=item_id), 0, 10)
                assert found == ((order_id, item_id) in refs), (refs, order_id, item_id)
        assert (await store.get_service("pe1-uni1")) == svc.evolve(order_items=())

    async def test_an_order_saved_again_keeps_its_latest_item_states(self, store: Store) -> None:
        items = [OrderItem("1", ItemAction.MODIFY, service_id="pe1-uni1"), OrderItem("2", ItemAction.MODIFY)]
        order = ServiceOrder(id="o1", buyer="sp-alpha", items=items, order_date=iso(utcnow()))
        async with store.transaction() as tx:
            await tx.save_order(order)
        items[1].move(OrderState.IN_PROGRESS)
        async with store.transaction() as tx:
            await tx.save_order(order)
        again = await store.get_order("o1")
        assert again is not None and [it.state for it in again.items] == [
            OrderState.ACKNOWLEDGED,
            OrderState.IN_PROGRESS,
        ]

    async def test_unfinished_orders_are_every_order_not_final_in_submission_order(self, store: Store) -> None:
        states = {"o1": OrderState.IN_PROGRESS, "o2": OrderState.COMPLETED, "o3": OrderState.ACKNOWLEDGED}
        async with store.transaction() as tx:
            for n, (oid, state) in enumerate(reversed(states.items())):  # stored newest first
                date = iso(utcnow().replace(year=2030 - n))
                order = ServiceOrder(
                    id=oid, buyer="sp-alpha", items=[OrderItem("1", ItemAction.MODIFY)], order_date=date
                )
                order.state = state
                await tx.save_order(order)
        assert [o.id for o in await store.unfinished_orders()] == ["o1", "o3"]
