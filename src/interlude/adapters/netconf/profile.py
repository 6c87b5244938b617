"""NETCONF device profiles: the data that tells the adapter what XML to send and where values are in replies.

A profile is a YAML file (see ``interlude/data/netconf/*.yaml`` and docs/netconf.md), validated here into
:class:`Profile`. Device families differ in *data* (namespaces, templates, filters, XPath paths, value maps,
notification names) and in a small closed set of *semantics* the adapter implements and a profile picks:
``admin.style`` (``enabled`` leaf vs. entry ``presence``), ``admin.read`` and ``admin.verify``.

Where profiles are found (first match wins), and why:

1. directories in ``settings.profile_path`` (relative to the topology file) and in the ``INTERLUDE_NETCONF_PROFILES``
   environment variable (``os.pathsep``-separated): a partner's own families, no code change;
2. ``interlude/data/netconf/`` inside the package: the shipped profiles (their only copy, package data found
   through :mod:`interlude.data.search` in a checkout and in an installed wheel alike).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Literal
from xml.sax.saxutils import escape

import yaml
from lxml import etree
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from interlude.data.search import find_file
from interlude.data.search import search_path as data_search_path
from interlude.errors import ConfigError

ENV_PATH = "INTERLUDE_NETCONF_PROFILES"
_SIMPLE_STEP = re.compile(r"^[A-Za-z_][\w.-]*:[A-Za-z_][\w.-]*$")

PathSpec = str | list[str] | None


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AdminSpec(_Strict):
    """How admin state is changed, read and verified on this device family."""

    style: Literal["enabled", "presence"] = "enabled"
    read: Literal["state", "config", "presence"] = "state"
    verify: Literal["datastore", "oper"] = "datastore"
    settle_s: float = Field(5.0, gt=0, le=120)
    oper_refresh_s: float | None = Field(None, gt=0, le=120)
    """How long the agent may take to show a new oper state (None: ``settle_s``); bounds the wait after admin
    up, where a link without carrier legitimately stays down."""


class QuirksSpec(_Strict):
    """Behaviour switches for agent bugs (each documented in the profile that sets it)."""

    validate_: bool = Field(True, alias="validate")


class TemplatesSpec(_Strict):
    """Edit templates (``<config>`` bodies for edit-config)."""

    set_enabled: str | None = None
    create: str | None = None
    delete: str | None = None


class FiltersSpec(_Strict):
    """Subtree filters: a wrapper with ``{items}``, an item per named interface, and an item for 'all'."""

    state: str
    state_item: str
    state_all: str
    counters: str
    counters_item: str
    counters_all: str
    config: str
    config_item: str
    config_all: str


class PathsSpec(_Strict):
    """XPath expressions (relative to ``<data>`` or to an interface element) with the profile's prefixes."""

    state_interface: str
    config_interface: str
    name: str
    admin: PathSpec = None
    oper: PathSpec = None
    enabled: PathSpec = None
    speed_bps: PathSpec = None
    mac: PathSpec = None
    mtu: PathSpec = None
    description: PathSpec = None
    in_octets: PathSpec = None
    out_octets: PathSpec = None
    in_packets: PathSpec = None
    out_packets: PathSpec = None
    in_errors: PathSpec = None
    out_errors: PathSpec = None
    in_discards: PathSpec = None
    out_discards: PathSpec = None


class NotificationSpec(_Strict):
    """A notification element meaning link up or down, and where the interface name is inside it."""

    match: str
    interface: str


class Profile(_Strict):
    """One device family. Build with :func:`load_profile`; the XPath objects are compiled once here."""

    name: str
    description: str = ""
    namespaces: dict[str, str]
    admin: AdminSpec = Field(default_factory=AdminSpec)
    quirks: QuirksSpec = Field(default_factory=QuirksSpec)
    templates: TemplatesSpec = Field(default_factory=TemplatesSpec)
    filters: FiltersSpec
    paths: PathsSpec
    admin_values: dict[str, Literal["up", "down"]] = Field(default_factory=dict)
    oper_values: dict[str, Literal["up", "down", "unknown"]] = Field(default_factory=dict)
    notifications: dict[Literal["link_up", "link_down"], NotificationSpec] = Field(default_factory=dict)
    notifications_scope: Literal["all", "configured"] = "all"
    """``configured``: the agent notifies only interfaces with a config entry, so the adapter polls as well."""
    source: str = ""
    _xpaths: dict[str, etree.XPath] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> Profile:
        if self.admin.style == "enabled" and not self.templates.set_enabled:
            raise ValueError("admin.style 'enabled' needs templates.set_enabled")
        if self.admin.style == "presence" and not (self.templates.create and self.templates.delete):
            raise ValueError("admin.style 'presence' needs templates.create and templates.delete")
        if self.admin.read == "state" and not self.paths.admin:
            raise ValueError("admin.read 'state' needs paths.admin")
        if self.admin.read == "config" and not self.paths.enabled:
            raise ValueError("admin.read 'config' needs paths.enabled")
        for key in ("set_enabled", "create", "delete"):
            template = getattr(self.templates, key)
            if template:
                _check_xml(render(template, name="x", enabled="true"), f"templates.{key}")
        for key in ("state", "counters", "config"):
            wrapper = getattr(self.filters, key)
            for item in (getattr(self.filters, f"{key}_item"), getattr(self.filters, f"{key}_all")):
                _check_xml(wrapper.replace("{items}", render(item, name="x")), f"filters.{key}")
        return self

    def xpath(self, expr: str) -> etree.XPath:
        """A compiled XPath with this profile's namespace prefixes (compiled once per profile and expression)."""
        found = self._xpaths.get(expr)
        if found is None:
            found = self._xpaths[expr] = _compile(expr, tuple(sorted(self.namespaces.items())))
        return found

    def leaf_path(self, expr: str) -> str | None:
        """``expr`` as a Clark-notation child path when it is a plain ``p:a/p:b`` path, else None.

        Plain paths are read from a one-pass flattening of each interface entry (see the adapter), which is
        several times faster than evaluating an XPath per leaf when parsing counters of many interfaces.
        """
        steps = expr.split("/")
        if not all(_SIMPLE_STEP.match(step) and step.split(":")[0] in self.namespaces for step in steps):
            return None
        return "/".join(f"{{{self.namespaces[step.split(':')[0]]}}}{step.split(':')[1]}" for step in steps)

    def filter(self, kind: Literal["state", "counters", "config"], names: Sequence[str] | None) -> str:
        """The subtree filter selecting ``names`` (``None``: every interface) for ``kind``."""
        wrapper: str = getattr(self.filters, kind)
        if names is None:
            items = getattr(self.filters, f"{kind}_all")
        else:
            item: str = getattr(self.filters, f"{kind}_item")
            items = "".join(render(item, name=n) for n in names)
        return wrapper.replace("{items}", items)


def render(template: str, **values: str) -> str:
    """Fill ``{name}``-style placeholders with XML-escaped values (other braces are left alone)."""
    out = template
    for key, value in values.items():
        out = out.replace("{" + key + "}", escape(value, {'"': "&quot;"}))
    return out


def _check_xml(text: str, where: str) -> None:
    try:
        etree.fromstring(text.encode())
    except etree.XMLSyntaxError as exc:
        raise ValueError(f"{where} is not well-formed XML: {exc}") from None


@cache
def _compile(expr: str, namespaces: tuple[tuple[str, str], ...]) -> etree.XPath:
    try:
        return etree.XPath(expr, namespaces=dict(namespaces), smart_strings=False)
    except etree.XPathSyntaxError as exc:
        raise ConfigError(f"invalid XPath {expr!r} in a NETCONF profile: {exc}") from exc


def search_path(extra: Sequence[Path | str] = (), env: Mapping[str, str] | None = None) -> list[Path]:
    """Directories searched for ``<name>.yaml``, in order (see the module docstring)."""
    return data_search_path("netconf", extra, ENV_PATH, env)


def available_profiles(extra: Sequence[Path | str] = ()) -> list[str]:
    """Names of every profile on the search path, sorted."""
    names = {p.stem for d in search_path(extra) if d.is_dir() for p in d.glob("*.yaml")}
    return sorted(names)


def parse_profile(raw: object, source: str = "<data>") -> Profile:
    """Validate already-parsed YAML into a :class:`Profile`; :class:`ConfigError` names the key at fault."""
    if not isinstance(raw, dict):
        raise ConfigError(f"NETCONF profile {source} is not a mapping")
    try:
        return Profile.model_validate({**raw, "source": source})
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise ConfigError(f"NETCONF profile {source}: {loc}: {err['msg']}") from None


def load_profile(name: str, extra: Sequence[Path | str] = ()) -> Profile:
    """Find and validate the profile called ``name``; the error lists the profiles that exist."""
    if not name or "/" in name or name.startswith("."):
        raise ConfigError(f"invalid NETCONF profile name {name!r}")
    found = find_file(f"{name}.yaml", search_path(extra))
    if found is not None:
        return _load_file(found)
    raise ConfigError(
        f"unknown NETCONF profile {name!r}. Available profiles are {available_profiles(extra)!r} "
        f"(searched {[str(d) for d in search_path(extra)]}; add directories with settings.profile_path "
        f"or {ENV_PATH})"
    )


def _load_file(path: Path) -> Profile:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read NETCONF profile {path}: {exc}") from exc
    profile = parse_profile(raw, str(path))
    if profile.name != path.stem:
        raise ConfigError(f"NETCONF profile {path}: name {profile.name!r} must match the file name")
    return profile
