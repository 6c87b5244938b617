"""A real net-snmp agent in a namespace, reachable from the test process (shared by SNMP lab tests).

Layout: namespace ``sa`` runs snmpd and owns ``mgmt0`` (veth to the root namespace, ``ilts<run><n>`` with
10.251.<n>.1/30 on our side, .2 on the agent's) and the data interfaces ``e1``..``eN``, whose veth peers live in
namespace ``sp`` (so carrier follows admin state, LAB-RECIPES §1.2). Traps go to the root-side address.
"""

from __future__ import annotations

import itertools
import os
import random
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from interlude.lab.agents.base import AgentProcess
from interlude.lab.agents.snmpd import SnmpdConfig, SnmpV3User, start_snmpd
from tests.support.netns import RUN_ID, NetnsFactory

V3_USER = SnmpV3User("iltv3", "ilt-auth-key-1", "ilt-priv-key-1", "SHA-256", "AES")
RO, RW = "ilt-ro-c0mm", "ilt-rw-c0mm"

_SUBNETS = itertools.count(random.Random(os.getpid()).randrange(1, 200))


def free_udp_port(host: str) -> int:
    """A UDP port free right now on ``host`` (for trap listeners the agent must know in advance)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass
class SnmpLabNode:
    """What a test needs to know about the agent it got."""

    factory: NetnsFactory
    agent_ns: str
    peer_ns: str
    address: str
    root_address: str
    trap_port: int
    interfaces: list[str]
    agent: AgentProcess
    env: dict[str, str] = field(default_factory=dict)

    def sysfs(self, ifname: str, attr: str) -> str:
        return self.factory.sysfs(self.agent_ns, ifname, attr)

    def node_spec(self, *, version: str = "2c", events: bool = True, **settings: object) -> dict[str, object]:
        """A topology node (raw dict) for this agent; secrets by env reference (see ``env``)."""
        base: dict[str, object] = {"version": version, "timeout_s": 1.0, "retries": 1}
        if events:
            base["trap_listen"] = f"{self.root_address}:{self.trap_port}"
        base.update(settings)
        creds = {"community": {"env": "ILT_SNMP_RO"}, "write_community": {"env": "ILT_SNMP_RW"}}
        if version == "3":
            creds = {
                "v3_user": {"env": "ILT_SNMP_V3_USER"},
                "v3_auth_key": {"env": "ILT_SNMP_V3_AUTH"},
                "v3_priv_key": {"env": "ILT_SNMP_V3_PRIV"},
                "trap_community": {"env": "ILT_SNMP_RO"},
            }
        return {
            "kind": "snmp",
            "address": self.address,
            "settings": base,
            "credentials": creds,
            "interfaces": {name: {} for name in self.interfaces},
        }

    def generate_traffic(self, ifname: str, frames: int) -> None:
        idx = self.interfaces.index(ifname) + 1
        self.factory.exec(
            self.peer_ns, "ping", "-f", "-q", "-c", str(frames), "-w", "5", f"192.0.2.{4 * idx + 1}", check=False
        )


def build_snmp_lab(
    factory: NetnsFactory, state_dir: Path, *, data_interfaces: int = 2, trap_v3: bool = False, inform: bool = False
) -> SnmpLabNode:
    """Namespaces, veths, addresses and a started snmpd (see the module docstring)."""
    n = next(_SUBNETS) % 250 + 1
    agent_ns = factory.netns(f"sa{n}")
    peer_ns = factory.netns(f"sp{n}")
    root_if = f"ilts{RUN_ID}{n}"[:15]
    factory.veth(None, root_if, agent_ns, "mgmt0")
    root_address, address = f"10.251.{n}.1", f"10.251.{n}.2"
    factory.addr(None, root_if, f"{root_address}/30")
    factory.addr(agent_ns, "mgmt0", f"{address}/30")
    names = [f"e{i}" for i in range(1, data_interfaces + 1)]
    for i, name in enumerate(names, start=1):
        factory.veth(agent_ns, name, peer_ns, f"p{i}")
        factory.addr(agent_ns, name, f"192.0.2.{4 * i + 1}/30")
        factory.addr(peer_ns, f"p{i}", f"192.0.2.{4 * i + 2}/30")
    trap_port = free_udp_port(root_address)
    config = SnmpdConfig(
        sys_name=f"ilt-snmp-{n}",
        listen=[f"{address}:161", "127.0.0.1:161"],
        ro_community=RO,
        rw_community=RW,
        v3_users=[V3_USER],
        trap_target=f"{root_address}:{trap_port}",
        trap_community=RO,
        trap_v3_user=V3_USER.name if trap_v3 else None,
        notification_type="inform" if inform else "trap",
    )
    agent = start_snmpd(agent_ns, state_dir, config)
    # Stop the daemon (it is not our child: snmpd daemonizes) before the namespaces go away.
    factory.processes.append(_PidHandle(agent.pid))  # type: ignore[arg-type]
    env = {
        "ILT_SNMP_RO": RO,
        "ILT_SNMP_RW": RW,
        "ILT_SNMP_V3_USER": V3_USER.name,
        "ILT_SNMP_V3_AUTH": V3_USER.auth_key,
        "ILT_SNMP_V3_PRIV": V3_USER.priv_key,
    }
    return SnmpLabNode(factory, agent_ns, peer_ns, address, root_address, trap_port, names, agent, env)


class _PidHandle:
    """Looks enough like ``subprocess.Popen`` for :meth:`NetnsFactory.cleanup` to stop a daemon by PID."""

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def poll(self) -> int | None:
        from interlude.lab.agents.base import pid_alive

        return None if pid_alive(self.pid) else 0

    def send_signal(self, sig: int) -> None:
        os.kill(self.pid, sig)

    def wait(self, timeout: float | None = None) -> int:
        from interlude.lab.agents.base import stop_pid

        stop_pid(self.pid, timeout=timeout or 5.0)
        return 0

    def kill(self) -> None:
        from interlude.lab.agents.base import stop_pid

        stop_pid(self.pid, timeout=0.1)


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=30)
