"""What both stores share: placeholder rewriting and the list filters."""

from __future__ import annotations

from interlude.domain.queries import ServiceQuery
from interlude.store.rows import pg_sql, service_filter


def test_pg_sql_numbers_placeholders_outside_literals() -> None:
    assert pg_sql("a = ? AND b = '?' AND c IN (?, ?)") == "a = $1 AND b = '?' AND c IN ($2, $3)"


def test_order_and_item_filter_match_one_row() -> None:
    where = service_filter(ServiceQuery(order_id="o1", order_item_id="2"))
    assert (
        where.clause == " WHERE id IN (SELECT service_id FROM service_order_items WHERE order_id = ? AND item_id = ?)"
    )
    assert where.params == ["o1", "2"]
