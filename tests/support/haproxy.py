"""Debian's haproxy in front of partner processes, as a deployment would run it (see docs/scale.md).

:func:`haproxy_front` writes its own configuration into a temporary folder, binds a free loopback port,
health-checks every backend with an HTTP GET (every ``CHECK_INTERVAL_MS``; two failures take a backend out,
one success puts it back) and is stopped by its PID. Without the binary the test skips (fails under
INTERLUDE_REQUIRE_LAB=1, as CI runs).
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from tests.support.lab import lab_unavailable
from tests.support.processes import stop_process

CHECK_INTERVAL_MS = 200


def free_port() -> int:
    """A loopback TCP port nobody listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def haproxy_config(
    port: int, backends: Sequence[int], check_path: str, check_headers: Mapping[str, str],
    check_interval_ms: int = CHECK_INTERVAL_MS,
) -> str:  # fmt: skip
    """Round robin over ``backends`` (loopback ports); a failed connection is retried on another backend."""
    headers = "".join(f" hdr {name} {value}" for name, value in check_headers.items())
    servers = "\n".join(f"    server interlude-p{n} 127.0.0.1:{p} check" for n, p in enumerate(backends))
    return f"""global
    maxconn 512

defaults
    mode http
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    retries 3
    option redispatch

frontend interlude-front
    bind 127.0.0.1:{port}
    default_backend interlude-partners

backend interlude-partners
    balance roundrobin
    option httpchk
    http-check send meth GET uri {check_path}{headers}
    http-check expect status 200
    default-server inter {check_interval_ms}ms fall 2 rise 1
{servers}
"""


@contextmanager
def haproxy_front(
    folder: Path, backends: Sequence[int], check_path: str, check_headers: Mapping[str, str] | None = None,
    check_interval_ms: int = CHECK_INTERVAL_MS,
) -> Iterator[str]:  # fmt: skip
    """haproxy in front of ``backends``; yields its base URL, stops it (by PID) on exit.

    A benchmark loading every backend to the full checks less often (``check_interval_ms``): a check answered
    late under load would take a live backend out.
    """
    binary = shutil.which("haproxy") or ("/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists() else None)
    if binary is None:
        lab_unavailable("the load-balancer tests need haproxy (Debian package haproxy)")
    port = free_port()
    config = folder / "interlude-haproxy.cfg"
    config.write_text(haproxy_config(port, backends, check_path, check_headers or {}, check_interval_ms))
    subprocess.run([binary, "-c", "-q", "-f", str(config)], check=True)
    proc = subprocess.Popen([binary, "-db", "-f", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(proc, signal.SIGTERM, 10)
