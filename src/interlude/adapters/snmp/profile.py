"""SNMP profiles: the numeric OID map of one MIB family, as data (``<name>.yaml``).

Keeping OIDs out of the code means another MIB family (a vendor's interface MIB, an ENTITY-MIB flavour) is a
new YAML file plus ``settings.profile: <name>`` on the nodes, not a code change.

Where profiles are found, first match wins:

1. ``settings.profile`` is a path (contains ``/`` or ends in ``.yaml``): that file, relative to the topology;
2. ``<topology dir>/adapters/snmp/<name>.yaml`` (a partner's own profiles beside the topology);
3. each folder in ``INTERLUDE_SNMP_PROFILES`` (``os.pathsep``-separated);
4. the profiles shipped as package data, ``interlude/data/snmp/<name>.yaml`` (the only copy; see
   :mod:`interlude.data.search`).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from interlude.data.search import find_file, search_path
from interlude.data.yamlfile import load_model
from interlude.errors import ConfigError

Oid = tuple[int, ...]


def _parse_oid(value: object) -> Oid:
    """Accept ``"1.3.6.1"``, ``".1.3.6.1"`` or a list of ints; YAML may also give a float for short OIDs."""
    if isinstance(value, tuple | list) and all(isinstance(p, int) for p in value):
        return tuple(value)
    if isinstance(value, str | int | float):
        text = str(value).strip().lstrip(".")
        try:
            parts = tuple(int(p) for p in text.split("."))
        except ValueError:
            raise ValueError(f"{value!r} is not a numeric OID") from None
        if len(parts) < 2 or any(p < 0 for p in parts):
            raise ValueError(f"{value!r} is not a numeric OID")
        return parts
    raise ValueError(f"{value!r} is not a numeric OID")


OidField = Annotated[Oid, BeforeValidator(_parse_oid)]


def format_oid(oid: Oid) -> str:
    """Dotted form for messages."""
    return ".".join(str(p) for p in oid)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StatusColumns(_Strict):
    """Per-interface status objects (columns indexed by the interface index)."""

    admin: OidField
    oper: OidField
    high_speed_mbps: OidField | None = None
    speed_bps: OidField | None = None
    mtu: OidField | None = None
    mac: OidField | None = None
    description: OidField | None = None


class AdminValues(_Strict):
    """Integer values of the admin-status column."""

    up: int = 1
    down: int = 2


class OperValues(_Strict):
    """Integer values of the oper-status column; anything else reads as unknown."""

    up: list[int] = Field(default_factory=lambda: [1])
    down: list[int] = Field(default_factory=lambda: [2])


class CounterColumns(_Strict):
    """Columns whose values (summed when several) make one counter."""

    in_octets: list[OidField]
    out_octets: list[OidField]
    in_packets: list[OidField]
    out_packets: list[OidField]


class CommonCounterColumns(_Strict):
    """Error and discard columns (shared by the HC and legacy sets)."""

    in_discards: list[OidField] = Field(default_factory=list)
    in_errors: list[OidField] = Field(default_factory=list)
    out_discards: list[OidField] = Field(default_factory=list)
    out_errors: list[OidField] = Field(default_factory=list)


class Counters(_Strict):
    """64-bit columns, the 32-bit fallback, shared columns and the agent's cache time."""

    hc: CounterColumns | None = None
    legacy: CounterColumns | None = None
    common: CommonCounterColumns = Field(default_factory=CommonCounterColumns)
    cache_s: float = Field(0.0, ge=0)


class Notifications(_Strict):
    """Which notifications mean link down/up, and which varbinds carry index and states."""

    link_down: OidField
    link_up: OidField
    if_index: OidField
    admin: OidField | None = None
    oper: OidField | None = None


class SnmpProfile(_Strict):
    """One MIB family's OID map."""

    name: str
    description: str = ""
    name_columns: list[OidField] = Field(min_length=1)
    status: StatusColumns
    admin_values: AdminValues = Field(default_factory=AdminValues)
    oper_values: OperValues = Field(default_factory=OperValues)
    counters: Counters
    notifications: Notifications | None = None
    engine_id: OidField = (1, 3, 6, 1, 6, 3, 10, 2, 1, 1, 0)


SNMP_PROFILES_ENV = "INTERLUDE_SNMP_PROFILES"


def profile_search_path(base_dir: Path | None = None) -> list[Path]:
    """Folders searched for ``<name>.yaml``, in order (see the module docstring)."""
    own = [base_dir / "adapters" / "snmp"] if base_dir is not None else []
    return search_path("snmp", own, SNMP_PROFILES_ENV)


@lru_cache(maxsize=64)
def _load_file(path: Path) -> SnmpProfile:
    return load_model(path, SnmpProfile, "SNMP profile")


def load_profile(name: str, base_dir: Path | None = None) -> SnmpProfile:
    """The profile called ``name`` (or at path ``name``); :class:`ConfigError` lists where it looked."""
    if "/" in name or name.endswith((".yaml", ".yml")):
        path = Path(name)
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        return _load_file(path.resolve())
    searched = profile_search_path(base_dir)
    found = find_file(f"{name}.yaml", searched)
    if found is not None:
        return _load_file(found.resolve())
    raise ConfigError(
        f"no SNMP profile named {name!r}; looked for {name}.yaml in: " + ", ".join(str(d) for d in searched)
    )
