"""Namespace fixtures for lab tests (lldpd's idea): a factory that owns cleanup.

Everything is named ``ilt<run>-...`` (namespaces) so a leftover is recognisable, and the factory deletes
exactly what it created, killing only the PIDs it started. Interface names are chosen by the caller and
must fit IFNAMSIZ (15 characters).
"""

from __future__ import annotations

import os
import signal
import subprocess
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import pytest

RUN_ID = uuid.uuid4().hex[:5]


def sh(*args: str, check: bool = True, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    """Run a command, raising with its stderr when it fails."""
    proc = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc


@dataclass
class NetnsFactory:
    """Creates namespaces and veth pairs; :meth:`cleanup` removes them and stops started processes."""

    namespaces: list[str] = field(default_factory=list)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def netns(self, name: str) -> str:
        """A new namespace ``ilt<run>-<name>`` with loopback up; returns its full name."""
        full = f"ilt{RUN_ID}-{name}"
        sh("ip", "netns", "add", full)
        self.namespaces.append(full)
        sh("ip", "-n", full, "link", "set", "lo", "up")
        return full

    root_links: list[str] = field(default_factory=list)

    def veth(
        self, ns_a: str | None, if_a: str, ns_b: str, if_b: str, *, up: bool = True, tx_csum_off: bool = False
    ) -> None:
        """A veth pair with one end in each namespace, created directly there.

        ``ns_a=None`` puts the first end in the root namespace (so the test process can reach an agent);
        give it a name starting with ``ilt`` and an address from the subnet your tests own. It is deleted at
        cleanup.
        """
        if ns_a is None:
            assert if_a.startswith("ilt"), "root-namespace interfaces must carry the ilt prefix"
            sh("ip", "link", "add", if_a, "type", "veth", "peer", "name", if_b, "netns", ns_b)
            self.root_links.append(if_a)
        else:
            sh("ip", "link", "add", if_a, "netns", ns_a, "type", "veth", "peer", "name", if_b, "netns", ns_b)
        for ns, ifname in ((ns_a, if_a), (ns_b, if_b)):
            prefix = ["ip"] if ns is None else ["ip", "-n", ns]
            if up:
                sh(*prefix, "link", "set", ifname, "up")
            if tx_csum_off:
                run_in = [] if ns is None else ["ip", "netns", "exec", ns]
                sh(*run_in, "ethtool", "-K", ifname, "tx", "off", check=False)

    def addr(self, ns: str | None, ifname: str, cidr: str) -> None:
        """Add an address to an interface (``ns=None``: the root namespace)."""
        prefix = ["ip"] if ns is None else ["ip", "-n", ns]
        sh(*prefix, "addr", "add", cidr, "dev", ifname)

    def exec(self, ns: str, *cmd: str, check: bool = True, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
        """Run a command inside a namespace."""
        return sh("ip", "netns", "exec", ns, *cmd, check=check, timeout=timeout)

    def spawn(self, ns: str, cmd: Sequence[str], **kwargs: object) -> subprocess.Popen[bytes]:
        """Start a long-running process inside a namespace; it is terminated at cleanup (by PID)."""
        proc: subprocess.Popen[bytes] = subprocess.Popen(["ip", "netns", "exec", ns, *cmd], **kwargs)  # type: ignore[call-overload]
        self.processes.append(proc)
        return proc

    def sysfs(self, ns: str, ifname: str, attr: str) -> str:
        """Read ``/sys/class/net/IF/ATTR`` as seen from inside the namespace."""
        return self.exec(ns, "cat", f"/sys/class/net/{ifname}/{attr}").stdout.strip()

    def cleanup(self) -> None:
        """Stop our processes, then delete our namespaces (which removes their veths and bridges)."""
        for proc in reversed(self.processes):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)
        self.processes.clear()
        for ns in reversed(self.namespaces):
            sh("ip", "netns", "del", ns, check=False)
            # processes started by agents (daemons) inside the ns would keep it alive: report, don't kill blindly
        self.namespaces.clear()
        for ifname in self.root_links:
            sh("ip", "link", "del", ifname, check=False)
        self.root_links.clear()


@pytest.fixture
def netns_factory() -> Iterator[NetnsFactory]:
    """Function-scoped namespace factory that cleans up after the test."""
    factory = NetnsFactory()
    try:
        yield factory
    finally:
        factory.cleanup()


def pid_alive(pid: int) -> bool:
    """Whether a PID exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
