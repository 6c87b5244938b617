"""The ``labs/two-site-eline`` bundle as lab tests bring it up and serve it (one place for every such test).

:func:`bundle_lab` builds the bundle's :class:`Lab` with this run's prefix/subnet and the addresses left to the
lab; :func:`bundle_lab_up` is the body of a module-scoped ``lab`` fixture (skip, or fail under
``INTERLUDE_REQUIRE_LAB=1``, when the lab cannot come up; always torn down, and nothing of it may be left);
:func:`lab_runtime` is the runtime a served test talks to.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import yaml

from interlude.adapters.base import Adapter, AdapterContext
from interlude.app.runtime import Runtime, RuntimeOptions
from interlude.lab.builder import Lab
from interlude.topology.model import NodeSpec
from tests.support.lab import lab_unavailable, require_binaries, require_netns
from tests.support.labkit import leftovers, make_lab
from tests.support.snmp_lab import free_udp_port

BUNDLE = Path(__file__).resolve().parents[2] / "labs" / "two-site-eline"
LAB_AGENTS = ("snmpd", "sshd", "netconfd", "ssh-keygen")
"""The binaries the bundle's agents need (tests add their own tools, e.g. tshark or ping)."""


def bundle_lab(tmp: Path, *, own_trap_port: bool = False) -> Lab:
    """The bundle with this run's prefix/subnet and addresses left to the lab.

    ``own_trap_port`` gives the SNMP nodes' trap listener a free UDP port of this run: needed where the
    ``snmp`` adapter really serves the SNMP nodes (served as ``interlude serve`` does), not where every node
    runs through the ``lab`` adapter.
    """
    shutil.copytree(BUNDLE / "secrets", tmp / "secrets", ignore=shutil.ignore_patterns("netconf_ed25519*"))
    raw = yaml.safe_load((BUNDLE / "topology.yaml").read_text())
    for node in raw["nodes"].values():
        node.pop("address", None)
    if own_trap_port:
        raw["kinds"]["snmp"]["settings"]["trap_listen"] = f"0.0.0.0:{free_udp_port('0.0.0.0')}"
    return make_lab(raw, tmp)


def bundle_lab_up(tmp: Path, *tools: str, own_trap_port: bool = False) -> Iterator[Lab]:
    """Bring the bundle up for a module's tests, yield it, tear it down and check nothing is left.

    Needs network namespaces and the agents' binaries plus ``tools`` (skip without; fail in CI).
    """
    require_netns()
    require_binaries(*LAB_AGENTS, *tools)
    yield from lab_up(bundle_lab(tmp, own_trap_port=own_trap_port))


def lab_up(built: Lab) -> Iterator[Lab]:
    """Bring a built lab up (skip, or fail in CI, when it cannot), yield it, tear it down, check nothing is left."""
    try:
        built.up()
    except Exception as exc:
        lab_unavailable(f"the {built.topology.name} lab did not come up: {exc}")
    try:
        yield built
    finally:
        built.down()
        assert leftovers(built.pfx) == []


def lab_runtime(lab: Lab, state_dir: Path, db_name: str, *, by_kind: bool) -> Runtime:
    """A runtime on the running lab, with fast notifications and polling, no seeding and no order runs.

    ``by_kind``: one adapter per node kind through the registry (snmp, netconf, lab), as ``interlude serve``
    does; otherwise every node runs through the ``lab`` adapter (namespaces, raw sockets, netlink), so the
    test needs no SNMP or NETCONF session.
    """
    from interlude.adapters.lab import LabAdapter
    from interlude.adapters.registry import create_adapter

    def factory(node: NodeSpec, context: AdapterContext) -> Adapter:
        context.resources["lab-state-dir"] = lab.folder
        return create_adapter(node, context) if by_kind else LabAdapter(node, context)

    options = RuntimeOptions(notify_base_delay_s=0.05, poll_interval_s=0.5, provision_seed=False, run_orders=False)
    return Runtime(lab.topology, state_dir / db_name, base_dir=lab.base_dir, state_dir=state_dir,
                   adapter_factory=factory, options=options)  # fmt: skip
