"""Start net-snmp's ``snmpd`` inside a lab namespace (the real SNMP agent behind ``snmp`` lab nodes).

The interface the lab supervisor calls::

    start_snmpd(netns: str, state_dir: Path, config: SnmpdConfig) -> AgentProcess

It returns only once the agent answers a GET, with the daemon's own PID (read from its pid file: snmpd
daemonizes, so the PID of ``ip netns exec`` is useless). The lab records that PID and stops it with
:func:`interlude.lab.agents.base.stop_pid`.

Why the generated configuration looks the way it does (each line was tried on this box, LAB-RECIPES §2):

- ``-M /dev/null -m ''``: no IF-MIB text is installed; without this snmpd prints hundreds of "Cannot find
  module" lines. Every OID in the file is therefore numeric.
- Listen addresses go into ``agentAddress`` only; giving them on the command line as well makes snmpd exit
  with "Error opening specified endpoint".
- ``persistentDir`` lives in the lab's state folder, so v3 engine boots and USM keys never touch
  ``/var/lib/snmp`` and two labs never share engine state.
- Link notifications: ``linkUpDownNotifications yes`` polls the ifTable every 60 s and names objects that
  cannot be resolved without MIB files, so we write its documented expansion with numeric OIDs and a
  1-second monitor period (``monitorInterval``), which makes a linkDown trap follow an admin down within
  about a second plus the agent's 3-second ifTable cache. The monitors run internal SNMPv3 queries as the
  ``iquerySecName`` user, a noAuth user that may read the ifTable and nothing else.
- Traps go to ``trap_target`` as SNMPv2c TRAP2s (``trap2sink``), or as SNMPv3 authPriv traps when
  ``trap_v3_user`` names one of the configured users (``trapsess -v3``).
"""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from interlude.errors import ConfigError
from interlude.lab.agents.base import AgentProcess, AgentStartError, log_tail, pid_alive, read_pidfile, stop_pid

SNMPD_BINARY = "/usr/sbin/snmpd"

_AUTH_PROTOCOLS = ("MD5", "SHA", "SHA-224", "SHA-256", "SHA-384", "SHA-512")
_PRIV_PROTOCOLS = ("DES", "AES", "AES-192", "AES-256")

_IF_TABLE = ".1.3.6.1.2.1.2.2"
_IF_INDEX = ".1.3.6.1.2.1.2.2.1.1"
_IF_ADMIN = ".1.3.6.1.2.1.2.2.1.7"
_IF_OPER = ".1.3.6.1.2.1.2.2.1.8"
_LINK_DOWN = ".1.3.6.1.6.3.1.1.5.3"
_LINK_UP = ".1.3.6.1.6.3.1.1.5.4"
_SYS_NAME_0 = "1.3.6.1.2.1.1.5.0"


@dataclass(frozen=True)
class SnmpV3User:
    """A USM user the agent accepts (authPriv). Keys must be at least 8 characters (RFC 3414)."""

    name: str
    auth_key: str
    priv_key: str
    auth_protocol: str = "SHA-256"
    priv_protocol: str = "AES"
    writable: bool = True

    def __repr__(self) -> str:
        """Never show the keys (AgentProcess/state dumps and test failures print dataclasses)."""
        return f"SnmpV3User(name={self.name!r}, auth={self.auth_protocol}, priv={self.priv_protocol})"


@dataclass(frozen=True)
class SnmpdConfig:
    """What the lab decides for one snmpd; everything else in snmpd.conf is derived from it.

    ``listen`` entries are ``HOST``, ``HOST:PORT`` or net-snmp transport specs (``udp:HOST:PORT``);
    ``trap_target`` is ``HOST`` or ``HOST:PORT`` (port 162 by default).
    """

    sys_name: str
    listen: list[str]
    ro_community: str | None = "public"
    rw_community: str | None = "private"
    v3_users: list[SnmpV3User] = field(default_factory=list)
    trap_target: str | None = None
    trap_community: str = "public"
    trap_v3_user: str | None = None
    monitor_interval_s: int = 1
    notification_type: Literal["trap", "inform"] = "trap"

    def __repr__(self) -> str:
        """Communities are secrets too."""
        return f"SnmpdConfig(sys_name={self.sys_name!r}, listen={self.listen!r}, trap_target={self.trap_target!r})"


def _transport(spec: str, default_port: int) -> str:
    """``udp:HOST:PORT`` for a listen or trap address (IPv6 hosts in brackets become ``udp6:[...]``)."""
    if spec.startswith(("udp:", "udp6:", "tcp:", "tcp6:")):
        return spec
    if spec.startswith("["):
        host, _, port = spec[1:].partition("]")
        return f"udp6:[{host}]:{port.lstrip(':') or default_port}"
    host, sep, port = spec.rpartition(":")
    if not sep:
        host, port = spec, str(default_port)
    return f"udp:{host}:{port}"


def _quote(value: str) -> str:
    """A quoted token (createUser strips the quotes; other directives would keep them, so they use _token)."""
    if any(c in value for c in '"\n\r'):
        raise ConfigError("SNMP communities and keys must not contain quotes or newlines")
    return f'"{value}"'


def _token(value: str) -> str:
    """A bare token: ``trap2sink "public"`` would send the quotes as part of the community."""
    if not value or any(c.isspace() or c in "\"'#" for c in value):
        raise ConfigError("SNMP communities and keys used by snmpd must not contain spaces, quotes or '#'")
    return value


def _check_config(config: SnmpdConfig) -> None:
    if not config.listen:
        raise ConfigError("snmpd needs at least one listen address")
    for user in config.v3_users:
        if user.auth_protocol not in _AUTH_PROTOCOLS:
            raise ConfigError(f"v3 user {user.name!r}: auth protocol must be one of {_AUTH_PROTOCOLS}")
        if user.priv_protocol not in _PRIV_PROTOCOLS:
            raise ConfigError(f"v3 user {user.name!r}: privacy protocol must be one of {_PRIV_PROTOCOLS}")
        if len(user.auth_key) < 8 or len(user.priv_key) < 8:
            raise ConfigError(f"v3 user {user.name!r}: keys must be at least 8 characters (RFC 3414)")
    if config.trap_v3_user is not None and config.trap_v3_user not in {u.name for u in config.v3_users}:
        raise ConfigError(f"trap_v3_user {config.trap_v3_user!r} is not one of the configured v3 users")


def render_snmpd_conf(config: SnmpdConfig, persistent_dir: Path) -> str:
    """The snmpd.conf text for ``config`` (pure, so unit tests can read it without root)."""
    _check_config(config)
    lines = [
        "# generated by interlude.lab.agents.snmpd; do not edit (the lab rewrites it)",
        f"agentAddress {','.join(_transport(a, 161) for a in config.listen)}",
        f"[snmp] persistentDir {persistent_dir}",
        f"sysName {config.sys_name}",
        "sysLocation interlude lab",
        "sysContact interlude",
    ]
    if config.ro_community:
        lines.append(f"rocommunity {_token(config.ro_community)} default")
    if config.rw_community:
        lines.append(f"rwcommunity {_token(config.rw_community)} default")
    for user in config.v3_users:
        lines.append(
            f"createUser {user.name} {user.auth_protocol} {_quote(user.auth_key)} "
            f"{user.priv_protocol} {_quote(user.priv_key)}"
        )
        lines.append(f"{'rwuser' if user.writable else 'rouser'} {user.name} priv")
    if config.trap_target:
        target = _transport(config.trap_target, 162)
        inform = config.notification_type == "inform"
        if config.trap_v3_user is not None:
            user = next(u for u in config.v3_users if u.name == config.trap_v3_user)
            lines.append(
                f"trapsess -v3 {'-Ci ' if inform else ''}-l authPriv -u {user.name} -a {user.auth_protocol} "
                f"-A {_token(user.auth_key)} -x {user.priv_protocol} -X {_token(user.priv_key)} {target}"
            )
        elif inform:
            lines.append(f"informsink {target} {_token(config.trap_community)}")
        else:
            lines.append(f"trap2sink {target} {_token(config.trap_community)}")
        # linkUpDownNotifications, expanded with numeric OIDs and a short period (see the module docstring).
        lines += [
            "createUser _interlude_iquery",
            f"rouser _interlude_iquery noauth {_IF_TABLE}",  # the monitors read only ifTable
            "iquerySecName _interlude_iquery",
            f"notificationEvent linkUpTrap {_LINK_UP} {_IF_INDEX} {_IF_ADMIN} {_IF_OPER}",
            f"notificationEvent linkDownTrap {_LINK_DOWN} {_IF_INDEX} {_IF_ADMIN} {_IF_OPER}",
            f'monitor -r {config.monitor_interval_s} -e linkUpTrap "linkUp" {_IF_OPER} != 2',
            f'monitor -r {config.monitor_interval_s} -e linkDownTrap "linkDown" {_IF_OPER} == 2',
        ]
    return "\n".join(lines) + "\n"


def _probe_args(config: SnmpdConfig) -> list[str]:
    """``snmpget`` arguments that should succeed against the agent once it is up."""
    listen = _transport(config.listen[0], 161)
    if listen.startswith("udp:0.0.0.0:"):
        listen = "udp:127.0.0.1:" + listen.rsplit(":", 1)[1]
    base = ["snmpget", "-M", "/dev/null", "-m", "", "-On", "-r", "0", "-t", "0.3"]
    if config.ro_community or config.rw_community:
        community = config.ro_community or config.rw_community
        assert community is not None
        return [*base, "-v2c", "-c", community, listen, _SYS_NAME_0]
    if config.v3_users:
        u = config.v3_users[0]
        return [
            *base, "-v3", "-l", "authPriv", "-u", u.name, "-a", u.auth_protocol, "-A", u.auth_key,
            "-x", u.priv_protocol, "-X", u.priv_key, listen, _SYS_NAME_0,
        ]  # fmt: skip
    raise ConfigError("snmpd needs a community or a v3 user (nothing could query it)")


def start_snmpd(netns: str, state_dir: Path, config: SnmpdConfig, *, timeout_s: float = 10.0) -> AgentProcess:
    """Write snmpd.conf under ``state_dir``, start snmpd in ``netns`` and wait until it answers a GET.

    Files: ``state_dir/snmpd.conf`` (mode 0600: it holds communities and keys), ``snmpd.pid``, ``snmpd.log``
    and ``snmp-persist/``. Raises :class:`AgentStartError` with the log tail when the agent exits or stays
    silent; in that case the daemon (if it got as far as writing its pid file) is stopped again.
    """
    binary = shutil.which("snmpd") or SNMPD_BINARY
    if not Path(binary).exists():
        raise AgentStartError("snmpd is not installed (Debian package 'snmpd')")
    state_dir.mkdir(parents=True, exist_ok=True)
    persist = state_dir / "snmp-persist"
    persist.mkdir(exist_ok=True)
    conf = state_dir / "snmpd.conf"
    pidfile = state_dir / "snmpd.pid"
    log = state_dir / "snmpd.log"
    conf.touch(mode=0o600)
    conf.chmod(0o600)
    conf.write_text(render_snmpd_conf(config, persist))
    pidfile.unlink(missing_ok=True)
    probe = _probe_args(config)
    cmd = [
        "ip", "netns", "exec", netns, binary, "-C", "-c", str(conf), "-M", "/dev/null", "-m", "",
        "-p", str(pidfile), "-Lf", str(log),
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    if proc.returncode != 0:
        raise AgentStartError(
            f"snmpd in {netns} failed to start ({proc.returncode}): {proc.stderr.strip()}; log:\n{log_tail(log)}"
        )
    try:
        pid = read_pidfile(pidfile, timeout=timeout_s)
    except TimeoutError:
        raise AgentStartError(f"snmpd in {netns} wrote no pid file; log:\n{log_tail(log)}") from None
    deadline = time.monotonic() + timeout_s
    while True:
        if not pid_alive(pid):
            raise AgentStartError(f"snmpd in {netns} exited; log:\n{log_tail(log)}")
        answer = subprocess.run(["ip", "netns", "exec", netns, *probe], capture_output=True, text=True, timeout=5)
        if answer.returncode == 0:
            break
        if time.monotonic() > deadline:
            stop_pid(pid)
            raise AgentStartError(f"snmpd in {netns} does not answer a GET; log:\n{log_tail(log)}")
        time.sleep(0.05)
    first = _transport(config.listen[0], 161).split(":")
    return AgentProcess(
        type="snmpd",
        pid=pid,
        netns=netns,
        address=first[1] if len(first) == 3 else None,
        port=int(first[-1]) if first[-1].isdigit() else 161,
        log=str(log),
        extra={"config": str(conf), "sys_name": config.sys_name},
    )
