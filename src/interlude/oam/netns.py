"""Sockets opened inside a named network namespace, without moving the process there.

``setns(2)`` moves only the calling thread, and a socket keeps the namespace it was created in: so a
short-lived thread enters the namespace, creates the socket and ends, and the socket is then used from any
thread of the process. Both transports (raw CFM sockets, UDP/ICMP measurement sockets) open theirs this way.
"""

from __future__ import annotations

import ctypes
import functools
import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path

from interlude.errors import OamError

CLONE_NEWNET = 0x40000000
NETNS_DIR = Path("/var/run/netns")


@functools.cache
def libc() -> ctypes.CDLL:
    """The process's own libc (``find_library`` would spawn ldconfig on every call: tens of ms)."""
    return ctypes.CDLL(None, use_errno=True)


def enter_netns(netns: str) -> None:
    """Move the *calling thread* into the named network namespace (``/var/run/netns/NAME``)."""
    path = NETNS_DIR / netns
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc().setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns({path}): {os.strerror(err)}")
    finally:
        os.close(fd)


def in_netns(netns: str | None, make: Callable[[], socket.socket], what: str) -> socket.socket:
    """Call ``make`` in a fresh thread inside ``netns`` and return its socket; :class:`OamError` on failure."""
    box: dict[str, object] = {}

    def work() -> None:
        try:
            if netns:
                enter_netns(netns)
            box["sock"] = make()
        except (OSError, ValueError) as exc:
            box["error"] = exc

    thread = threading.Thread(target=work, name=f"oam-netns-{netns or 'root'}")
    thread.start()
    thread.join()
    if "error" in box:
        where = f" in namespace {netns!r}" if netns else ""
        raise OamError(f"cannot open {what}{where}: {box['error']}") from box["error"]  # type: ignore[misc]
    sock = box["sock"]
    assert isinstance(sock, socket.socket)
    return sock
