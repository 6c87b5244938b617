"""``interlude buyer ...``: buy Internet Access from a Sonata seller, step by step or in one go.

Examples (against ``interlude emulate`` on the default port, as buyer sp-alpha)::

    interlude buyer offerings
    interlude buyer validate-address "100 Main Street, Springfield, 12345, US"
    interlude buyer qualify --address-id addr-springfield-main-100 --bandwidth 100
    interlude buyer quote --address-id addr-springfield-main-100 --bandwidth 100 --term 12
    interlude buyer order --address-id addr-springfield-main-100 --bandwidth 100 --quote <quote id>
    interlude buyer order-internet-access --address "100 Main Street, Springfield, 12345, US" --bandwidth 100
    interlude buyer products
    interlude buyer modify <product id> --bandwidth 500
    interlude buyer disconnect <product id>

``--url`` names the seller (default ``http://127.0.0.1:8080``), ``--buyer`` the buyer header of a seller
without tokens, ``--token`` a bearer token. ``--json`` prints the MEF bodies instead of tables. The exit
status is 0 when the step went through, 1 when the seller answered but the step did not (red POQ, failed
order), 2 on errors.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import click
from rich.table import Table

from interlude.cli.output import make_console
from interlude.sp.buyer import QUOTE, Flow, SonataBuyer, SonataError, order_body, quote_body

console = make_console()
DEFAULT_URL = "http://127.0.0.1:8080"


class Settings:
    """The options every subcommand shares."""

    def __init__(self, url: str, buyer: str | None, token: str | None, as_json: bool, offering: str | None) -> None:
        self.url = url
        self.buyer = buyer
        self.token = token
        self.as_json = as_json
        self.offering = offering


def _run(settings: Settings, step: Callable[[SonataBuyer], Awaitable[int]]) -> None:
    async def go() -> int:
        async with SonataBuyer(settings.url, buyer=settings.buyer, token=settings.token) as client:
            return await step(client)

    try:
        code = asyncio.run(go())
    except SonataError as exc:
        console.print(f"[red]the seller refused:[/red] HTTP {exc.status}")
        if exc.body is not None:
            console.print_json(data=exc.body)
        sys.exit(2)
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        console.print(f"[red]cannot reach {settings.url}:[/red] {exc}")
        sys.exit(2)
    sys.exit(code)


def _dump(body: Any) -> None:
    click.echo(json.dumps(body, indent=2))


def _show(settings: Settings, body: dict[str, Any], pretty: Callable[[dict[str, Any]], None]) -> None:
    if settings.as_json:
        _dump(body)
    else:
        pretty(body)


async def _offering(client: SonataBuyer, settings: Settings) -> str:
    if settings.offering:
        return settings.offering
    offerings = await client.offerings()
    if not offerings:
        raise click.ClickException("the seller offers nothing")
    return str(offerings[0]["id"])


def _mbps(config: dict[str, Any]) -> str:
    rate = (config.get("bandwidth") or {}).get("downstream") or {}
    return f"{rate.get('irValue', '?')} {rate.get('irUnits', '')}".strip()


@click.group("buyer")
@click.option("--url", default=DEFAULT_URL, show_default=True, help="the seller's base URL")
@click.option("--buyer", "buyer_name", default="sp-alpha", show_default=True, help="buyer header (no tokens)")
@click.option("--token", help="bearer token of the buyer (a seller started with --tokens)")
@click.option("--offering", help="product offering id (default: the catalog's first launched offering)")
@click.option("--json", "as_json", is_flag=True, help="print MEF bodies instead of tables")
@click.pass_context
def buyer_group(
    ctx: click.Context, url: str, buyer_name: str, token: str | None, offering: str | None, as_json: bool
) -> None:
    """Buy Internet Access over LSO Sonata (catalog, address, POQ, quote, order, inventory)."""
    ctx.obj = Settings(url, None if token else buyer_name, token, as_json, offering)


@buyer_group.command("offerings")
@click.pass_obj
def offerings_cmd(settings: Settings) -> None:
    """List the launched offerings of the catalog."""

    async def step(client: SonataBuyer) -> int:
        found = await client.offerings()
        if settings.as_json:
            _dump(found)
            return 0
        table = Table("id", "name", "status", "specification")
        for o in found:
            table.add_row(o["id"], o["name"], o["lifecycleStatus"], o["productSpecification"]["id"])
        console.print(table)
        return 0

    _run(settings, step)


@buyer_group.command("validate-address")
@click.argument("address")
@click.pass_obj
def validate_cmd(settings: Settings, address: str) -> None:
    """Validate a one-line address ("100 Main Street, Springfield, 12345, US")."""

    async def step(client: SonataBuyer) -> int:
        found = await client.validate_address(address)
        if settings.as_json:
            _dump(found)
        else:
            _print_validation(found)
        return 0 if "bestMatchGeographicAddress" in found else 1

    _run(settings, step)


def _line(address: dict[str, Any]) -> str:
    return str(address["formattedAddressRepresentation"][0]["formattedAddress"])


def _print_validation(found: dict[str, Any]) -> None:
    best = found.get("bestMatchGeographicAddress")
    if best is not None:
        console.print(f"[green]best match[/green] {best['id']}: {_line(best)}")
    for alt in found.get("alternateGeographicAddress", []):
        console.print(f"[yellow]alternate[/yellow] {alt['id']}: {_line(alt)}")
    if best is None and not found.get("alternateGeographicAddress"):
        console.print("[red]outside the seller's footprint[/red]")


@buyer_group.command("qualify")
@click.option("--address-id", required=True)
@click.option("--bandwidth", type=click.FloatRange(min=0, min_open=True), required=True, help="Mbit/s")
@click.pass_obj
def qualify_cmd(settings: Settings, address_id: str, bandwidth: float) -> None:
    """Ask whether the seller can deliver (instant POQ)."""

    async def step(client: SonataBuyer) -> int:
        poq = await client.qualify(await _offering(client, settings), address_id, bandwidth)
        if settings.as_json:
            _dump(poq)
        item = poq["productOfferingQualificationItem"][0]
        color = item.get("serviceabilityConfidence", "?")
        if not settings.as_json:
            style = {"green": "green", "yellow": "yellow"}.get(color, "red")
            reason = item.get("serviceabilityConfidenceReason", "")
            console.print(f"POQ {poq['id']}: [{style}]{color}[/{style}] {reason}")
            for alt in item.get("alternateProductOfferingProposal", []):
                conf = alt["alternateProduct"]["productConfiguration"]
                console.print(f"  alternative: {_mbps(conf)}")
        return 0 if color == "green" else 1

    _run(settings, step)


@buyer_group.command("quote")
@click.option("--address-id", required=True)
@click.option("--bandwidth", type=click.FloatRange(min=0, min_open=True), required=True, help="Mbit/s")
@click.option("--term", "term_months", type=click.IntRange(min=1), default=12, show_default=True, help="months")
@click.option("--poq", "poq_id", help="the POQ this quote follows")
@click.pass_obj
def quote_cmd(settings: Settings, address_id: str, bandwidth: float, term_months: int, poq_id: str | None) -> None:
    """Get a firm price for a new Internet Access."""

    async def step(client: SonataBuyer) -> int:
        offering = await _offering(client, settings)
        quote = await client.quote(offering, address_id, bandwidth, poq_id=poq_id, term_months=term_months)
        if settings.as_json:
            _dump(quote)
        else:
            _print_quote(quote)
        return 0 if quote["state"] == "approved.orderable" else 1

    _run(settings, step)


def _print_quote(quote: dict[str, Any]) -> None:
    console.print(f"quote {quote['id']}: {quote['state']} (valid until {quote['validFor']['endDateTime']})")
    for item in quote["quoteItem"]:
        for price in item.get("quoteItemPrice", []):
            amount = price["price"]["dutyFreeAmount"]
            per = " per month" if price["priceType"] == "recurring" else ""
            console.print(f"  {price['name']}: {amount['value']} {amount['unit']}{per}")


@buyer_group.command("order")
@click.option("--address-id", required=True)
@click.option("--bandwidth", type=click.FloatRange(min=0, min_open=True), required=True, help="Mbit/s")
@click.option("--quote", "quote_id", required=True, help="the firm quote (item 1) to order")
@click.option("--wait/--no-wait", default=True, show_default=True, help="wait until the order is final")
@click.pass_obj
def order_cmd(settings: Settings, address_id: str, bandwidth: float, quote_id: str, wait: bool) -> None:
    """Order a new Internet Access from a firm quote."""

    async def step(client: SonataBuyer) -> int:
        body = order_body(await _offering(client, settings), address_id, bandwidth, quote=(quote_id, "1"))
        order = await client.order(body)
        if wait:
            order = await client.wait_order(order["id"])
        if settings.as_json:
            _dump(order)
        else:
            _print_order(order)
        return 0 if order["state"] in ("completed", "acknowledged", "inProgress") else 1

    _run(settings, step)


def _print_order(order: dict[str, Any]) -> None:
    style = "green" if order["state"] == "completed" else "yellow" if order["state"] == "inProgress" else "red"
    console.print(f"order {order['id']}: [{style}]{order['state']}[/{style}]")
    for item in order["productOrderItem"]:
        reason = "; ".join(e.get("value", "") for e in item.get("terminationError", []))
        console.print(f"  item {item['id']} ({item['action']}): {item['state']} {reason}")


@buyer_group.command("products")
@click.pass_obj
def products_cmd(settings: Settings) -> None:
    """The buyer's products."""

    async def step(client: SonataBuyer) -> int:
        found = [await client.product(p["id"]) for p in await client.products()]
        if settings.as_json:
            _dump(found)
            return 0
        table = Table("id", "status", "bandwidth", "transit", "place")
        for p in found:
            conf = p.get("productConfiguration") or {}
            transit = (conf.get("transitAddresses") or {}).get("serviceProviderIpv4TransitAddress", "")
            place = ", ".join((pl.get("place") or {}).get("id", "") for pl in p.get("place", []))
            table.add_row(p["id"], p["status"], _mbps(conf), transit, place)
        console.print(table)
        return 0

    _run(settings, step)


@buyer_group.command("modify")
@click.argument("product_id")
@click.option("--bandwidth", type=click.FloatRange(min=0, min_open=True), required=True, help="Mbit/s")
@click.pass_obj
def modify_cmd(settings: Settings, product_id: str, bandwidth: float) -> None:
    """Change a product's bandwidth (quote + modify order)."""

    async def step(client: SonataBuyer) -> int:
        current = await client.product(product_id)
        offering = current["productOffering"]["id"]
        quote = await client.call("POST", f"{QUOTE}/quote", quote_body(offering, "", bandwidth, product_id=product_id))
        if quote["state"] != "approved.orderable":
            _show(settings, quote, _print_quote)
            return 1
        body = order_body(offering, None, bandwidth, quote=(quote["id"], "1"), product_id=product_id, action="modify")
        order = await client.wait_order((await client.order(body))["id"])
        _show(settings, order, _print_order)
        return 0 if order["state"] == "completed" else 1

    _run(settings, step)


@buyer_group.command("disconnect")
@click.argument("product_id")
@click.pass_obj
def disconnect_cmd(settings: Settings, product_id: str) -> None:
    """Disconnect a product (delete order)."""

    async def step(client: SonataBuyer) -> int:
        order = await client.disconnect(product_id)
        _show(settings, order, _print_order)
        return 0 if order["state"] == "completed" else 1

    _run(settings, step)


@buyer_group.command("order-internet-access")
@click.option("--address", required=True, help='one line, e.g. "100 Main Street, Springfield, 12345, US"')
@click.option("--bandwidth", type=click.FloatRange(min=0, min_open=True), required=True, help="Mbit/s")
@click.option("--term", "term_months", type=click.IntRange(min=1), default=12, show_default=True, help="months")
@click.pass_obj
def order_ia_cmd(settings: Settings, address: str, bandwidth: float, term_months: int) -> None:
    """The whole flow: address → POQ → firm quote → order → completed → the product."""

    async def step(client: SonataBuyer) -> int:
        flow = await client.order_internet_access(address, bandwidth, term_months=term_months,
                                                  offering=settings.offering)  # fmt: skip
        if settings.as_json:
            _dump({"address": flow.address, "productOfferingQualification": flow.poq, "quote": flow.quote,
                   "productOrder": flow.order, "product": flow.product, "seconds": flow.seconds})  # fmt: skip
        else:
            _print_flow(flow)
        return 0 if flow.product is not None else 1

    _run(settings, step)


def _print_flow(flow: Flow) -> None:
    if flow.address is not None:
        _print_validation(flow.address)
    if flow.poq is not None:
        item = flow.poq["productOfferingQualificationItem"][0]
        console.print(f"POQ {flow.poq['id']}: {item.get('serviceabilityConfidence')} "
                      f"{item.get('serviceabilityConfidenceReason', '')}")  # fmt: skip
    if flow.quote is not None:
        _print_quote(flow.quote)
    if flow.order is not None:
        _print_order(flow.order)
    if flow.product is not None:
        conf = flow.product["productConfiguration"]
        transit = (conf.get("transitAddresses") or {}).get("serviceProviderIpv4TransitAddress", "")
        console.print(f"[green]product {flow.product['id']} is {flow.product['status']}[/green]: {_mbps(conf)}, "
                      f"transit {transit}")  # fmt: skip
    if flow.seconds:
        console.print("timings: " + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in flow.seconds.items()))
