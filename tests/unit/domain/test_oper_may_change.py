"""Re-deriving oper state only where a port change can matter gives what re-deriving every service gives.

:func:`oper_may_change` lets the inventory skip services a port change cannot affect. The check here is
exhaustive on the bundled topology: from every port up, and from every port down, each single port flip,
each pair of flips and the first read of a never-read port: every service it skips derives the same state
before and after.
"""

from __future__ import annotations

import itertools

from interlude.domain.inventory import derive_oper, link_ports, oper_may_change
from interlude.domain.model import AdminStatus, OperStatus, Service
from interlude.service.inventory.config import links_of, seed_services
from interlude.topology.loader import bundled_topology_path, load_topology

TOPO = load_topology(bundled_topology_path())
LINKS = links_of(TOPO)
SERVICES = seed_services(TOPO)
BY_ID = {s.id: s for s in SERVICES}
PORTS = sorted({(p.node, p.interface) for s in SERVICES for p in s.ports} | link_ports(LINKS))


def oper(svc: Service, port_up: dict[tuple[str, str], bool]) -> OperStatus:
    return derive_oper(svc, LINKS, port_up, BY_ID.get(svc.parent) if svc.parent else None)


def skipped_but_changed(before: dict[tuple[str, str], bool], after: dict[tuple[str, str], bool]) -> list[str]:
    changed = {k for k, v in after.items() if before.get(k) != v}
    return [
        s.id
        for s in SERVICES
        if not oper_may_change(s, BY_ID.get(s.parent) if s.parent else None, after, changed, link_ports(LINKS))
        and oper(s, before) is not oper(s, after)
    ]


def test_no_port_flip_changes_a_service_it_skips() -> None:
    flips = 0
    for base in (True, False):
        start = dict.fromkeys(PORTS, base)
        for pair in itertools.combinations_with_replacement(PORTS, 2):
            after = {**start, **{p: not base for p in pair}}
            assert skipped_but_changed(start, after) == [], pair
            flips += 1
    assert flips > 100


def test_a_first_read_rederives_what_was_never_read() -> None:
    for port in PORTS:
        before = {k: True for k in PORTS if k != port}
        after = {**before, port: True}
        assert skipped_but_changed(before, after) == [], port
    assert skipped_but_changed({}, dict.fromkeys(PORTS, True)) == []


def test_only_services_the_change_reaches_are_rederived() -> None:
    up = dict.fromkeys(PORTS, True)
    uni = ("pe1", "uni4")  # a UNI port no link uses
    links = link_ports(LINKS)
    assert uni not in links
    reached = {s.id for s in SERVICES if oper_may_change(s, BY_ID.get(s.parent or ""), up, {uni}, links)}
    assert reached == {"pe1-uni4"}
    locked = BY_ID["pe1-uni1"].evolve(admin=AdminStatus.LOCKED)
    assert oper_may_change(locked, None, up, {("pe1", "uni1")}, links)
    trunk = next(iter(links))
    reached = {s.id for s in SERVICES if oper_may_change(s, BY_ID.get(s.parent or ""), up, {trunk}, links)}
    assert {"ovc-1001", "ovc-1001-uni", "ovc-2002-enni"} <= reached
