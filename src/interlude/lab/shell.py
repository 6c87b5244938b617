"""Thin, fast wrappers around iproute2, tc, nft and ethtool, with errors mapped to :class:`LabError`.

Bring-up speed matters (goal: 50 nodes in under 10 s), so the builder sends whole batches to one ``ip -b``
process per namespace instead of one process per object; pyroute2 is used where it is natural (the adapter's
interface reads, counters and netlink events).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence

from interlude.errors import LabError


def run(args: Sequence[str], *, check: bool = True, timeout: float = 30.0, stdin: str | None = None) -> str:
    """Run a command; on failure raise :class:`LabError` quoting the command and its stderr."""
    try:
        proc = subprocess.run(list(args), input=stdin, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError as exc:
        raise LabError(f"{args[0]} is not installed (needed by labs): {exc}") from exc
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"{' '.join(args)} did not finish within {timeout} s") from exc
    if check and proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip()
        raise LabError(f"'{' '.join(args)}' failed ({proc.returncode}): {detail}")
    return proc.stdout


def ip_batch(lines: Sequence[str], netns: str | None = None, *, force: bool = False) -> None:
    """Run ``ip`` commands (without the leading ``ip``) in one process, optionally inside ``netns``.

    ``force`` keeps going after a failing line (``ip -force``), used for best-effort teardown.
    """
    if not lines:
        return
    args = ["ip"]
    if netns is not None:
        args += ["-n", netns]
    if force:
        args.append("-force")
    args += ["-b", "-"]
    run(args, stdin="\n".join(lines) + "\n", check=not force)


def tc_batch(lines: Sequence[str], netns: str, *, force: bool = False) -> None:
    """Run ``tc`` commands in one process inside ``netns``."""
    if not lines:
        return
    args = ["tc", "-n", netns]
    if force:
        args.append("-force")
    run([*args, "-b", "-"], stdin="\n".join(lines) + "\n", check=not force)


def netns_exec(netns: str, args: Sequence[str], *, check: bool = True, timeout: float = 30.0) -> str:
    """Run a command inside a namespace (``ip netns exec``)."""
    return run(["ip", "netns", "exec", netns, *args], check=check, timeout=timeout)


def nft(netns: str, script: str) -> None:
    """Load an nftables script inside ``netns``."""
    run(["ip", "netns", "exec", netns, "nft", "-f", "-"], stdin=script)


def list_netns() -> set[str]:
    """Names of the named network namespaces (``ip netns list``)."""
    out = run(["ip", "netns", "list"], check=False)
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def netns_pids(netns: str) -> list[int]:
    """PIDs of processes living in ``netns`` (all of them are ours: the namespace is the lab's)."""
    out = run(["ip", "netns", "pids", netns], check=False)
    return [int(p) for p in out.split() if p.isdigit()]


def root_link_exists(ifname: str) -> bool:
    """Whether ``ifname`` exists in the root namespace."""
    return bool(run(["ip", "-o", "link", "show", "dev", ifname], check=False).strip())


def have(binary: str) -> bool:
    """Whether an executable is available (on PATH or in /usr/sbin)."""
    return shutil.which(binary) is not None or shutil.which(binary, path="/usr/sbin:/sbin") is not None
