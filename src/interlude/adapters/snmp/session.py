"""The only module that talks to pysnmp's command generator: a small typed session over one agent.

pysnmp 7 has no type stubs and *returns* its errors (``errorIndication, errorStatus, errorIndex,
varBinds``) instead of raising them, and may also raise ``PySnmpError``. Everything is translated here,
once, into the :mod:`interlude.errors` tree; values come out as plain Python (``int``, ``bytes``, OID
tuples, or a :class:`Missing` marker), so nothing above this module imports pysnmp types.

Why one ``SnmpEngine`` per session rather than one per process: pysnmp keeps SNMPv3 USM users and their
localized keys in the engine's LCD keyed by user name, so two agents with the same user name but different
keys would overwrite each other in a shared engine. An engine costs one UDP socket and a few milliseconds
(~90 ms of CPU) to create, which is acceptable next to that risk; with the default ``fast`` codec an SNMPv2c
session creates it only on its first SET, and reads go through :mod:`.fastv2c`. Everything runs on the
caller's event loop, so many agents are polled concurrently on one loop; ``max_concurrency`` bounds the
requests in flight per agent.

Secrets (communities, USM keys) live only in the pysnmp auth objects and the fast client; ``repr``s and
every error message name the node, the address and the failure, never the credential.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from interlude.adapters.snmp.fastv2c import ERROR_STATUS_NAMES, GET, GETBULK, BerError, FastV2cClient
from interlude.adapters.snmp.profile import Oid, format_oid
from interlude.errors import (
    AdapterError,
    ConfigError,
    DeviceAuthError,
    DeviceConnectionError,
    DeviceOperationError,
    DeviceTimeoutError,
    MissingDependencyError,
)

try:
    from pyasn1.type import univ  # type: ignore[import-untyped]
    from pysnmp.error import PySnmpError
    from pysnmp.hlapi.v3arch import asyncio as hl
    from pysnmp.proto import errind, rfc1902, rfc1905
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise MissingDependencyError(
        "the 'snmp' adapter needs pysnmp; install it with: pip install 'lso-interlude[snmp]'"
    ) from exc


class Missing(enum.Enum):
    """SNMPv2 exception values a varbind can carry instead of a value."""

    NO_SUCH_OBJECT = "noSuchObject"
    NO_SUCH_INSTANCE = "noSuchInstance"
    END_OF_MIB_VIEW = "endOfMibView"


Value = int | bytes | Oid | None | Missing
VarBind = tuple[Oid, Value]

AUTH_PROTOCOLS: dict[str, Any] = {
    "MD5": hl.USM_AUTH_HMAC96_MD5,
    "SHA": hl.USM_AUTH_HMAC96_SHA,
    "SHA-224": hl.USM_AUTH_HMAC128_SHA224,
    "SHA-256": hl.USM_AUTH_HMAC192_SHA256,
    "SHA-384": hl.USM_AUTH_HMAC256_SHA384,
    "SHA-512": hl.USM_AUTH_HMAC384_SHA512,
}
PRIV_PROTOCOLS: dict[str, Any] = {
    "DES": hl.USM_PRIV_CBC56_DES,
    "3DES": hl.USM_PRIV_CBC168_3DES,
    "AES": hl.USM_PRIV_CFB128_AES,
    "AES-128": hl.USM_PRIV_CFB128_AES,
    "AES-192": hl.USM_PRIV_CFB192_AES,
    "AES-256": hl.USM_PRIV_CFB256_AES,
    "AES-192-BLUMENTHAL": hl.USM_PRIV_CFB192_AES_BLUMENTHAL,
    "AES-256-BLUMENTHAL": hl.USM_PRIV_CFB256_AES_BLUMENTHAL,
}

# errorIndications that mean "the agent refused who we are" (USM / community problems).
_AUTH_INDICATIONS = (
    errind.UnknownUserName,
    errind.UnknownSecurityName,
    errind.WrongDigest,
    errind.DecryptionError,
    errind.AuthenticationError,
    errind.AuthenticationFailure,
    errind.UnsupportedSecurityLevel,
    errind.UnknownCommunityName,
    errind.NotInTimeWindow,
    errind.UnknownEngineID,
    errind.UnsupportedAuthProtocol,
    errind.UnsupportedPrivProtocol,
)
# errorStatus values (RFC 3416) that mean "you may not do this with these credentials".
_ACCESS_STATUSES = {"noAccess", "authorizationError"}


class SnmpStatusError(DeviceOperationError):
    """The agent answered with an errorStatus (``status`` is its RFC 3416 name, e.g. ``notWritable``)."""

    def __init__(self, message: str, *, node: str | None, status: str, oid: Oid | None) -> None:
        super().__init__(message, node=node)
        self.status = status
        self.oid = oid


class SnmpNoSuchObjectError(SnmpStatusError):
    """The agent does not have the object or instance asked for (noSuchObject / noSuchInstance / noSuchName)."""


@dataclass(frozen=True)
class SnmpCredentials:
    """Resolved credentials. ``repr`` hides every secret (tracebacks and logs print dataclasses)."""

    version: Literal["2c", "3"]
    community: str | None = None
    write_community: str | None = None
    v3_user: str | None = None
    v3_auth_key: str | None = None
    v3_priv_key: str | None = None
    v3_auth_protocol: str = "SHA-256"
    v3_priv_protocol: str = "AES"
    context_name: str = ""

    def __repr__(self) -> str:
        """Name what is configured, never the values."""
        if self.version == "3":
            return (
                f"SnmpCredentials(v3, user={self.v3_user!r}, auth={self.v3_auth_protocol}, "
                f"priv={self.v3_priv_protocol})"
            )
        return "SnmpCredentials(v2c, community=***, write_community=" + ("***)" if self.write_community else "None)")

    __str__ = __repr__

    def check(self) -> None:
        """Raise :class:`ConfigError` for an unusable combination (before any packet is sent)."""
        if self.version == "2c":
            if not self.community:
                raise ConfigError("SNMPv2c needs credentials.community")
            return
        if not self.v3_user:
            raise ConfigError("SNMPv3 needs credentials.v3_user")
        if self.v3_auth_protocol not in AUTH_PROTOCOLS:
            raise ConfigError(f"v3_auth_protocol must be one of {sorted(AUTH_PROTOCOLS)}")
        if self.v3_priv_protocol not in PRIV_PROTOCOLS:
            raise ConfigError(f"v3_priv_protocol must be one of {sorted(PRIV_PROTOCOLS)}")
        if not self.v3_auth_key or not self.v3_priv_key:
            raise ConfigError("SNMPv3 authPriv needs credentials.v3_auth_key and credentials.v3_priv_key")
        if len(self.v3_auth_key) < 8 or len(self.v3_priv_key) < 8:
            raise ConfigError("SNMPv3 keys must be at least 8 characters (RFC 3414)")

    def auth_data(self, *, write: bool = False) -> Any:
        """The pysnmp auth object (read or write community for v2c; the one USM user for v3)."""
        if self.version == "2c":
            community = (self.write_community or self.community) if write else self.community
            return hl.CommunityData(community, mpModel=1)
        return hl.UsmUserData(
            self.v3_user,
            self.v3_auth_key,
            self.v3_priv_key,
            authProtocol=AUTH_PROTOCOLS[self.v3_auth_protocol],
            privProtocol=PRIV_PROTOCOLS[self.v3_priv_protocol],
        )


def to_python(value: Any) -> Value:
    """A pysnmp/pyasn1 value as plain Python."""
    if isinstance(value, rfc1905.NoSuchObject):
        return Missing.NO_SUCH_OBJECT
    if isinstance(value, rfc1905.NoSuchInstance):
        return Missing.NO_SUCH_INSTANCE
    if isinstance(value, rfc1905.EndOfMibView):
        return Missing.END_OF_MIB_VIEW
    if isinstance(value, univ.ObjectIdentifier):
        return tuple(int(p) for p in value)
    if isinstance(value, univ.OctetString):  # also IpAddress, Opaque, Bits
        return bytes(value.asOctets())
    if isinstance(value, univ.Null):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return bytes(str(value), "utf-8")


def is_under(oid: Oid, prefix: Oid) -> bool:
    """Whether ``oid`` lies strictly inside the subtree ``prefix``."""
    return len(oid) > len(prefix) and oid[: len(prefix)] == prefix


class SnmpSession:
    """Requests to one agent: GET, SET, multi-column GETBULK walks; errors mapped once, here."""

    def __init__(
        self,
        *,
        node: str,
        host: str,
        port: int,
        credentials: SnmpCredentials,
        timeout_s: float = 1.0,
        retries: int = 1,
        max_concurrency: int = 4,
        bulk_varbinds: int = 100,
        codec: Literal["fast", "pysnmp"] = "fast",
    ) -> None:
        credentials.check()
        self.node = node
        self.host = host
        self.port = port
        self.credentials = credentials
        self.timeout_s = timeout_s
        self.retries = retries
        self.bulk_varbinds = max(1, bulk_varbinds)
        self._semaphore = asyncio.Semaphore(max(1, max_concurrency))
        self._engine: Any = None
        self._target: Any = None
        self._read_auth: Any = None
        self._write_auth: Any = None
        self._context: Any = None
        self._fast: FastV2cClient | None = None
        self.codec = codec if credentials.version == "2c" else "pysnmp"
        self.round_trips = 0

    def __repr__(self) -> str:
        """No credentials here."""
        return f"SnmpSession(node={self.node!r}, {self.host}:{self.port}, v{self.credentials.version})"

    @property
    def where(self) -> str:
        """``host:port`` for messages."""
        return f"{self.host}:{self.port}"

    async def open(self) -> None:
        """Prepare: the fast v2c socket now; the pysnmp engine now or, with the fast codec, on first SET.

        Creating a pysnmp ``SnmpEngine`` costs ~90 ms of CPU, which dominated opening 50 sessions; a
        polling-only v2c session never needs one.
        """
        if self.codec == "fast":
            if self._fast is None:
                assert self.credentials.community is not None
                fast = FastV2cClient(self.credentials.community, self.timeout_s, self.retries)
                with self._mapped("open"):
                    await fast.connect(self.host, self.port)
                self._fast = fast
            return
        await self._open_engine()

    async def _open_engine(self) -> None:
        if self._engine is not None:
            return
        with self._mapped("open"):
            engine = hl.SnmpEngine()
            self._target = await hl.UdpTransportTarget.create(
                (self.host, self.port), timeout=self.timeout_s, retries=self.retries
            )
        self._engine = engine
        self._read_auth = self.credentials.auth_data()
        self._write_auth = self.credentials.auth_data(write=True)
        self._context = hl.ContextData(contextName=self.credentials.context_name.encode())

    async def close(self) -> None:
        """Close the engine's sockets. Idempotent."""
        engine, self._engine = self._engine, None
        if self._fast is not None:
            self._fast.close()
            self._fast = None
        if engine is not None:
            with contextlib.suppress(Exception):
                engine.close_dispatcher()

    # Error mapping ----------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _mapped(self, what: str) -> Iterator[None]:
        """Exceptions pysnmp raises (rather than returns) become interlude errors."""
        try:
            yield
        except AdapterError:
            raise
        except TimeoutError as exc:
            raise DeviceTimeoutError(f"{what} on {self.where}: no answer in time", node=self.node) from exc
        except PySnmpError as exc:
            raise DeviceConnectionError(f"{what} on {self.where} failed: {exc}", node=self.node) from exc
        except OSError as exc:
            raise DeviceConnectionError(
                f"{what} on {self.where} failed: {exc.strerror or exc}", node=self.node
            ) from exc

    def _check(self, what: str, result: tuple[Any, Any, Any, Any], request: Sequence[Oid]) -> list[VarBind]:
        """Turn pysnmp's ``(errorIndication, errorStatus, errorIndex, varBinds)`` into varbinds or an error."""
        indication, status, index, varbinds = result
        if indication:
            name = type(indication).__name__
            if isinstance(indication, errind.RequestTimedOut):
                hint = " (wrong community?)" if self.credentials.version == "2c" else ""
                raise DeviceTimeoutError(
                    f"{what} on {self.where}: no answer after {self.retries + 1} x {self.timeout_s:g} s{hint}",
                    node=self.node,
                )
            if isinstance(indication, _AUTH_INDICATIONS):
                user = f"user {self.credentials.v3_user!r}" if self.credentials.version == "3" else "community"
                raise DeviceAuthError(
                    f"{what} on {self.where}: the agent refused the SNMPv{self.credentials.version} credentials "
                    f"({user}): {indication}",
                    node=self.node,
                )
            raise DeviceConnectionError(f"{what} on {self.where} failed: {indication} ({name})", node=self.node)
        status_code = int(status)
        if status_code:
            name = str(status.prettyPrint()) if hasattr(status, "prettyPrint") else str(status_code)
            self._raise_status(what, name, int(index), request)
        out: list[VarBind] = []
        for varbind in varbinds:
            name_obj, value = varbind[0], varbind[1]
            out.append((tuple(int(p) for p in name_obj), to_python(value)))
        return out

    def _raise_status(self, what: str, status_name: str, index: int, request: Sequence[Oid]) -> None:
        """An errorStatus (RFC 3416) as the most specific interlude error."""
        idx = index - 1
        oid = request[idx] if 0 <= idx < len(request) else None
        at = f" at {format_oid(oid)}" if oid else ""
        message = f"{what} on {self.where}: the agent answered {status_name}{at}"
        if status_name in _ACCESS_STATUSES:
            raise DeviceAuthError(message + " (these credentials have no access to it)", node=self.node)
        cls = SnmpNoSuchObjectError if status_name == "noSuchName" else SnmpStatusError
        raise cls(message, node=self.node, status=status_name, oid=oid)

    async def _call_fast(
        self, what: str, pdu_type: int, request: Sequence[Oid], max_repetitions: int = 0
    ) -> list[VarBind]:
        """The same contract as :meth:`_call`, over :mod:`.fastv2c`."""
        if self._fast is None:
            await self.open()
        assert self._fast is not None
        async with self._semaphore:
            try:
                status, index, varbinds = await self._fast.request(pdu_type, request, 0, max_repetitions)
            except TimeoutError:
                raise DeviceTimeoutError(
                    f"{what} on {self.where}: no answer after {self.retries + 1} x {self.timeout_s:g} s "
                    "(wrong community?)",
                    node=self.node,
                ) from None
            except BerError as exc:
                raise DeviceConnectionError(
                    f"{what} on {self.where}: undecodable answer ({exc})", node=self.node
                ) from exc
            except OSError as exc:
                raise DeviceConnectionError(
                    f"{what} on {self.where} failed: {exc.strerror or exc}", node=self.node
                ) from exc
            self.round_trips += 1
        if status:
            name = ERROR_STATUS_NAMES[status] if 0 <= status < len(ERROR_STATUS_NAMES) else str(status)
            self._raise_status(what, name, index, request)
        return [(oid, Missing(value) if isinstance(value, str) else value) for oid, value in varbinds]

    async def _call(self, what: str, request: Sequence[Oid], coro_factory: Any) -> list[VarBind]:
        if self._engine is None:
            await self._open_engine()
        deadline = self.timeout_s * (self.retries + 1) + 2.0  # pysnmp times out itself; this is a backstop
        async with self._semaphore:
            with self._mapped(what):
                async with asyncio.timeout(deadline):
                    result = await coro_factory()
                self.round_trips += 1
        return self._check(what, result, request)

    # Operations ---------------------------------------------------------------------------------------------

    async def get(self, oids: Sequence[Oid]) -> list[VarBind]:
        """GET the OIDs in one PDU; missing objects come back as :class:`Missing` values (not errors)."""
        if self.codec == "fast":
            return await self._call_fast("GET", GET, oids)
        objs = [hl.ObjectType(hl.ObjectIdentity(oid)) for oid in oids]
        return await self._call(
            "GET",
            oids,
            lambda: hl.get_cmd(self._engine, self._read_auth, self._target, self._context, *objs, lookupMib=False),
        )

    async def get_many(self, oids: Sequence[Oid]) -> dict[Oid, Value]:
        """GET any number of OIDs, split into PDUs of ``bulk_varbinds`` sent concurrently."""
        chunks = [oids[i : i + self.bulk_varbinds] for i in range(0, len(oids), self.bulk_varbinds)]
        results = await asyncio.gather(*(self.get(chunk) for chunk in chunks))
        return {oid: value for chunk in results for oid, value in chunk}

    async def set_integer(self, oid: Oid, value: int) -> Value:
        """SET one INTEGER object with the write credentials; returns the value the agent echoed."""
        obj = hl.ObjectType(hl.ObjectIdentity(oid), rfc1902.Integer32(value))
        varbinds = await self._call(
            "SET",
            [oid],
            lambda: hl.set_cmd(self._engine, self._write_auth, self._target, self._context, obj, lookupMib=False),
        )
        return varbinds[0][1] if varbinds else None

    async def bulk(self, oids: Sequence[Oid], max_repetitions: int) -> list[VarBind]:
        """One GETBULK (non-repeaters 0)."""
        if self.codec == "fast":
            return await self._call_fast("GETBULK", GETBULK, oids, max_repetitions)
        objs = [hl.ObjectType(hl.ObjectIdentity(oid)) for oid in oids]
        return await self._call(
            "GETBULK",
            oids,
            lambda: hl.bulk_cmd(
                self._engine, self._read_auth, self._target, self._context, 0, max_repetitions, *objs,
                lookupMib=False,
            ),
        )  # fmt: skip

    async def walk_columns(
        self, columns: Sequence[Oid], expected_rows: int | None = None
    ) -> dict[Oid, dict[Oid, Value]]:
        """Walk several table columns side by side with GETBULK; ``{column: {index suffix: value}}``.

        Every request carries one varbind per still-active column, so N columns of R rows take about
        ``N*R / bulk_varbinds`` round trips instead of N separate walks. A column ends when the agent leaves
        its subtree, says endOfMibView, or stops increasing (a broken agent must not loop us forever).
        """
        results: dict[Oid, dict[Oid, Value]] = {col: {} for col in columns}
        cursors: dict[Oid, Oid] = {col: col for col in columns}
        active = list(dict.fromkeys(columns))
        while active:
            reps = max(1, self.bulk_varbinds // len(active))
            if expected_rows is not None:
                reps = max(1, min(reps, expected_rows + 1))
            varbinds = await self.bulk([cursors[c] for c in active], reps)
            if not varbinds:
                break
            finished: set[Oid] = set()
            for i, (oid, value) in enumerate(varbinds):
                col = active[i % len(active)]
                if col in finished:
                    continue
                if value is Missing.END_OF_MIB_VIEW or not is_under(oid, col) or oid <= cursors[col]:
                    finished.add(col)
                    continue
                results[col][oid[len(col) :]] = value
                cursors[col] = oid
            active = [c for c in active if c not in finished]
        return results

    def now(self) -> float:
        """Wall-clock time used for sample stamps (a method so tests can pin it)."""
        return time.time()
