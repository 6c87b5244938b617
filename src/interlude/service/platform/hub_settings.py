"""The hub and notifier settings: ``hub.<name>`` in ``RuntimeOptions.extra`` or ``INTERLUDE_HUB_<NAME>``.

========================================  ==========  =================================================
setting                                   default     meaning
========================================  ==========  =================================================
``allow_private_callbacks``               see below   loopback and private listener addresses allowed
``allowed_callback_networks``             (none)      ranges allowed anyway (``10.9.0.0/16,fd00::/8``)
``max_registrations_per_buyer``           50          hub registrations of one buyer, all APIs together
``max_pending_per_subscription``          10000       undelivered events kept for a failing listener
``outbox_retention_s``                    86400       delivered (or abandoned) rows kept this long
``listener_credentials``                  (none)      per-buyer client credentials file (secured listeners)
``delivery_batch``                        64          events sent to one listener per claim, in order
``per_host_concurrency``                  32          requests in flight to one listener host
``mark_failing_after``                    5           failed attempts before a listener is reported failing
``listener_ca_file``                      (system)    CA bundle that https listeners' certificates are checked
                                                      against (labs with their own CA); never unchecked
========================================  ==========  =================================================

``allow_private_callbacks`` defaults to on when every node of the topology is emulated or part of a lab
(listeners there are local by nature) and off otherwise; counts and times accept ``none`` to switch a
bound off.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from interlude.errors import ConfigError
from interlude.service.platform.callbacks import CallbackPolicy, IPNetwork, parse_networks
from interlude.service.platform.listener_tokens import ListenerTokens, load_credentials
from interlude.service.platform.settings import Setting, given_settings
from interlude.topology.model import Topology

_VARIABLES = {
    name: f"INTERLUDE_HUB_{name.upper()}"
    for name in (
        "allow_private_callbacks", "allowed_callback_networks", "max_registrations_per_buyer",
        "max_pending_per_subscription", "outbox_retention_s", "listener_credentials", "delivery_batch",
        "per_host_concurrency", "mark_failing_after", "listener_ca_file",
    )
}  # fmt: skip
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def _flag(setting: Setting) -> bool:
    raw = str(setting.raw).strip().lower() if not isinstance(setting.raw, bool) else str(setting.raw).lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise ConfigError(f"{setting.where} must be yes or no, not {setting.raw!r}")


def _networks(setting: Setting) -> tuple[IPNetwork, ...]:
    raw = setting.raw if isinstance(setting.raw, list | tuple | str) else str(setting.raw)
    try:
        return parse_networks(raw)
    except ValueError as exc:
        raise ConfigError(f"{setting.where}: {exc}") from None


@dataclass(frozen=True, slots=True)
class HubSettings:
    """The settings (module docstring), read once at start."""

    allow_private_callbacks: bool = False
    allowed_callback_networks: tuple[IPNetwork, ...] = field(default_factory=tuple)
    max_registrations_per_buyer: int | None = 50
    max_pending_per_subscription: int | None = 10_000
    outbox_retention_s: float | None = 86_400.0
    listener_credentials: Path | None = None
    delivery_batch: int = 64
    per_host_concurrency: int = 32
    mark_failing_after: int = 5
    listener_ca_file: Path | None = None

    @property
    def policy(self) -> CallbackPolicy:
        """The callback policy these settings describe."""
        return CallbackPolicy(self.allow_private_callbacks, self.allowed_callback_networks)

    def listener_tokens(self) -> ListenerTokens | None:
        """The token source for secured listeners (None: no credentials file configured)."""
        if self.listener_credentials is None:
            return None
        return ListenerTokens(load_credentials(self.listener_credentials), ssl=self.tls())

    def tls(self) -> ssl.SSLContext:
        """How https listeners (and token endpoints) are verified: the system CAs, or ``listener_ca_file``."""
        try:
            return ssl.create_default_context(cafile=str(self.listener_ca_file) if self.listener_ca_file else None)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"hub.listener_ca_file {self.listener_ca_file}: {exc}") from None

    @classmethod
    def for_topology(cls, topology: Topology, extra: Mapping[str, object] | None = None) -> HubSettings:
        """The settings of a partner serving ``topology``, local or not.

        Local (an emulator, or a lab that assigns every address) when each node is emulated or has no
        address of its own.
        """
        local = all(node.kind == "emulated" or not node.address for node in topology.nodes.values())
        return cls.from_settings(extra, local=local)

    @classmethod
    def from_settings(
        cls, extra: Mapping[str, object] | None = None, env: Mapping[str, str] | None = None, *, local: bool = False
    ) -> HubSettings:
        """Read the settings; ``local`` (an emulated or lab topology) allows private callbacks by default."""
        values: dict[str, object] = {"allow_private_callbacks": local}
        for s in given_settings("hub", _VARIABLES, extra, env):
            if s.name == "allow_private_callbacks":
                values[s.name] = _flag(s)
            elif s.name == "allowed_callback_networks":
                values[s.name] = _networks(s)
            elif s.name in ("listener_credentials", "listener_ca_file"):
                values[s.name] = None if s.disabled else Path(str(s.raw))
            elif s.name == "outbox_retention_s":
                values[s.name] = None if s.disabled else s.seconds(above_zero=True, strict=True)
            elif s.name in ("max_registrations_per_buyer", "max_pending_per_subscription"):
                values[s.name] = None if s.disabled else s.count()
            else:
                values[s.name] = s.count()
        return cls(**values)  # type: ignore[arg-type]
