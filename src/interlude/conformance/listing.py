"""Read-only scenarios every listing of every served API gets, derived from its definition.

For each path whose ``GET`` answers an array (``/service``, ``/alarm``, ``/performanceJob``...):

- ``list``: 200 with a valid array; ``X-Result-Count`` is the number of items returned, ``X-Total-Count``
  counts every match; ``offset``/``limit`` select the right page; past the end
  is ``200`` with an empty array;
- ``retrieve``: the first listed item by its id;
- ``notFound``: an unknown id is a 404 with the definition's error body;
- ``filters``: a query parameter naming an attribute of the items returns only (and all) matching items;
- ``badQuery``: a malformed ``limit`` is a 400, and an out-of-enumeration filter value is refused or matches
  nothing, never a 5xx;
- ``badBody`` (listings that also take a ``POST``): a body that is not JSON is a 400;
- ``unauthenticated`` (once per API, when the kit was given credentials): without them, a 401.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from interlude.conformance.http import Exchange, NoAuth
from interlude.conformance.model import Check, Scenario, ServedApi

PAGING = ("offset", "limit", "fields")
ListingRun = Callable[[Check, str], Awaitable[None]]


def _ids(items: Any) -> list[str]:
    if not isinstance(items, list):
        return []
    return [str(i["id"]) for i in items if isinstance(i, dict) and "id" in i]


def _count(exchange: Exchange, name: str) -> int | None:
    value = exchange.header(name)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


async def _listing(check: Check, collection: str, params: dict[str, str] | None = None) -> tuple[Exchange, list[Any]]:
    exchange = await check.call("GET", collection, params=params)
    if not check.expect_status(exchange, 200, rule="a listing answers 200"):
        check.skip(f"GET {collection} answered {exchange.status}")
    body = exchange.response_body
    return exchange, body if isinstance(body, list) else []


async def run_list(check: Check, collection: str) -> None:
    """Pagination headers and paging of one listing."""
    declared = check.api.definition.response_headers(collection, "get", 200)
    full, items = await _listing(check, collection)
    result, total = _count(full, "X-Result-Count"), _count(full, "X-Total-Count")
    text = str(declared.get("X-Result-Count", {}).get("description", ""))
    if "X-Result-Count" in declared:
        check.expect(result == len(items), "X-Result-Count is the number of items returned",
                     f"X-Result-Count is {full.header('X-Result-Count')!r}, the page holds {len(items)} items", full,
                     text)  # fmt: skip
    if "X-Total-Count" in declared and total is not None:
        check.expect(total >= len(items), "X-Total-Count counts every match",
                     f"X-Total-Count {total} is smaller than the {len(items)} items returned", full,
                     str(declared["X-Total-Count"].get("description", "")))  # fmt: skip
    one, first = await _listing(check, collection, {"limit": "1"})
    check.expect(len(first) <= 1, "limit bounds the page", f"limit=1 returned {len(first)} items", one)
    if "X-Result-Count" in declared:
        message = f"X-Result-Count is {one.header('X-Result-Count')!r} for a page of {len(first)}"
        check.expect(_count(one, "X-Result-Count") == len(first), "X-Result-Count is the number of items returned",
                     message, one, text)  # fmt: skip
    if len(_ids(items)) >= 2:
        for attempt in range(3):  # a live listing (alarms, reports) may grow between two calls: look again
            _, items = await _listing(check, collection)
            page, second = await _listing(check, collection, {"offset": "1", "limit": "1"})
            if _ids(second) == _ids(items)[1:2] or attempt == 2:
                break
        check.expect(_ids(second) == _ids(items)[1:2], "offset and limit select the page",
                     f"offset=1&limit=1 returned {_ids(second)}, the second item of the listing is "
                     f"{_ids(items)[1:2]}", page)  # fmt: skip
    beyond, past = await _listing(check, collection, {"offset": str((total or len(items)) + 1000)})
    check.expect(past == [], "a page past the end is an empty array",
                 f"offset past the end returned {len(past)} items", beyond)  # fmt: skip


async def _first(check: Check, collection: str) -> dict[str, Any]:
    _, items = await _listing(check, collection, {"limit": "10"})
    for item in items:
        if isinstance(item, dict) and "id" in item:
            return item
    check.skip(f"GET {collection} lists nothing to look at")


async def run_retrieve(check: Check, collection: str) -> None:
    """The first listed item, by id."""
    template = check.api.definition.item_template(collection)
    if template is None:
        check.skip(f"the definition has no GET {collection}/{{id}}")
    item = await _first(check, collection)
    exchange = await check.call("GET", f"{collection}/{item['id']}")
    if check.expect_status(exchange, 200, rule="a listed item can be retrieved"):
        body = exchange.response_body
        check.expect(isinstance(body, dict) and str(body.get("id")) == str(item["id"]),
                     "the item retrieved is the one asked for", f"asked for {item['id']!r}", exchange)  # fmt: skip


async def run_not_found(check: Check, collection: str) -> None:
    """An unknown id is a 404."""
    if check.api.definition.item_template(collection) is None:
        check.skip(f"the definition has no GET {collection}/{{id}}")
    exchange = await check.call("GET", f"{collection}/kit-unknown-{uuid.uuid4().hex[:12]}")
    check.expect_status(exchange, 404, rule="an unknown id is a 404")


async def run_filters(check: Check, collection: str) -> None:
    """Equality filters on attributes of the listed items."""
    params = check.api.definition.query_parameters(collection, "get")
    item = await _first(check, collection)
    tried = 0
    for name in params:
        if name in PAGING or "." in name or tried >= 3:
            continue
        value = item.get(name)
        if not isinstance(value, str | int | bool) or isinstance(value, bool):
            continue
        tried += 1
        exchange, found = await _listing(check, collection, {name: str(value)})
        wrong = [i.get("id") for i in found if isinstance(i, dict) and str(i.get(name)) != str(value)]
        check.expect(not wrong, "a filter returns only matching items",
                     f"{name}={value} returned items {wrong[:5]} whose {name} differs", exchange)  # fmt: skip
        total = _count(exchange, "X-Total-Count")
        if total is None or total <= len(found):
            check.expect(str(item["id"]) in _ids(found), "a filter returns the matching items",
                         f"{name}={value} did not return {item['id']!r}, which has it", exchange)  # fmt: skip
    if tried == 0:
        check.skip(f"no query parameter of GET {collection} names a plain attribute of the listed items")


async def run_bad_query(check: Check, collection: str) -> None:
    """Malformed and out-of-enumeration query values."""
    exchange = await check.call("GET", collection, params={"limit": "kit-not-a-number"})
    check.expect_status(exchange, 400, rule="a malformed query is a 400")
    params = check.api.definition.query_parameters(collection, "get")
    enums = [name for name, schema in params.items() if schema.get("enum") and name not in PAGING]
    for name in enums[:1]:
        bad = await check.call("GET", collection, params={name: "kitNotAValue"})
        refused = bad.status in (400, 422) or (bad.status == 200 and bad.response_body == [])
        check.expect(refused, "a filter value outside its enumeration is refused or matches nothing",
                     f"{name}=kitNotAValue answered {bad.status}: {bad.response_text[:200]}", bad)  # fmt: skip


async def run_bad_body(check: Check, collection: str) -> None:
    """A body that is not JSON is a 400."""
    exchange = await check.call("POST", collection, raw=b"{not json", deliberate=True,
                                headers={"Content-Type": "application/json;charset=utf-8"})  # fmt: skip
    check.expect_status(exchange, 400, rule="a body that is not JSON is a 400")


async def run_unauthenticated(check: Check, collection: str) -> None:
    """Without credentials: a 401 with the definition's error body."""
    if isinstance(check.http.auth, NoAuth):
        check.skip("the kit runs without credentials (--auth none): nothing to withhold")
    exchange = await check.call("GET", collection, authenticate=False)
    check.expect_status(exchange, 401, rule="a request without credentials is a 401")


KINDS: tuple[tuple[str, str, ListingRun], ...] = (
    ("list", "answers 200 with a valid array, consistent pagination headers and pages", run_list),
    ("retrieve", "retrieves the first listed item by its id", run_retrieve),
    ("notFound", "answers 404 with the definition's error body for an unknown id", run_not_found),
    ("filters", "filters by attributes of the items (equality)", run_filters),
    ("badQuery", "refuses a malformed query with 400 and never fails with 5xx on a bad filter value", run_bad_query),
)


def _bind(run: ListingRun, collection: str) -> Callable[[Check], Awaitable[None]]:
    async def bound(check: Check) -> None:
        await run(check, collection)

    return bound


def listing_scenarios(api: ServedApi) -> list[Scenario]:
    """The read-only scenarios of every listing of ``api``, and of its creations' and credentials' errors."""
    out = []
    collections = api.definition.collections()
    if collections:
        first = collections[0]
        out.append(Scenario(
            id=f"{api.family}.unauthenticated", title=f"GET {first} without credentials",
            doc=f"GET {api.base}{first} without the credentials the kit was given answers 401 with the definition's "
                "error body.", run=_bind(run_unauthenticated, first), api=api,
            refs=tuple(api.definition.requirement_refs(first, "get")),
        ))  # fmt: skip
    for collection in api.definition.collections():
        if api.definition.operation(collection, "post") is not None:
            out.append(Scenario(
                id=f"{api.family}.{collection.strip('/')}.badBody", title=f"POST {collection} with a body not JSON",
                doc=f"POST {api.base}{collection} with a body that is not JSON answers 400 with the definition's "
                    "error body (nothing is created).", run=_bind(run_bad_body, collection), api=api,
                refs=tuple(api.definition.requirement_refs(collection, "post")),
            ))  # fmt: skip
        refs = tuple(api.definition.requirement_refs(collection, "get"))
        for kind, doc, run in KINDS:
            out.append(Scenario(
                id=f"{api.family}.{collection.strip('/')}.{kind}",
                title=f"GET {collection} {kind}",
                doc=f"GET {api.base}{collection} {doc}.",
                run=_bind(run, collection), api=api, refs=refs,
            ))  # fmt: skip
    return out
