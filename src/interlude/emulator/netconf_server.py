"""The emulator's NETCONF face: an SSH server (asyncssh) serving the in-memory :class:`EmulatedNetwork`.

The same device model the ``emulated`` adapter drives is reachable over NETCONF, so the ``netconf`` adapter (with
the ``ietf-interfaces`` profile) runs offline against it, and a partner can point their own NETCONF tooling at
an emulated network.

**One server, one port, node by SSH username**: the SSH username selects the node (``ssh pe1@127.0.0.1 -p PORT
-s netconf``). One port per node would need N listeners and N host keys for no gain; usernames keep a topology's
node settings identical except for ``username``.

What it speaks:

* RFC 6242 framing: the ``<hello>`` in 1.0 end-of-message framing, then chunked 1.1 framing when both sides
  advertise ``base:1.1`` (1.0 otherwise);
* capabilities ``base:1.0``, ``base:1.1`` and the ietf-interfaces module, plus either (``datastore="candidate"``,
  the default) ``:candidate``, ``:validate:1.1``, ``:confirmed-commit:1.1``, or (``datastore="running"``)
  ``:writable-running`` and ``:rollback-on-error``; no notifications (the adapter polls). ``<get>`` serves state
  both as ``/interfaces-state`` and NMDA-style inside ``/interfaces``;
* ``<get>``, ``<get-config>`` (running, candidate) with RFC 6241 subtree filtering; ``<edit-config>`` on the
  writable datastore (``merge``/``replace``/``create``/``delete``/``remove`` on ``/interfaces/interface`` entries
  with ``name``, ``type``, ``enabled``, ``description``); ``<validate>``, ``<commit>`` (with ``<confirmed/>``,
  ``<confirm-timeout>``; a confirmed commit rolls back by itself), ``<cancel-commit>``, ``<discard-changes>``,
  ``<lock>``/``<unlock>``, ``<close-session>``.

Config model: running ``enabled`` *is* the port's admin state in the network model; a commit applies the
candidate with :meth:`EmulatedNetwork.set_admin`, so oper state, the link peer's carrier and events follow as in
the emulator. Bad values give ``invalid-value``, unknown leaves ``unknown-element``, unknown interfaces
``data-missing``.

Lifecycle for the emulator runtime: ``server = NetconfEmulatorServer(network, port=0, password=...)``,
``await server.start()`` (``server.port``, ``server.host_key`` for pinning, ``server.known_hosts_line()``),
``await server.stop()``; or ``async with``. Without ``password`` and ``authorized_keys`` it accepts any client
(node name as username) and therefore refuses to listen on anything but loopback.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import ipaddress
import itertools
import re
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal

import asyncssh
from lxml import etree

from interlude.adapters.emulated.network import EmulatedNetwork
from interlude.domain.southbound import AdminState, OperState
from interlude.errors import ConfigError

NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
IF = "urn:ietf:params:xml:ns:yang:ietf-interfaces"
IANAIFT = "urn:ietf:params:xml:ns:yang:iana-if-type"
EOM = b"]]>]]>"
BASE_CAPABILITIES = (
    "urn:ietf:params:netconf:base:1.0",
    "urn:ietf:params:netconf:base:1.1",
    f"{IF}?module=ietf-interfaces&revision=2014-05-08",
    f"{IANAIFT}?module=iana-if-type&revision=2014-05-08",
)
CANDIDATE_CAPABILITIES = (
    "urn:ietf:params:netconf:capability:candidate:1.0",
    "urn:ietf:params:netconf:capability:validate:1.1",
    "urn:ietf:params:netconf:capability:confirmed-commit:1.1",
)
RUNNING_CAPABILITIES = (
    "urn:ietf:params:netconf:capability:writable-running:1.0",
    "urn:ietf:params:netconf:capability:rollback-on-error:1.0",
)
_CHUNK = re.compile(rb"\n#(\d+)\n")
_MAX_MESSAGE = 16 * 1024 * 1024


def _q(ns: str, tag: str) -> str:
    return f"{{{ns}}}{tag}"


class RpcFailure(Exception):
    """An rpc-error to send back (RFC 6241 section 4.3)."""

    def __init__(self, tag: str, message: str, *, error_type: str = "application", path: str | None = None) -> None:
        super().__init__(message)
        self.tag = tag
        self.error_type = error_type
        self.path = path


# Subtree filtering (RFC 6241 section 6) ------------------------------------------------------------------------


def _child(parent: etree._Element, tag: str) -> etree._Element | None:
    """A NETCONF-namespace child, also found without a namespace.

    ncclient sends a ``<config>`` body given as text without ``xmlns`` as it is.
    """
    found = parent.find(_q(NC, tag))
    return found if found is not None else parent.find(tag)


def _child_text(parent: etree._Element, tag: str) -> str | None:
    found = _child(parent, tag)
    return None if found is None else (found.text or "")


def _is_leaf(el: etree._Element) -> bool:
    return len(el) == 0


def _filter_node(data: etree._Element, flt: etree._Element) -> etree._Element | None:
    """Apply filter node ``flt`` to ``data`` (same qualified name); None when it does not match."""
    children = list(flt)
    if not children:
        return copy.deepcopy(data)
    content = [c for c in children if _is_leaf(c) and (c.text or "").strip()]
    for c in content:
        if not any(d.tag == c.tag and (d.text or "").strip() == (c.text or "").strip() for d in data):
            return None
    others = [c for c in children if c not in content]
    if not others:
        return copy.deepcopy(data)
    out = etree.Element(data.tag, nsmap=data.nsmap)
    out.text = data.text
    wanted_content = {c.tag for c in content}
    for d in data:
        if d.tag in wanted_content:
            out.append(copy.deepcopy(d))
            continue
        matchers = [c for c in others if c.tag == d.tag]
        for c in matchers:
            if _is_leaf(c):
                out.append(copy.deepcopy(d))
                break
            sub = _filter_node(d, c)
            if sub is not None:
                out.append(sub)
                break
    return out


def subtree_filter(data: etree._Element, flt: etree._Element | None) -> etree._Element:
    """The ``<data>`` element reduced by a ``<filter type="subtree">`` element (None: everything)."""
    if flt is None:
        return data
    out = etree.Element(_q(NC, "data"), nsmap={None: NC})
    for top in data:
        for f in flt:
            if f.tag == top.tag:
                sub = _filter_node(top, f)
                if sub is not None:
                    out.append(sub)
                break
    return out


# The server --------------------------------------------------------------------------------------------------


@dataclass
class _NodeStore:
    """Per-node datastore state beyond what the network model holds."""

    candidate: dict[str, bool] | None = None  # None: identical to running
    types: dict[str, str] = field(default_factory=dict)
    descriptions: dict[str, str] = field(default_factory=dict)
    confirm_handle: asyncio.TimerHandle | None = None
    rollback: dict[str, bool] | None = None
    lock_owner: dict[str, int] = field(default_factory=dict)


class NetconfEmulatorServer:
    """SSH + NETCONF over an :class:`EmulatedNetwork`; see the module docstring."""

    def __init__(
        self,
        network: EmulatedNetwork,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        password: str | None = None,
        authorized_keys: list[str] | None = None,
        host_key: asyncssh.SSHKey | None = None,
        datastore: Literal["candidate", "running"] = "candidate",
    ) -> None:
        if password is None and not authorized_keys:
            try:
                loopback = ipaddress.ip_address(host).is_loopback
            except ValueError:
                loopback = host == "localhost"
            if not loopback:
                raise ConfigError("the emulator's NETCONF server without credentials only listens on loopback")
        self.network = network
        self.datastore = datastore
        self.capabilities = BASE_CAPABILITIES + (
            CANDIDATE_CAPABILITIES if datastore == "candidate" else RUNNING_CAPABILITIES
        )
        self.host = host
        self._port = port
        self._password = password
        self._authorized = asyncssh.import_authorized_keys("\n".join(authorized_keys)) if authorized_keys else None
        self._key = host_key or asyncssh.generate_private_key("ssh-ed25519")
        self._server: Any = None
        self._stores: dict[str, _NodeStore] = {n: _NodeStore() for n in network.topology.nodes}
        self._session_ids = itertools.count(1)
        self._tasks: set[asyncio.Task[None]] = set()
        self._connections: set[asyncssh.SSHServerConnection] = set()

    # Lifecycle ------------------------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The TCP port listened on (the real one when started with ``port=0``)."""
        return self._port

    @property
    def host_key(self) -> str:
        """The server's public host key as ``ssh-ed25519 AAAA...`` (for ``hostkey_policy: pinned``)."""
        key_type, blob = self._key.export_public_key("openssh").decode().split()[:2]
        return f"{key_type} {blob}"

    def known_hosts_line(self) -> str:
        """An OpenSSH known_hosts line for this server (for ``hostkey_policy: known_hosts``)."""
        return f"[{self.host}]:{self.port} {self.host_key}"

    async def start(self) -> None:
        """Listen; returns once the port is bound."""
        server = self

        class _Server(asyncssh.SSHServer):
            def begin_auth(self, username: str) -> bool:
                self._username = username
                if server._password is None and server._authorized is None:
                    return username not in server._stores  # no auth for node names; others cannot log in
                return True

            def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
                self._conn = conn
                server._connections.add(conn)

            def connection_lost(self, exc: Exception | None) -> None:
                server._connections.discard(self._conn)

            def password_auth_supported(self) -> bool:
                return server._password is not None

            def validate_password(self, username: str, password: str) -> bool:
                return username in server._stores and password == server._password

            def public_key_auth_supported(self) -> bool:
                if server._authorized is not None:
                    self._conn.set_authorized_keys(server._authorized)
                    return True
                return False

        self._server = await asyncssh.create_server(
            _Server,
            self.host,
            self._port,
            server_host_keys=[self._key],
            process_factory=self._handle,
            encoding=None,
            line_editor=False,
            allow_scp=False,
            agent_forwarding=False,
            x11_forwarding=False,
        )
        self._port = int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        """Close the listener and every session; pending confirmed commits are rolled back."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for task in list(self._tasks):
            task.cancel()
        for conn in list(self._connections):
            conn.close()
            with contextlib.suppress(Exception):
                await conn.wait_closed()
        self._connections.clear()
        for node, store in self._stores.items():
            if store.confirm_handle is not None:
                store.confirm_handle.cancel()
                self._rollback(node)

    async def __aenter__(self) -> NetconfEmulatorServer:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    # Sessions ------------------------------------------------------------------------------------------------

    async def _handle(self, process: asyncssh.SSHServerProcess[bytes]) -> None:
        if process.subsystem != "netconf":
            process.stderr.write(b"only the netconf subsystem is served\n")
            process.exit(1)
            return
        node = str(process.get_extra_info("username"))
        if node not in self._stores:
            process.exit(1)
            return
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        session_id = next(self._session_ids)
        try:
            await _Session(self, node, session_id, process).run()
        except (asyncssh.Error, ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            for store in self._stores.values():
                for target, owner in list(store.lock_owner.items()):
                    if owner == session_id:
                        del store.lock_owner[target]
            if task is not None:
                self._tasks.discard(task)
            with contextlib.suppress(Exception):
                process.exit(0)

    # Datastores ----------------------------------------------------------------------------------------------

    def running(self, node: str) -> dict[str, bool]:
        """``enabled`` per interface: the network model's admin state."""
        return {name: s.admin is AdminState.UP for name, s in ((i.name, i) for i in self.network.interfaces(node))}

    def candidate(self, node: str) -> dict[str, bool]:
        """The node's candidate (a copy of running until edited)."""
        store = self._stores[node]
        return dict(store.candidate) if store.candidate is not None else self.running(node)

    def config_tree(self, node: str, values: dict[str, bool]) -> etree._Element:
        """``<data>`` with ``/interfaces`` built from ``values``."""
        store = self._stores[node]
        data = etree.Element(_q(NC, "data"), nsmap={None: NC})
        interfaces = etree.SubElement(data, _q(IF, "interfaces"), nsmap={None: IF})
        for name, enabled in values.items():
            entry = etree.SubElement(interfaces, _q(IF, "interface"))
            etree.SubElement(entry, _q(IF, "name")).text = name
            kind = etree.SubElement(entry, _q(IF, "type"), nsmap={"ianaift": IANAIFT})
            kind.text = store.types.get(name, "ianaift:ethernetCsmacd")
            if store.descriptions.get(name):
                etree.SubElement(entry, _q(IF, "description")).text = store.descriptions[name]
            etree.SubElement(entry, _q(IF, "enabled")).text = "true" if enabled else "false"
        return data

    def state_tree(self, node: str) -> etree._Element:
        """``<data>`` for ``<get>``, in both styles so either kind of profile works.

        ``/interfaces`` carries the running config plus, NMDA-style, the config-false leaves; the deprecated
        ``/interfaces-state`` carries oper state and statistics as non-NMDA agents report them.
        """
        data = self.config_tree(node, self.running(node))
        configured = {e.findtext(_q(IF, "name")): e for e in data[0]}
        state = etree.SubElement(data, _q(IF, "interfaces-state"), nsmap={None: IF})
        for iface in self.network.interfaces(node):
            counters = self.network.counters(node, iface.name)
            entry = etree.SubElement(state, _q(IF, "interface"))
            etree.SubElement(entry, _q(IF, "name")).text = iface.name
            kind = etree.SubElement(entry, _q(IF, "type"), nsmap={"ianaift": IANAIFT})
            kind.text = "ianaift:ethernetCsmacd"
            for target in (entry, configured.get(iface.name)):
                if target is None:
                    continue
                etree.SubElement(target, _q(IF, "admin-status")).text = iface.admin.value
                oper = {OperState.UP: "up", OperState.DOWN: "down"}.get(iface.oper, "unknown")
                etree.SubElement(target, _q(IF, "oper-status")).text = oper
                if iface.mac:
                    etree.SubElement(target, _q(IF, "phys-address")).text = iface.mac
                if iface.speed_bps is not None:
                    etree.SubElement(target, _q(IF, "speed")).text = str(iface.speed_bps)
                stats = etree.SubElement(target, _q(IF, "statistics"))
                for leaf, value in (
                    ("in-octets", counters.in_octets),
                    ("in-unicast-pkts", counters.in_packets),
                    ("in-discards", counters.in_discards),
                    ("in-errors", counters.in_errors),
                    ("out-octets", counters.out_octets),
                    ("out-unicast-pkts", counters.out_packets),
                    ("out-discards", counters.out_discards),
                    ("out-errors", counters.out_errors),
                ):
                    etree.SubElement(stats, _q(IF, leaf)).text = str(value)
        return data

    def edit(self, node: str, config: etree._Element, default_operation: str, target: str = "candidate") -> None:
        """Apply an edit-config ``<config>`` to the candidate or (writable-running) to running; all or nothing."""
        store = self._stores[node]
        values = self.candidate(node) if target == "candidate" else self.running(node)
        types = dict(store.types)
        descriptions = dict(store.descriptions)
        known = set(values)
        op_attr = _q(NC, "operation")
        for top in config:
            if top.tag != _q(IF, "interfaces"):
                raise RpcFailure("unknown-element", f"unsupported config node {top.tag}", path="/config")
            for entry in top:
                if entry.tag != _q(IF, "interface"):
                    raise RpcFailure("unknown-element", f"unexpected {entry.tag}", path="/interfaces")
                op = entry.get(op_attr, top.get(op_attr, default_operation))
                name_el = entry.find(_q(IF, "name"))
                if name_el is None or not (name_el.text or "").strip():
                    raise RpcFailure("missing-element", "interface entry without name", path="/interfaces/interface")
                name = (name_el.text or "").strip()
                path = f"/interfaces/interface[name='{name}']"
                if name not in known:
                    raise RpcFailure("data-missing", f"no interface {name!r} on {node}", path=path)
                if op in ("delete", "remove"):
                    values[name] = True  # no config: the YANG default (enabled true)
                    descriptions.pop(name, None)
                    continue
                if op not in ("merge", "replace", "create", "none"):
                    raise RpcFailure("bad-attribute", f"unsupported operation {op!r}", path=path)
                if op == "replace":
                    values[name] = True
                    descriptions.pop(name, None)
                for leaf in entry:
                    if not isinstance(leaf.tag, str):
                        continue
                    text = (leaf.text or "").strip()
                    if leaf.tag == _q(IF, "name"):
                        continue
                    if leaf.tag == _q(IF, "enabled"):
                        if text not in ("true", "false"):
                            raise RpcFailure("invalid-value", f"invalid boolean {text!r}", path=f"{path}/enabled")
                        values[name] = text == "true"
                    elif leaf.tag == _q(IF, "type"):
                        if not text.endswith(("ethernetCsmacd", "softwareLoopback", "l2vlan", "other")):
                            raise RpcFailure("invalid-value", f"invalid interface type {text!r}", path=f"{path}/type")
                        types[name] = text
                    elif leaf.tag == _q(IF, "description"):
                        descriptions[name] = text
                    else:
                        raise RpcFailure("unknown-element", f"unknown leaf {leaf.tag}", path=path)
        store.types = types
        store.descriptions = descriptions
        if target == "candidate":
            store.candidate = values
        else:
            self._apply(node, values)

    def commit(self, node: str, *, confirmed: bool, timeout_s: int) -> None:
        """Apply the candidate to the network; a confirmed commit schedules its own rollback."""
        store = self._stores[node]
        before = self.running(node)
        if store.confirm_handle is not None:
            store.confirm_handle.cancel()
            store.confirm_handle = None
            if not confirmed:
                store.rollback = None
        if confirmed and store.rollback is None:
            store.rollback = before
        self._apply(node, self.candidate(node))
        store.candidate = None
        if confirmed:
            loop = asyncio.get_running_loop()
            store.confirm_handle = loop.call_later(timeout_s, self._rollback, node)

    def _apply(self, node: str, values: dict[str, bool]) -> None:
        current = self.running(node)
        for name, enabled in values.items():
            if current.get(name) != enabled:
                self.network.set_admin(node, name, AdminState.UP if enabled else AdminState.DOWN)

    def _rollback(self, node: str) -> None:
        store = self._stores[node]
        store.confirm_handle = None
        if store.rollback is not None:
            self._apply(node, store.rollback)
            store.rollback = None

    def cancel_commit(self, node: str) -> None:
        """Roll a pending confirmed commit back now."""
        store = self._stores[node]
        if store.confirm_handle is None:
            raise RpcFailure("operation-failed", "no confirmed commit is pending", error_type="protocol")
        store.confirm_handle.cancel()
        self._rollback(node)

    def discard(self, node: str) -> None:
        """Reset the candidate to running."""
        self._stores[node].candidate = None

    def lock(self, node: str, target: str, session_id: int) -> None:
        """Lock a datastore for one session."""
        owner = self._stores[node].lock_owner.get(target)
        if owner is not None and owner != session_id:
            raise RpcFailure("lock-denied", f"{target} is locked by session {owner}", error_type="protocol")
        self._stores[node].lock_owner[target] = session_id

    def unlock(self, node: str, target: str, session_id: int) -> None:
        """Release a lock this session holds."""
        if self._stores[node].lock_owner.get(target) != session_id:
            raise RpcFailure("operation-failed", f"{target} is not locked by this session", error_type="protocol")
        del self._stores[node].lock_owner[target]

    def check_lock(self, node: str, target: str, session_id: int) -> None:
        """Refuse a write to a datastore another session has locked."""
        owner = self._stores[node].lock_owner.get(target)
        if owner is not None and owner != session_id:
            raise RpcFailure("in-use", f"{target} is locked by session {owner}", error_type="protocol")


class _Session:
    """One NETCONF session: framing, hello, RPC dispatch."""

    def __init__(
        self, server: NetconfEmulatorServer, node: str, session_id: int, process: asyncssh.SSHServerProcess[bytes]
    ) -> None:
        self.server = server
        self.node = node
        self.id = session_id
        self.process = process
        self.buffer = b""
        self.chunked = False

    def _write(self, xml: bytes) -> None:
        if self.chunked:
            self.process.stdout.write(b"\n#%d\n%s\n##\n" % (len(xml), xml))
        else:
            self.process.stdout.write(xml + EOM)

    async def _fill(self) -> None:
        data = await self.process.stdin.read(65536)
        if not data:
            raise ConnectionError("client closed the session")
        self.buffer += data
        if len(self.buffer) > _MAX_MESSAGE:
            raise ConnectionError("message too large")

    async def _read_message(self) -> bytes:
        if not self.chunked:
            while EOM not in self.buffer:
                await self._fill()
            message, _, self.buffer = self.buffer.partition(EOM)
            return message
        parts: list[bytes] = []
        while True:
            while len(self.buffer) < 4:
                await self._fill()
            if self.buffer.startswith(b"\n##\n"):
                self.buffer = self.buffer[4:]
                return b"".join(parts)
            match = _CHUNK.match(self.buffer)
            if match is None:
                if len(self.buffer) > 16 and not self.buffer.startswith(b"\n#"):
                    raise ConnectionError("bad chunk framing")
                await self._fill()
                continue
            size = int(match.group(1))
            end = match.end() + size
            while len(self.buffer) < end:
                await self._fill()
            parts.append(self.buffer[match.end() : end])
            self.buffer = self.buffer[end:]

    async def run(self) -> None:
        hello = etree.Element(_q(NC, "hello"), nsmap={None: NC})
        caps = etree.SubElement(hello, _q(NC, "capabilities"))
        for cap in self.server.capabilities:
            etree.SubElement(caps, _q(NC, "capability")).text = cap
        etree.SubElement(hello, _q(NC, "session-id")).text = str(self.id)
        self._write(etree.tostring(hello, xml_declaration=True, encoding="UTF-8"))
        client = etree.fromstring(await self._read_message(), parser=_PARSER)
        client_caps = {(c.text or "").strip() for c in client.iter(_q(NC, "capability"))}
        self.chunked = "urn:ietf:params:netconf:base:1.1" in client_caps
        while True:
            raw = await self._read_message()
            reply, close = self._dispatch(raw)
            self._write(reply)
            await self.process.stdout.drain()
            if close:
                return

    def _dispatch(self, raw: bytes) -> tuple[bytes, bool]:
        try:
            rpc = etree.fromstring(raw, parser=_PARSER)
        except etree.XMLSyntaxError as exc:
            return self._error_reply({}, RpcFailure("malformed-message", str(exc), error_type="rpc")), False
        attrs = dict(rpc.attrib)
        if rpc.tag != _q(NC, "rpc") or len(rpc) == 0:
            return self._error_reply(
                attrs, RpcFailure("operation-not-supported", "not an rpc", error_type="rpc")
            ), False
        op = rpc[0]
        name = etree.QName(op).localname if op.tag.startswith(f"{{{NC}}}") else op.tag
        try:
            body = self._operation(name, op)
        except RpcFailure as failure:
            return self._error_reply(attrs, failure), False
        reply = etree.Element(_q(NC, "rpc-reply"), nsmap={None: NC})
        for key, value in attrs.items():
            reply.set(key, value)
        reply.append(body if body is not None else etree.Element(_q(NC, "ok")))
        return etree.tostring(reply, encoding="UTF-8"), name == "close-session"

    def _target(self, op: etree._Element, tag: str) -> str:
        holder = _child(op, tag)
        if holder is None or len(holder) == 0:
            raise RpcFailure("missing-element", f"<{tag}> is required", error_type="protocol")
        return str(etree.QName(holder[0]).localname)

    def _operation(self, name: str, op: etree._Element) -> etree._Element | None:
        srv, node = self.server, self.node
        if name in ("get", "get-config"):
            flt = _child(op, "filter")
            if flt is not None and flt.get("type", "subtree") != "subtree":
                raise RpcFailure("operation-not-supported", "only subtree filters", error_type="protocol")
            if name == "get":
                data = srv.state_tree(node)
            else:
                source = self._target(op, "source")
                if source == "running":
                    data = srv.config_tree(node, srv.running(node))
                elif source == "candidate":
                    data = srv.config_tree(node, srv.candidate(node))
                else:
                    raise RpcFailure("invalid-value", f"no {source} datastore", error_type="protocol")
            return subtree_filter(data, flt)
        if name == "edit-config":
            target = self._target(op, "target")
            if target != srv.datastore:
                raise RpcFailure("operation-not-supported", f"only {srv.datastore} is writable", error_type="protocol")
            srv.check_lock(node, target, self.id)
            config = _child(op, "config")
            if config is None:
                raise RpcFailure("missing-element", "<config> is required (no :url support)", error_type="protocol")
            default_op = (_child_text(op, "default-operation") or "merge").strip()
            srv.edit(node, config, default_op, target)
            return None
        if name in ("commit", "cancel-commit", "discard-changes", "validate") and srv.datastore != "candidate":
            raise RpcFailure("operation-not-supported", f"<{name}> needs :candidate", error_type="protocol")
        if name == "validate":
            return None  # edits are validated when made
        if name == "commit":
            srv.check_lock(node, "running", self.id)
            confirmed = _child(op, "confirmed") is not None
            timeout = int((_child_text(op, "confirm-timeout") or "600").strip())
            srv.commit(node, confirmed=confirmed, timeout_s=timeout)
            return None
        if name == "cancel-commit":
            srv.cancel_commit(node)
            return None
        if name == "discard-changes":
            srv.discard(node)
            return None
        if name in ("lock", "unlock"):
            target = self._target(op, "target")
            (srv.lock if name == "lock" else srv.unlock)(node, target, self.id)
            return None
        if name == "close-session":
            return None
        raise RpcFailure("operation-not-supported", f"<{name}> is not supported", error_type="protocol")

    def _error_reply(self, attrs: dict[Any, Any], failure: RpcFailure) -> bytes:
        reply = etree.Element(_q(NC, "rpc-reply"), nsmap={None: NC})
        for key, value in attrs.items():
            reply.set(key, value)
        err = etree.SubElement(reply, _q(NC, "rpc-error"))
        etree.SubElement(err, _q(NC, "error-type")).text = failure.error_type
        etree.SubElement(err, _q(NC, "error-tag")).text = failure.tag
        etree.SubElement(err, _q(NC, "error-severity")).text = "error"
        if failure.path:
            etree.SubElement(err, _q(NC, "error-path")).text = failure.path
        etree.SubElement(err, _q(NC, "error-message")).text = str(failure)
        return bytes(etree.tostring(reply, encoding="UTF-8"))


_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, remove_blank_text=True, huge_tree=False)
