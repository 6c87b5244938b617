"""Start every agent a lab needs, in parallel, and record each PID the moment it is known.

Per node kind (:data:`NODE_AGENTS` maps a kind to the function that prepares its agent's start):

* ``snmp`` -> :func:`interlude.lab.agents.snmpd.start_snmpd` with communities and the v3 user resolved from
  the node's secret references, listening on the node's management address and 127.0.0.1;
* ``netconf`` -> :func:`interlude.lab.agents.netconfd.start_netconf` (sshd + netconfd). The client key: if the
  node's ``credentials.private_key`` is a file reference to an existing key, its public half is authorised;
  otherwise the lab generates an ed25519 key *at that path* (or at ``<state>/keys/netconf_ed25519`` without a
  reference), so the topology's reference works unchanged for ``interlude serve``;
* every MEP -> :func:`interlude.lab.agents.oam_responder.start_responder` where the MEP sends and listens
  (:meth:`LabState.mep_port`: the edge side of a UNI/ENNI, the interface itself on a node-to-node link);
* every IP measurement point -> its test address on that same port (with on-link routes to every other
  point's address, so points of different subnets reach each other across the lab's bridges) and
  :func:`interlude.lab.agents.ip_reflector.start_reflector` on the point's UDP port.

Agent files (configs, logs, pid files) live in ``<state>/agents/<node>/...``.
"""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from itertools import zip_longest
from pathlib import Path

from interlude.errors import InterludeError, LabError, SecretError
from interlude.lab import shell
from interlude.lab.agents.base import AgentProcess
from interlude.lab.agents.ip_reflector import start_reflector
from interlude.lab.agents.netconfd import start_netconf
from interlude.lab.agents.oam_responder import start_responder
from interlude.lab.agents.snmpd import SnmpdConfig, SnmpV3User, start_snmpd
from interlude.lab.processes import record_pid
from interlude.lab.state import LabState
from interlude.topology.loader import resolve_secret
from interlude.topology.model import MeasurementPointDecl, MepDecl, NodeSpec, Topology

Progress = Callable[[str], None]
Start = Callable[[], list[AgentProcess]]
"""Starts one node's agent(s) and returns what it started (run in a worker thread)."""


def _secret(node: NodeSpec, key: str, base_dir: Path) -> str | None:
    ref = node.credentials.get(key)
    if ref is None:
        return None
    return resolve_secret(ref, base_dir)


def _trap_target(topology: Topology, node: NodeSpec, state: LabState) -> str | None:
    """Where the agent sends traps: the root-side management address at the adapter's port."""
    listen = node.settings.get("trap_listen")
    root = (state.mgmt_root_address or "").split("/")[0]
    if isinstance(listen, str) and listen:
        host, _, port = listen.rpartition(":")
        if host in ("", "0.0.0.0", "::", "*"):
            return f"{root}:{port}" if root else None
        return listen
    return topology.lab.trap_target


def snmpd_config(topology: Topology, node: NodeSpec, state: LabState, base_dir: Path) -> SnmpdConfig:
    """The :class:`SnmpdConfig` for an ``snmp`` node (secrets resolved from its references)."""
    address = state.nodes[node.name].address
    port = node.port or 161
    users = []
    v3_user = _secret(node, "v3_user", base_dir)
    if v3_user:
        auth, priv = _secret(node, "v3_auth_key", base_dir), _secret(node, "v3_priv_key", base_dir)
        if not auth or not priv:
            raise SecretError(f"node {node.name}: a v3_user needs v3_auth_key and v3_priv_key references")
        users.append(
            SnmpV3User(
                name=v3_user,
                auth_key=auth,
                priv_key=priv,
                auth_protocol=str(node.settings.get("v3_auth_protocol", "SHA-256")),
                priv_protocol=str(node.settings.get("v3_priv_protocol", "AES")),
            )
        )
    ro = _secret(node, "community", base_dir)
    rw = _secret(node, "write_community", base_dir)
    return SnmpdConfig(
        sys_name=node.name,
        listen=[f"{address}:{port}", f"127.0.0.1:{port}"],
        ro_community=ro if ro is not None or users else "public",
        rw_community=rw,
        v3_users=users,
        trap_target=_trap_target(topology, node, state),
        trap_community=ro or "public",
    )


def netconf_client_key(node: NodeSpec, state: LabState, base_dir: Path) -> tuple[Path, str]:
    """(private key path, public key line) of the NETCONF client key for ``node`` (generated if absent)."""
    ref = node.credentials.get("private_key")
    if ref is not None and ref.file is not None:
        key = Path(ref.file)
        key = key if key.is_absolute() else base_dir / key
    else:
        key = state.path / "keys" / "netconf_ed25519"
    if not key.exists():
        key.parent.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"interlude-lab-{state.name}", "-f", str(key)],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            raise LabError(f"ssh-keygen failed for {key}: {proc.stderr.strip()}")
    pub = key.with_name(key.name + ".pub")
    if pub.exists():
        return key, pub.read_text().strip()
    proc = subprocess.run(["ssh-keygen", "-y", "-f", str(key)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise LabError(f"cannot read the public half of {key}: {proc.stderr.strip()}")
    return key, proc.stdout.strip()


def _remote_meps(topology: Topology, mep_name: str) -> tuple[int, ...]:
    """The other MEPs of the same MEG (same ``meg_id`` or name, level and VLAN) that send CCMs.

    They are configured as expected remote MEPs, so a peer that never comes up is a loss of continuity from the
    start instead of going unnoticed (only MEPs with ``ccm_interval_s`` send CCMs).
    """
    mep = topology.meps[mep_name]
    if not mep.ccm_interval_s:
        return ()
    meg = mep.meg_id or mep_name
    return tuple(
        sorted(
            other.mep_id
            for name, other in topology.meps.items()
            if name != mep_name
            and (other.meg_id or name) == meg
            and (other.level, other.vlan) == (mep.level, mep.vlan)
            and other.ccm_interval_s
        )
    )


def _snmp_agent(topology: Topology, node: NodeSpec, state: LabState, base_dir: Path) -> tuple[str, Start]:
    """Snmpd for an ``snmp`` node; its configuration (and any secret error) is resolved before anything starts."""
    config = snmpd_config(topology, node, state, base_dir)
    ns = state.nodes[node.name]
    folder = state.path / "agents" / ns.name / "snmpd"

    def start() -> list[AgentProcess]:
        return [start_snmpd(ns.namespace, folder, config)]

    return "snmpd", start


def _netconf_agent(topology: Topology, node: NodeSpec, state: LabState, base_dir: Path) -> tuple[str, Start]:
    """Sshd + netconfd for a ``netconf`` node, authorising the topology's client key."""
    _, pub = netconf_client_key(node, state, base_dir)
    port = node.port or 830
    ns = state.nodes[node.name]
    folder = state.path / "agents" / ns.name / "netconf"

    def start() -> list[AgentProcess]:
        return start_netconf(ns.namespace, folder, listen=[str(ns.address), "127.0.0.1"], port=port,
                             authorized_keys=[pub])  # fmt: skip

    return "sshd + netconfd", start


NODE_AGENTS: dict[str, Callable[[Topology, NodeSpec, LabState, Path], tuple[str, Start]]] = {
    "snmp": _snmp_agent,
    "netconf": _netconf_agent,
}
"""Node kind -> what prepares the start of its agent (kinds without an entry run none)."""


def _mep_agent(topology: Topology, mep_name: str, mep: MepDecl, state: LabState) -> Start:
    """The OAM responder of a MEP, where it sends and listens (:meth:`LabState.mep_port`)."""
    ns = state.nodes[mep.node]
    where = state.mep_port(mep.node, mep.interface)
    folder = state.path / "agents" / ns.name / f"oam-{mep_name}"
    remote_meps = _remote_meps(topology, mep_name)

    def start() -> list[AgentProcess]:
        return [
            start_responder(
                where.netns,
                folder,
                interface=where.ifname,
                level=mep.level,
                mep_id=mep.mep_id,
                vlan=mep.vlan,
                ccm_interval_s=mep.ccm_interval_s,
                meg_id=mep.meg_id or mep_name,
                remote_meps=remote_meps,
            )
        ]

    return start


def _point_agent(topology: Topology, point_name: str, point: MeasurementPointDecl, state: LabState) -> Start:
    """The reflector of an IP measurement point, on the port where its MEP would sit, with its address."""
    ns = state.nodes[point.node]
    where = state.mep_port(point.node, point.interface)
    folder = state.path / "agents" / ns.name / f"ip-{point_name}"
    others = sorted({p.address for n, p in topology.measurement_points.items() if n != point_name
                     and p.address != point.address})

    def start() -> list[AgentProcess]:
        v6 = ":" in point.address
        family = ["-6"] if v6 else []
        exists = shell.netns_exec(where.netns, ["ip", *family, "-o", "addr", "show", "dev", where.ifname],
                                  check=False)
        if f" {point.address}/" not in exists:
            shell.netns_exec(where.netns, ["ip", *family, "addr", "add", f"{point.address}/{128 if v6 else 32}",
                                           "dev", where.ifname, *(["nodad"] if v6 else [])])
        for other in others:
            if (":" in other) == v6:
                shell.netns_exec(where.netns, ["ip", *family, "route", "replace", other, "dev", where.ifname])
        return [start_reflector(where.netns, folder, port=point.port)]

    return start


def _jobs(topology: Topology, state: LabState, base_dir: Path) -> list[tuple[str, str, Start]]:
    """(node, description, start function) for every agent of the lab."""
    jobs: list[tuple[str, str, Start]] = []
    for name, node in topology.nodes.items():
        agent = NODE_AGENTS.get(node.kind)
        if agent is not None:
            what, start = agent(topology, node, state, base_dir)
            jobs.append((name, what, start))
    for mep_name, mep in topology.meps.items():
        jobs.append((mep.node, f"OAM responder {mep_name}", _mep_agent(topology, mep_name, mep, state)))
    for point_name, point in topology.measurement_points.items():
        jobs.append((point.node, f"OAM reflector {point_name}", _point_agent(topology, point_name, point, state)))
    return jobs


def start_agents(topology: Topology, state: LabState, base_dir: Path, *, progress: Progress, workers: int = 12) -> None:
    """Start every agent in parallel; each PID is journaled in the state folder as soon as it is known.

    All jobs run to completion even when one fails, so every started PID is recorded for ``down``; the first
    failure is then raised as a :class:`LabError` naming the node.
    """
    jobs = _jobs(topology, state, base_dir)
    if not jobs:
        return
    # Responders are CPU-bound Python start-ups, snmpd/sshd mostly wait for readiness: interleave them so the
    # waits overlap the start-ups instead of queueing behind them.
    cpu = [j for j in jobs if j[1].startswith("OAM")]
    waiting = [j for j in jobs if not j[1].startswith("OAM")]
    jobs = [j for pair in zip_longest(cpu, waiting) for j in pair if j is not None]
    lock = threading.Lock()
    errors: list[str] = []

    def run(job: tuple[str, str, Start]) -> None:
        node, what, start = job
        try:
            agents = start()
        except (InterludeError, OSError, subprocess.SubprocessError, TimeoutError, RuntimeError, ValueError) as exc:
            with lock:
                errors.append(f"{node}: {what} did not start: {exc}")
            return
        with lock:
            for agent in agents:
                state.nodes[node].agents.append(agent)
                record_pid(state, agent.pid)  # journaled at once; the state itself is saved by the builder
        progress(f"{node}: {what} ready")

    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(jobs)))) as pool:
        list(pool.map(run, jobs))
    if errors:
        raise LabError("; ".join(errors))
