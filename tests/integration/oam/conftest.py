"""Namespaces for OAM lab tests: two MEPs on a veth, optionally with the delay relay in between."""

from __future__ import annotations

from dataclasses import dataclass

from tests.support.netns import NetnsFactory


@dataclass
class Pair:
    """Namespace ``a`` (initiator, ``if_a``) and ``b`` (responder, ``if_b``), and the relay namespace if any."""

    a: str
    b: str
    if_a: str
    if_b: str
    relay: str | None = None
    relay_ifs: tuple[str, str] = ("", "")


def make_pair(factory: NetnsFactory, tag: str, *, relay: bool = False) -> Pair:
    """Two namespaces joined by a veth (``ilto<tag>a`` / ``ilto<tag>b``), or by two veths and a relay ns."""
    a = factory.netns(f"o{tag}a")
    b = factory.netns(f"o{tag}b")
    if_a, if_b = f"ilto{tag}a", f"ilto{tag}b"
    if not relay:
        factory.veth(a, if_a, b, if_b)
        return Pair(a, b, if_a, if_b)
    r = factory.netns(f"o{tag}r")
    ra, rb = f"ilto{tag}ra", f"ilto{tag}rb"
    factory.veth(a, if_a, r, ra, tx_csum_off=True)
    factory.veth(b, if_b, r, rb, tx_csum_off=True)
    return Pair(a, b, if_a, if_b, relay=r, relay_ifs=(ra, rb))
