"""Find adapters through the ``interlude.adapters`` entry-point group; the entry-point name is the ``kind``.

Built-in adapters register there exactly like third-party ones (nornir's pattern), so a partner's package
adds a device family by declaring one entry point. Errors name what to do: an unknown kind lists the
available kinds (containerlab's message), a missing optional dependency names the extra to install.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING

from interlude.errors import AdapterNotFoundError, MissingDependencyError

if TYPE_CHECKING:
    from interlude.adapters.base import Adapter, AdapterContext
    from interlude.topology.model import NodeSpec

GROUP = "interlude.adapters"

AdapterFactory = Callable[["NodeSpec", "AdapterContext"], "Adapter"]

# The extra that provides each built-in kind's optional dependencies.
_EXTRAS = {"snmp": "snmp", "netconf": "netconf", "lab": "lab"}


@cache
def _entry_points() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def available_kinds() -> list[str]:
    """Names of every registered adapter kind, sorted."""
    return sorted(_entry_points())


def load_adapter_factory(kind: str) -> AdapterFactory:
    """The factory registered for ``kind``; clear errors for unknown kinds and missing extras."""
    eps = _entry_points()
    if kind not in eps:
        raise AdapterNotFoundError(f"kind {kind!r} is not supported. Supported kinds are {available_kinds()!r}")
    try:
        factory: AdapterFactory = eps[kind].load()
    except ImportError as exc:
        if (exc.name or "").startswith("interlude"):
            raise AdapterNotFoundError(f"the {kind!r} adapter is not available in this build ({exc})") from exc
        extra = _EXTRAS.get(kind, kind)
        raise MissingDependencyError(
            f"the {kind!r} adapter needs an optional dependency ({exc.name or exc}); "
            f"install it with: pip install 'lso-interlude[{extra}]'"
        ) from exc
    return factory


def create_adapter(node: NodeSpec, context: AdapterContext) -> Adapter:
    """Instantiate the adapter for ``node.kind`` (not opened yet)."""
    return load_adapter_factory(node.kind)(node, context)
