"""A small NETCONF lab for tests: yuma123 netconfd behind sshd in a namespace, reachable from the root namespace.

::

    root ns: iltn<run><i> 10.252.X.(4i+1)/30 ──veth── dut ns: mgmt0 10.252.X.(4i+2)   sshd:830 + netconfd
                                                       dut ns: e1 ──veth── peer ns: p1   (carrier follows e1)
                                                       dut ns: e2 ──veth── peer ns: p2
                                                       dut ns: e3 ──veth── peer ns: p3

10.252.0.0/16 is the netconf helper's subnet; X comes from the run id so concurrent runs do not collide.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from interlude.adapters.base import AdapterContext
from interlude.domain.southbound import AdminState, OperState
from interlude.lab.agents.base import AgentProcess
from interlude.lab.agents.netconfd import start_netconf, stop_netconf
from interlude.topology.loader import parse_topology
from interlude.topology.model import Topology
from tests.support.lab import require_binaries, require_netns
from tests.support.netns import RUN_ID, NetnsFactory


@dataclass
class NetconfLab:
    """Handles a test needs: namespaces, the agent's address and host key, the client key, truth from sysfs."""

    factory: NetnsFactory
    dut: str
    peer: str
    address: str
    agents: list[AgentProcess]
    key_file: Path
    host_key: str
    state_dir: Path

    def sysfs(self, ifname: str, attr: str) -> str:
        return self.factory.sysfs(self.dut, ifname, attr)

    def kernel_admin(self, ifname: str) -> AdminState:
        return AdminState.UP if int(self.sysfs(ifname, "flags"), 16) & 0x1 else AdminState.DOWN

    def kernel_oper(self, ifname: str) -> OperState:
        return OperState.UP if self.sysfs(ifname, "operstate") == "up" else OperState.DOWN

    def kernel_octets(self, ifname: str) -> tuple[int, int]:
        return int(self.sysfs(ifname, "statistics/rx_bytes")), int(self.sysfs(ifname, "statistics/tx_bytes"))

    def ping_peer(self, count: int) -> None:
        """Traffic through e1: ping the peer's p1 address from the dut namespace."""
        self.factory.exec(
            self.dut, "ping", "-c", str(count), "-i", "0.002", "-W", "1", "-q", "10.252.255.2", check=False, timeout=30
        )

    def topology(self, profile: str = "yuma123", **settings: object) -> Topology:
        return parse_topology(
            {
                "name": "nclab",
                "nodes": {
                    "dut": {
                        "kind": "netconf",
                        "address": self.address,
                        "port": 830,
                        "settings": {
                            "profile": profile,
                            "hostkey_policy": "pinned",
                            "pinned_key": self.host_key,
                            "poll_interval_s": 0.5,
                            "timeout_s": 10,
                            **settings,
                        },
                        "credentials": {"private_key": {"file": str(self.key_file)}},
                        "interfaces": {"e1": {}, "e2": {}, "e3": {}},
                    }
                },
            }
        )

    def context(self, topology: Topology) -> AdapterContext:
        return AdapterContext(topology=topology, base_dir=self.state_dir, state_dir=self.state_dir)


def build_netconf_lab(
    factory: NetnsFactory, state_dir: Path, index: int = 0, interface_prefix: str | None = None
) -> NetconfLab:
    """Create the namespaces and links, start sshd + netconfd, return once a NETCONF hello succeeds."""
    require_netns()
    require_binaries("sshd", "netconfd", "netconf-subsystem", "ssh-keygen", "ssh", "ping")
    octet = int(RUN_ID, 16) % 250 + 1
    root_ip, dut_ip = f"10.252.{octet}.{4 * index + 1}", f"10.252.{octet}.{4 * index + 2}"
    dut = factory.netns(f"ncd{index}")
    peer = factory.netns(f"ncp{index}")
    root_if = f"iltn{RUN_ID}{index}"
    factory.veth(None, root_if, dut, "mgmt0")
    factory.addr(None, root_if, f"{root_ip}/30")
    factory.addr(dut, "mgmt0", f"{dut_ip}/30")
    factory.veth(dut, "e1", peer, "p1")
    factory.veth(dut, "e2", peer, "p2")
    factory.veth(dut, "e3", peer, "p3")  # never configured by any test (netconfd does not notify for it)
    factory.addr(dut, "e1", "10.252.255.1/30")
    factory.addr(peer, "p1", "10.252.255.2/30")
    state_dir.mkdir(parents=True, exist_ok=True)
    key = state_dir / "client_ed25519"
    if not key.exists():
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    agents = start_netconf(
        dut,
        state_dir / "agent",
        listen=[dut_ip, "127.0.0.1"],
        authorized_keys=[key.with_suffix(".pub").read_text().strip()],
        interface_prefix=interface_prefix,
    )
    sshd = next(a for a in agents if a.type == "sshd")
    return NetconfLab(factory, dut, peer, dut_ip, agents, key, str(sshd.extra["host_key"]), state_dir)


def teardown_netconf_lab(lab: NetconfLab) -> None:
    """Stop the agents by PID (they are daemons, not the factory's children), then the namespaces."""
    stop_netconf(lab.agents)
    lab.factory.cleanup()


def raw_session(lab: NetconfLab) -> Any:
    """A bare ncclient session to the lab's netconfd as root, for reads and writes behind the adapter's back."""
    import ncclient.transport.session as nc_session
    from ncclient import manager

    nc_session.TICK = 0.002
    return manager.connect(
        host=lab.address,
        port=830,
        username="root",
        key_filename=str(lab.key_file),
        hostkey_verify=False,
        allow_agent=False,
        look_for_keys=False,
    )


def running_config(lab: NetconfLab) -> str:
    """The running datastore's /interfaces, read out of band with bare ncclient (canonicalised text)."""
    from lxml import etree

    with raw_session(lab) as m:
        flt = '<interfaces xmlns="urn:ietf:params:xml:ns:yang:ietf-interfaces"/>'
        data = m.get_config(source="running", filter=("subtree", flt)).data_ele
        return str(etree.tostring(data, method="c14n").decode())


def confirmed_delete_then_vanish(lab: NetconfLab, ifname: str, timeout_s: int = 1) -> None:
    """Delete an interface entry with a confirmed commit, never confirm it, and close the session (RFC 6241:
    the server restores the configuration when the session ends or the timeout passes)."""
    with raw_session(lab) as m:
        m.edit_config(
            target="candidate",
            config=(
                '<config xmlns="urn:ietf:params:xml:ns:netconf:base:1.0" xmlns:nc="urn:ietf:params:xml:ns:netconf:'
                'base:1.0"><interfaces xmlns="urn:ietf:params:xml:ns:yang:ietf-interfaces"><interface '
                f'nc:operation="delete"><name>{ifname}</name></interface></interfaces></config>'
            ),
        )
        m.commit(confirmed=True, timeout=str(timeout_s))
