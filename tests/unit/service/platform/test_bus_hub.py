from __future__ import annotations

import pytest

from interlude.domain.events import DomainEvent, PortStateChanged, ServiceOperChanged
from interlude.domain.model import OperStatus
from interlude.errors import ValidationError
from interlude.service.platform.bus import EventBus
from interlude.service.platform.hub import SERVICE_INVENTORY, build_event, parse_event_query


async def test_bus_delivers_by_type_and_survives_bad_handlers() -> None:
    bus = EventBus()
    got: list[DomainEvent] = []

    async def bad(_: DomainEvent) -> None:
        raise RuntimeError("handler bug")

    async def ports(event: PortStateChanged) -> None:
        got.append(event)

    async def everything(event: DomainEvent) -> None:
        got.append(event)

    bus.subscribe(DomainEvent, bad)
    unsubscribe = bus.subscribe(PortStateChanged, ports)
    bus.subscribe(DomainEvent, everything)
    port = PortStateChanged(1.0, "pe1", "uni1", False)
    oper = ServiceOperChanged(2.0, "ovc-1", "sp", OperStatus.DISABLED)
    await bus.publish(port)
    await bus.publish(oper)
    assert got == [port, port, oper]
    unsubscribe()
    await bus.publish(port)
    assert got[-1] is port and len(got) == 4


def test_event_query_forms() -> None:
    api = SERVICE_INVENTORY
    assert parse_event_query(None, api) is None
    assert parse_event_query("", api) is None
    assert parse_event_query("eventType=serviceCreateEvent,serviceStateChangeEvent", api) == {  # type: ignore[comparison-overlap]
        "serviceCreateEvent", "serviceStateChangeEvent",
    }  # fmt: skip
    assert parse_event_query("eventType=serviceCreateEvent&eventType=serviceDeleteEvent", api) == {  # type: ignore[comparison-overlap]
        "serviceCreateEvent", "serviceDeleteEvent",
    }  # fmt: skip
    assert parse_event_query("eventType = serviceCreateEvent", api) == {"serviceCreateEvent"}  # type: ignore[comparison-overlap]
    with pytest.raises(ValidationError, match="unknown event type"):
        parse_event_query("eventType=serviceOrderCreateEvent", api)
    with pytest.raises(ValidationError, match="only 'eventType'"):
        parse_event_query("state=active", api)


def test_event_envelope() -> None:
    event = build_event("serviceCreateEvent", {"id": "x"})
    assert set(event) == {"eventId", "eventTime", "eventType", "event"}
    assert event["eventTime"].endswith("Z")
