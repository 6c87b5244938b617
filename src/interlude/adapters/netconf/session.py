"""One NETCONF session over SSH (ncclient), driven from asyncio, with every library error mapped once.

ncclient is synchronous and thread-based, its API is dynamic (``Manager.__getattr__``) and untyped. This module
is the only place that touches it: each :class:`NetconfSession` owns a single-thread executor, so RPCs of one
session are serialised in one worker thread and never block the event loop; callers get typed values (lxml
elements, strings) and errors from :mod:`interlude.errors` only.

Timing: ncclient's transport thread polls its send queue every ``ncclient.transport.session.TICK`` seconds
(0.1 by default), which adds ~100 ms to *every* RPC (LAB-RECIPES.md section 3: edit-config 100 ms -> 2.2 ms).
:func:`tune_ncclient` lowers it process-wide to :data:`TICK_S` when the first session is created. The cost is a
``select()`` wake-up per TICK per open session in an otherwise idle thread.

Secrets: passwords and key material come from the topology's secret references, are handed to paramiko and
never formatted into a message or a log line (``ConnectParams.__repr__`` hides them).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import ncclient.transport.parser as nc_parser
import ncclient.transport.session as nc_session
from lxml import etree
from ncclient import transport
from ncclient.manager import Manager, make_device_handler
from ncclient.operations.errors import MissingCapabilityError, OperationError, TimeoutExpiredError
from ncclient.operations.rpc import RaiseMode, RPCError
from ncclient.transport.errors import AuthenticationError, SessionCloseError, SSHUnknownHostError, TransportError

from interlude.errors import (
    AdapterError,
    DeviceAuthError,
    DeviceConnectionError,
    DeviceOperationError,
    DeviceTimeoutError,
)

TICK_S = 0.002
_tuned = threading.Lock()
_TUNED = False

T = TypeVar("T")

BASE_NS = "urn:ietf:params:xml:ns:netconf:base:1.0"
CAP_CANDIDATE = "urn:ietf:params:netconf:capability:candidate:1.0"
CAP_WRITABLE_RUNNING = "urn:ietf:params:netconf:capability:writable-running:1.0"
CAP_VALIDATE = ("urn:ietf:params:netconf:capability:validate:1.0", "urn:ietf:params:netconf:capability:validate:1.1")
CAP_CONFIRMED_10 = "urn:ietf:params:netconf:capability:confirmed-commit:1.0"
CAP_CONFIRMED_11 = "urn:ietf:params:netconf:capability:confirmed-commit:1.1"
CAP_ROLLBACK_ON_ERROR = "urn:ietf:params:netconf:capability:rollback-on-error:1.0"
CAP_NOTIFICATION = "urn:ietf:params:netconf:capability:notification:1.0"


def tune_ncclient() -> None:
    """Lower ncclient's transport TICK once per process (see the module docstring)."""
    global _TUNED
    with _tuned:
        if _TUNED:
            return
        nc_session.TICK = TICK_S
        nc_parser.TICK = TICK_S
        _TUNED = True


class HostKeyError(DeviceConnectionError):
    """The device's SSH host key is not the one we trust (unknown in known_hosts, or not the pinned key)."""


class NetconfRpcError(DeviceOperationError):
    """An ``<rpc-error>`` from the device, with its RFC 6241 fields (``tag`` e.g. ``invalid-value``)."""

    def __init__(
        self,
        message: str,
        *,
        node: str | None = None,
        tag: str | None = None,
        error_type: str | None = None,
        severity: str | None = None,
        path: str | None = None,
        rpc: str = "",
    ) -> None:
        super().__init__(message, node=node)
        self.tag = tag
        self.error_type = error_type
        self.severity = severity
        self.path = path
        self.rpc = rpc


HostKeyPolicy = Literal["known_hosts", "pinned", "insecure"]


@dataclass(frozen=True)
class ConnectParams:
    """Everything needed to open the session; secrets are excluded from ``repr``."""

    host: str
    port: int
    username: str
    hostkey_policy: HostKeyPolicy
    known_hosts: Path | None = None
    pinned_key: str | None = None
    password: str | None = field(default=None, repr=False)
    key_file: Path | None = None
    key_material: str | None = field(default=None, repr=False)
    connect_timeout_s: float = 10.0
    rpc_timeout_s: float = 10.0


def _pinned_b64(pinned: str) -> str:
    """Accept ``ssh-ed25519 AAAA... [comment]`` or the bare base64 blob."""
    parts = pinned.split()
    return parts[1] if len(parts) >= 2 else parts[0]


def map_exception(exc: BaseException, node: str, what: str) -> AdapterError:
    """Translate an ncclient/paramiko/socket error into the interlude error tree (once, here)."""
    if isinstance(exc, AdapterError):
        return exc
    if isinstance(exc, RPCError):
        tag = exc.tag
        message = (exc.message or "").strip() or str(exc) or tag or "rpc-error"
        path = (exc.path or "").strip() or None
        info = f" at {path}" if path else ""
        return NetconfRpcError(
            f"{what}: device refused ({tag}{info}): {message}",
            node=node,
            tag=tag,
            error_type=exc.type,
            severity=exc.severity,
            path=path,
            rpc=what,
        )
    if isinstance(exc, TimeoutExpiredError):
        return DeviceTimeoutError(f"{what}: no reply in time ({exc})", node=node)
    if isinstance(exc, SSHUnknownHostError):
        return HostKeyError(
            f"{what}: host key of {exc.host} (fingerprint {exc.fingerprint}) is not trusted by the hostkey_policy",
            node=node,
        )
    if isinstance(exc, AuthenticationError):
        return DeviceAuthError(f"{what}: SSH authentication refused", node=node)
    if isinstance(exc, SessionCloseError):
        return DeviceConnectionError(f"{what}: the NETCONF session was closed by the device", node=node)
    if isinstance(exc, TransportError):
        return DeviceConnectionError(f"{what}: {exc}", node=node)
    if isinstance(exc, MissingCapabilityError):
        return DeviceOperationError(f"{what}: the device lacks a capability ({exc})", node=node)
    if isinstance(exc, OperationError):
        return DeviceOperationError(f"{what}: {exc}", node=node)
    if isinstance(exc, socket.timeout | TimeoutError):
        return DeviceTimeoutError(f"{what}: timed out", node=node)
    if isinstance(exc, OSError):
        return DeviceConnectionError(f"{what}: {exc.strerror or exc}", node=node)
    return DeviceOperationError(f"{what}: unexpected {type(exc).__name__}: {exc}", node=node)


class NetconfSession:
    """A reconnecting NETCONF session whose RPCs run in one dedicated worker thread."""

    def __init__(self, params: ConnectParams, node: str, *, purpose: str = "rpc") -> None:
        tune_ncclient()
        self.params = params
        self.node = node
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"netconf-{node}-{purpose}")
        self._manager: Any = None
        self.capabilities: frozenset[str] = frozenset()
        self.session_id: str | None = None
        self.closed = False

    # Lifecycle --------------------------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """Whether the underlying SSH/NETCONF session is up (as far as ncclient knows)."""
        return self._manager is not None and bool(self._manager.connected)

    def _connect_sync(self) -> None:
        p = self.params
        self._close_sync()
        handler = make_device_handler({"name": "default"}, None)
        session = transport.SSHSession(handler)
        if p.hostkey_policy == "known_hosts" and p.known_hosts is not None:
            session.load_known_hosts(str(p.known_hosts))
        temp_dir: str | None = None
        key_filename: str | None = str(p.key_file) if p.key_file is not None else None
        try:
            if p.key_material is not None:
                temp_dir = tempfile.mkdtemp(prefix="interlude-nc-")
                key_path = Path(temp_dir) / "key"
                fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w") as fh:
                    fh.write(p.key_material.rstrip("\n") + "\n")
                key_filename = str(key_path)
            session.connect(
                host=p.host,
                port=p.port,
                timeout=p.connect_timeout_s,
                username=p.username,
                password=p.password,
                key_filename=key_filename,
                allow_agent=False,
                look_for_keys=False,
                hostkey_verify=p.hostkey_policy != "insecure",
                hostkey_b64=_pinned_b64(p.pinned_key) if p.hostkey_policy == "pinned" and p.pinned_key else None,
                unknown_host_cb=lambda _host, _fingerprint: False,
            )
        except BaseException:
            with contextlib.suppress(Exception):
                if session.transport:
                    session.close()
            raise
        finally:
            if temp_dir is not None:
                with contextlib.suppress(OSError):
                    (Path(temp_dir) / "key").unlink()
                    os.rmdir(temp_dir)
        manager = Manager(session, handler, timeout=p.rpc_timeout_s, raise_mode=RaiseMode.ERRORS)
        self._manager = manager
        self.capabilities = frozenset(str(c) for c in manager.server_capabilities)
        self.session_id = str(manager.session_id) if manager.session_id is not None else None

    def _close_sync(self) -> None:
        manager, self._manager = self._manager, None
        if manager is None:
            return
        with contextlib.suppress(Exception):
            if manager.connected:
                manager.close_session()
        with contextlib.suppress(Exception):
            manager._session.close()

    async def connect(self) -> None:
        """Open (or re-open) the session; mapped errors on failure."""
        await self._run(self._connect_sync, "connect", timeout=self.params.connect_timeout_s * 2 + 5)

    async def close(self) -> None:
        """Close the session and stop the worker thread. Idempotent."""
        if self.closed:
            return
        self.closed = True
        loop = asyncio.get_running_loop()
        with contextlib.suppress(Exception):
            await loop.run_in_executor(self._executor, self._close_sync)
        self._executor.shutdown(wait=False, cancel_futures=True)

    # Running calls ------------------------------------------------------------------------------------------

    async def _run(self, fn: Callable[[], T], what: str, timeout: float | None = None) -> T:
        loop = asyncio.get_running_loop()
        limit = timeout if timeout is not None else self.params.rpc_timeout_s + 5
        try:
            async with asyncio.timeout(limit):  # cheaper than wait_for (no extra task per RPC)
                return await loop.run_in_executor(self._executor, fn)
        except TimeoutError as exc:
            raise DeviceTimeoutError(f"{what}: no reply within {limit:.1f} s", node=self.node) from exc
        except RuntimeError as exc:
            if "shutdown" in str(exc):
                raise DeviceConnectionError(f"{what}: the session is closed", node=self.node) from exc
            raise map_exception(exc, self.node, what) from exc
        except Exception as exc:
            raise map_exception(exc, self.node, what) from exc

    async def call(self, what: str, fn: Callable[[Any], T], *, idempotent: bool = False) -> T:
        """Run ``fn(manager)`` in the session thread, connecting first if needed.

        A dropped session is re-opened before the call; a read (``idempotent``) that fails because the session
        dropped under it is retried once on a fresh session. Writes are never retried blindly: the caller's
        transaction logic decides (a confirmed commit rolls back by itself if we vanish).
        """

        def run() -> T:
            if self._manager is None or not self._manager.connected:
                self._connect_sync()
            return fn(self._manager)

        try:
            return await self._run(run, what)
        except DeviceConnectionError as exc:
            if not idempotent or isinstance(exc, DeviceAuthError | HostKeyError):
                raise
            return await self._run(run, what)

    # Typed RPC helpers --------------------------------------------------------------------------------------

    async def get(self, subtree: str, *, what: str = "get") -> etree._Element:
        """``<get>`` with a subtree filter; returns the ``<data>`` element."""
        return await self.call(what, lambda m: m.get(filter=("subtree", subtree)).data_ele, idempotent=True)

    async def get_config(self, source: str, subtree: str, *, what: str = "get-config") -> etree._Element:
        """``<get-config>`` with a subtree filter; returns the ``<data>`` element."""
        return await self.call(
            what, lambda m: m.get_config(source=source, filter=("subtree", subtree)).data_ele, idempotent=True
        )

    async def edit_config(self, target: str, config: str, *, error_option: str | None = None) -> None:
        """``<edit-config>`` (``config`` is a ``<config>`` element as text)."""
        await self.call(
            f"edit-config {target}",
            lambda m: m.edit_config(target=target, config=config, error_option=error_option),
        )

    async def validate(self, source: str = "candidate") -> None:
        """``<validate>``."""
        await self.call("validate", lambda m: m.validate(source=source))

    async def commit(self, *, confirmed: bool = False, timeout_s: int | None = None) -> None:
        """``<commit>``, optionally confirmed (the device rolls back unless confirmed in ``timeout_s``)."""
        if confirmed:
            await self.call("commit (confirmed)", lambda m: m.commit(confirmed=True, timeout=str(timeout_s or 600)))
        else:
            await self.call("commit", lambda m: m.commit())

    async def cancel_commit(self) -> None:
        """``<cancel-commit>`` (confirmed-commit:1.1): roll running back now."""
        await self.call("cancel-commit", lambda m: m.cancel_commit())

    async def discard_changes(self) -> None:
        """``<discard-changes>``: reset the candidate to running."""
        await self.call("discard-changes", lambda m: m.discard_changes())

    async def lock(self, target: str) -> None:
        """``<lock>``."""
        await self.call(f"lock {target}", lambda m: m.lock(target=target))

    async def unlock(self, target: str) -> None:
        """``<unlock>``."""
        await self.call(f"unlock {target}", lambda m: m.unlock(target=target))

    async def create_subscription(self) -> None:
        """RFC 5277 ``<create-subscription>`` on the default NETCONF stream."""
        await self.call("create-subscription", lambda m: m.create_subscription())

    async def take_notification(self, timeout_s: float) -> etree._Element | None:
        """The next notification element, or None after ``timeout_s`` (only on a subscription session)."""

        def take(m: Any) -> etree._Element | None:
            notification = m.take_notification(block=True, timeout=timeout_s)
            if notification is None:
                if not m.connected:
                    raise DeviceConnectionError("notification session closed", node=self.node)
                return None
            element: etree._Element = notification.notification_ele
            return element

        return await self._run(lambda: take(self._manager), "take-notification", timeout=timeout_s + 10)
