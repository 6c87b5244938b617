"""The one error tree of lso-interlude.

Library errors (pysnmp, ncclient, pyroute2, sqlite3, ...) are translated once, at the boundary where they
occur, into the most specific class below (``raise XError(...) from exc``); the REST layer maps these classes
once more, by walking the MRO, to the MEF error body of the API being served. Handlers therefore never see a
library exception and the SP never sees a traceback.

::

    InterludeError
    ├── ConfigError                    bad configuration (settings, CLI)
    │   └── TopologyError              topology file invalid; carries ``path`` like ``nodes.pe1.kind``
    ├── SecretError                    a secret reference cannot be resolved (never carries the secret)
    ├── NotFoundError                  an id or name that does not exist           -> 404 notFound
    ├── RequestError                   a request that cannot be read (bad JSON, bad query) -> 400 (status, code)
    ├── ValidationError                a request is well-formed but not acceptable -> 422 (propertyPath)
    │   └── PolicyViolationError       outside the partner's policy for the service
    ├── ValidationErrors               several ValidationErrors at once            -> one 422 array
    ├── TransitionError                a state change the life cycle does not allow (also a ValueError)
    ├── AdapterError                   southbound failures, mapped from library errors
    │   ├── AdapterNotFoundError       unknown topology ``kind`` (lists the available kinds)
    │   ├── MissingDependencyError     the adapter's optional extra is not installed (names the extra)
    │   ├── CapabilityError            the node's adapter lacks a capability       -> 422/501
    │   ├── DeviceConnectionError      cannot reach / session dropped
    │   │   ├── DeviceAuthError        credentials refused
    │   │   └── DeviceTimeoutError     no answer in time
    │   └── DeviceOperationError       the device refused or failed an operation (noSuchObject, RPCError...)
    ├── OamError                       OAM session failures (no MEP, no transport)
    ├── LabError                       a lab cannot be built, changed or torn down (names the command)
    └── StoreError                     persistence failures
        └── ConflictError              optimistic concurrency / duplicate claim
"""

from __future__ import annotations

from collections.abc import Sequence


class InterludeError(Exception):
    """Root of every error this package raises on purpose."""


class ConfigError(InterludeError):
    """Configuration that cannot be used (settings, CLI options)."""


class TopologyError(ConfigError):
    """A topology file does not validate; ``path`` is the dotted location of the first problem."""

    def __init__(self, message: str, path: str = "") -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.detail = message


class SecretError(InterludeError):
    """A secret reference could not be resolved. The message names the reference, never the value."""


class NotFoundError(InterludeError):
    """The requested object does not exist."""


class ValidationError(InterludeError):
    """A request that is well-formed but not acceptable; ``property_path`` is a JSON pointer."""

    def __init__(self, message: str, property_path: str | None = None, code: str = "invalidValue") -> None:
        super().__init__(message)
        self.property_path = property_path
        self.code = code


class PolicyViolationError(ValidationError):
    """A change the partner's policy for the service does not allow."""


class ValidationErrors(InterludeError):
    """Several validation problems found at once; the REST layer answers them as one 422 array."""

    def __init__(self, errors: Sequence[ValidationError]) -> None:
        super().__init__("; ".join(str(e) for e in errors))
        self.errors = list(errors)


class RequestError(InterludeError):
    """A request the partner cannot even read: answered with ``status`` (a 4xx) and the definition's ``code``."""

    def __init__(self, status: int, code: str, reason: str, message: str | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.code = code
        self.reason = reason
        self.message = message


class TransitionError(InterludeError, ValueError):
    """A life-cycle transition that is not allowed (a programming error when it escapes a use case)."""


class AdapterError(InterludeError):
    """A southbound failure. ``node`` names the topology node when known."""

    def __init__(self, message: str, *, node: str | None = None) -> None:
        super().__init__(f"{node}: {message}" if node else message)
        self.node = node


class AdapterNotFoundError(AdapterError):
    """No adapter is registered for a topology ``kind``."""


class MissingDependencyError(AdapterError):
    """The adapter needs an optional dependency; the message names the extra to install."""


class CapabilityError(AdapterError):
    """The node's adapter does not offer a capability the operation needs."""


class DeviceConnectionError(AdapterError):
    """The device cannot be reached, or the session to it dropped."""


class DeviceAuthError(DeviceConnectionError):
    """The device refused our credentials."""


class DeviceTimeoutError(DeviceConnectionError):
    """The device did not answer in time."""


class DeviceOperationError(AdapterError):
    """The device answered but refused or failed the operation."""


class OamError(InterludeError):
    """An OAM session could not run (no such MEP, transport unavailable, bad parameters)."""


class LabError(InterludeError):
    """A lab (network namespaces, veths, agents) could not be built, changed or torn down."""


class StoreError(InterludeError):
    """Persistence failed."""


class ConflictError(StoreError):
    """A concurrent change won (optimistic locking) or a work item was already claimed."""
