"""Start a real NETCONF agent in a lab namespace: OpenSSH ``sshd`` in front of yuma123 ``netconfd``.

The interface the lab supervisor calls::

    start_netconf(netns, state_dir, *, listen, port=830, authorized_keys, interface_prefix=None)
        -> [AgentProcess(type="sshd", ...), AgentProcess(type="netconfd", ...)]

It returns only once a NETCONF ``<hello>`` has been exchanged over SSH inside the namespace, so the caller
can connect right away. Both PIDs are returned for the lab to record; stop them with
:func:`interlude.lab.agents.base.stop_pid` (never by name).

What it does, and why (LAB-RECIPES.md section 3):

* ``sshd`` listens on ``listen``:``port`` with key-only root login from ``authorized_keys``, its host key
  generated once in ``state_dir/ssh`` (the public half is in the sshd AgentProcess ``extra["host_key"]`` and a
  ready-made ``known_hosts`` file in ``extra["known_hosts"]``, so a topology can pin it), and the ``netconf``
  subsystem pointing at a *private* ncxserver socket (``/tmp/ncxserver.sock`` is shared by every netconfd on the
  box, so two labs would otherwise talk to each other's agent). ``/run/sshd`` must exist (privilege
  separation); we create it.
* ``netconfd`` runs with ``--module=ietf-interfaces --no-startup --superuser=root``, ``HOME`` and its cwd in
  ``state_dir`` (it writes ``backup-cfg.xml`` into its cwd on every commit and ``~/.yuma`` into HOME), and a
  ``get-interface-ipv4`` helper script first on its ``PATH``: the Debian package does not ship that script and
  netconfd aborts on the first ``get`` without it. It runs in the foreground, so we background it in a detached
  shell and record the PID the shell reports. ``interface_prefix`` sets ``INTERFACE_NAME_PREFIX``, which
  restricts the interfaces its ietf-interfaces SIL handles.
* A probe key pair is generated in ``state_dir/ssh`` and added to ``authorized_keys`` so readiness can be
  checked with the real SSH subsystem (the caller's own key is only known by its public half).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import select
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from interlude.lab.agents.base import AgentProcess, AgentStartError, log_tail, pid_alive, read_pidfile, stop_pid

SSHD = "/usr/sbin/sshd"
NETCONFD = "/usr/sbin/netconfd"
NETCONF_SUBSYSTEM = "/usr/sbin/netconf-subsystem"

# The helper netconfd's ietf-interfaces SIL popen()s on every get (missing from the Debian package).
GET_INTERFACE_IPV4 = """#!/bin/sh
# Installed by lso-interlude: netconfd's ietf-interfaces SIL runs `get-interface-ipv4 IFNAME` and aborts
# when the script is missing (Debian packaging bug). Prints the first IPv4 address as ietf-ip XML.
ip=`ip -4 addr show "$1" 2>/dev/null | grep -oP '(?<=inet\\s)\\d+(\\.\\d+){3}' | head -1`
[ "$ip" = "" ] && exit 0
echo "<ipv4 xmlns=\\"urn:ietf:params:xml:ns:yang:ietf-ip\\"><address><ip>$ip</ip></address></ipv4>"
"""

HELLO = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<hello xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><capabilities>'
    "<capability>urn:ietf:params:netconf:base:1.0</capability></capabilities></hello>]]>]]>"
    '<rpc message-id="1" xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><close-session/></rpc>]]>]]>'
)

_UNIX_PATH_MAX = 100  # sun_path is 108 bytes; keep a margin


def _run(cmd: list[str], timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise AgentStartError(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc


def _keygen(path: Path, comment: str) -> str:
    """An ed25519 key pair at ``path`` (kept if it exists); returns the public key line."""
    if not path.exists():
        _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)])
    return path.with_name(path.name + ".pub").read_text().strip()


def _socket_path(state_dir: Path) -> Path:
    """A private ncxserver socket path that fits ``sun_path`` (pytest's tmp paths can be too long)."""
    candidate = state_dir / "ncxserver.sock"
    if len(str(candidate)) <= _UNIX_PATH_MAX:
        return candidate
    digest = hashlib.sha256(str(state_dir).encode()).hexdigest()[:10]
    short = Path(tempfile.gettempdir()) / f"iltnc-{digest}"
    short.mkdir(mode=0o700, exist_ok=True)
    return short / "ncx.sock"


def _probe_hello(netns: str, ssh_dir: Path, address: str, port: int, timeout: float) -> str | None:
    """Exchange a NETCONF hello through sshd inside the namespace; None on success, else the reason."""
    cmd = [
        "ip", "netns", "exec", netns, "ssh", "-s", "-p", str(port),
        "-i", str(ssh_dir / "probe_ed25519"),
        "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=yes",
        "-o", f"UserKnownHostsFile={ssh_dir / 'known_hosts'}", "-o", "ConnectTimeout=2",
        "-o", "LogLevel=ERROR", f"root@{address}", "netconf",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    received = b""
    try:
        proc.stdin.write(HELLO.encode())
        proc.stdin.flush()
        deadline = time.monotonic() + timeout
        # Keep stdin open until the server's hello is in: closing it early lets the subsystem exit first.
        while b"]]>]]>" not in received and time.monotonic() < deadline:
            ready, _, _ = select.select([proc.stdout], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                break
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                break
            received += chunk
    finally:
        with contextlib.suppress(OSError):
            proc.stdin.close()
        try:
            proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        err = proc.stderr.read().decode(errors="replace").strip()
        proc.stderr.close()
        proc.stdout.close()
    text = received.decode(errors="replace")
    if "<hello" in text and "urn:ietf:params:netconf:base:1." in text:
        return None
    return (err or text).strip()[-300:] or f"ssh exited {proc.returncode} without a hello"


def start_netconf(
    netns: str,
    state_dir: Path,
    *,
    listen: list[str],
    port: int = 830,
    authorized_keys: list[str],
    interface_prefix: str | None = None,
    timeout_s: float = 10.0,
) -> list[AgentProcess]:
    """Start sshd + netconfd in ``netns``; return both once a NETCONF hello succeeds over SSH.

    ``listen`` are addresses inside the namespace (e.g. the node's ``mgmt0`` address and ``127.0.0.1``);
    ``authorized_keys`` are OpenSSH public key lines allowed to log in as ``root``. Everything the agents
    write stays in ``state_dir``. On failure both processes are stopped and :class:`AgentStartError` says why.
    """
    if not listen:
        raise ValueError("start_netconf needs at least one listen address")
    for binary in (SSHD, NETCONFD, NETCONF_SUBSYSTEM):
        if not os.path.exists(binary):
            raise AgentStartError(f"{binary} is not installed (apt-get install openssh-server netconfd)")
    state_dir = state_dir.resolve()
    ssh_dir, home, bin_dir = state_dir / "ssh", state_dir / "nchome", state_dir / "bin"
    for d in (ssh_dir, home, bin_dir):
        d.mkdir(parents=True, exist_ok=True)
    ssh_dir.chmod(0o700)
    Path("/run/sshd").mkdir(parents=True, exist_ok=True)  # sshd's privilege separation directory

    helper = bin_dir / "get-interface-ipv4"
    helper.write_text(GET_INTERFACE_IPV4)
    helper.chmod(0o755)

    host_pub = _keygen(ssh_dir / "host_ed25519", f"interlude-{netns}")
    probe_pub = _keygen(ssh_dir / "probe_ed25519", "interlude-readiness-probe")
    (ssh_dir / "authorized_keys").write_text("\n".join([*authorized_keys, probe_pub]) + "\n")
    (ssh_dir / "authorized_keys").chmod(0o600)
    key_type, key_b64 = host_pub.split()[:2]
    known = [
        f"[{addr}]:{port} {key_type} {key_b64}" if port != 22 else f"{addr} {key_type} {key_b64}" for addr in listen
    ]
    (ssh_dir / "known_hosts").write_text("\n".join(known) + "\n")

    sock = _socket_path(state_dir)
    with contextlib.suppress(FileNotFoundError):
        sock.unlink()
    sshd_pidfile = ssh_dir / "sshd.pid"
    with contextlib.suppress(FileNotFoundError):
        sshd_pidfile.unlink()
    sshd_log = ssh_dir / "sshd.log"
    config = [
        f"Port {port}",
        *(f"ListenAddress {addr}" for addr in listen),
        f"HostKey {ssh_dir / 'host_ed25519'}",
        f"PidFile {sshd_pidfile}",
        f"AuthorizedKeysFile {ssh_dir / 'authorized_keys'}",
        "StrictModes no",
        "PermitRootLogin prohibit-password",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "UsePAM no",
        "X11Forwarding no",
        "AllowTcpForwarding no",
        f"Subsystem netconf {NETCONF_SUBSYSTEM} --ncxserver-sockname={port}@{sock}",
    ]
    sshd_config = ssh_dir / "sshd_config"
    sshd_config.write_text("\n".join(config) + "\n")

    netconfd_log = state_dir / "netconfd.log"
    env_args = [f"HOME={home}", f"PATH={bin_dir}:{os.environ.get('PATH', '/usr/sbin:/usr/bin:/sbin:/bin')}"]
    if interface_prefix:
        env_args.append(f"INTERFACE_NAME_PREFIX={interface_prefix}")
    netconfd_cmd = [
        "env", *env_args, NETCONFD, "--module=ietf-interfaces", "--no-startup", "--superuser=root",
        f"--ncxserver-sockname={sock}", f"--log={netconfd_log}", "--log-level=info",
    ]  # fmt: skip
    # A detached shell backgrounds netconfd (it stays in the foreground otherwise) and prints its PID, so
    # the process is not our child and survives us like sshd does; the lab records the PID.
    launcher = 'cd "$1" && shift && "$@" </dev/null >>"$LOG" 2>&1 & echo $!'
    started: list[AgentProcess] = []
    try:
        out = subprocess.run(
            ["ip", "netns", "exec", netns, "sh", "-c", launcher, "sh", str(state_dir), *netconfd_cmd],
            capture_output=True,
            text=True,
            timeout=10,
            env={**os.environ, "LOG": str(state_dir / "netconfd.stdout")},
            check=False,
        )
        if out.returncode != 0 or not out.stdout.strip().isdigit():
            raise AgentStartError(f"netconfd did not start: {out.stderr.strip()}")
        netconfd = AgentProcess(
            type="netconfd",
            pid=int(out.stdout.strip()),
            netns=netns,
            log=str(netconfd_log),
            extra={"socket": str(sock), "cwd": str(state_dir), "home": str(home)},
        )
        started.append(netconfd)
        _run(["ip", "netns", "exec", netns, SSHD, "-f", str(sshd_config), "-E", str(sshd_log)])
        sshd_pid = read_pidfile(sshd_pidfile, timeout=5.0)
        started.append(
            AgentProcess(
                type="sshd",
                pid=sshd_pid,
                netns=netns,
                address=listen[0],
                port=port,
                log=str(sshd_log),
                extra={
                    "host_key": f"{key_type} {key_b64}",
                    "known_hosts": str(ssh_dir / "known_hosts"),
                    "config": str(sshd_config),
                },
            )
        )
        deadline = time.monotonic() + timeout_s
        reason: str | None = "not probed"
        while time.monotonic() < deadline:
            if not pid_alive(netconfd.pid):
                raise AgentStartError(f"netconfd exited during start-up; log tail:\n{log_tail(netconfd_log)}")
            reason = _probe_hello(netns, ssh_dir, listen[0], port, timeout=max(1.0, deadline - time.monotonic()))
            if reason is None:
                return [started[1], started[0]]
            time.sleep(0.1)
        raise AgentStartError(
            f"no NETCONF hello from {listen[0]}:{port} in {netns} within {timeout_s} s ({reason}); "
            f"sshd log:\n{log_tail(sshd_log)}\nnetconfd log:\n{log_tail(netconfd_log)}"
        )
    except BaseException:
        for agent in started:
            stop_pid(agent.pid)
        raise


def stop_netconf(agents: list[AgentProcess], timeout: float = 5.0) -> None:
    """Stop what :func:`start_netconf` started (by recorded PID, both at once) and remove a short socket folder.

    Equivalent to :func:`~interlude.lab.agents.base.stop_pid` per agent, but it counts an exited daemon that
    PID 1 has not reaped yet as stopped, which saves seconds per lab teardown on this box.
    """
    for agent in agents:
        with contextlib.suppress(ProcessLookupError):
            os.kill(agent.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(pid_alive(a.pid) for a in agents):
        time.sleep(0.02)
    for agent in agents:
        if pid_alive(agent.pid):
            stop_pid(agent.pid, timeout=1.0)
    for agent in agents:
        sock = agent.extra.get("socket")
        if agent.type == "netconfd" and isinstance(sock, str):
            path = Path(sock)
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            if path.parent.name.startswith("iltnc-"):
                shutil.rmtree(path.parent, ignore_errors=True)
