"""Node settings of ``kind: netconf``, validated once at adapter creation.

Topology keys (inherited node -> ``kinds.netconf`` -> ``defaults``)::

    address: 10.0.0.1            # required
    port: 830
    settings:
      profile: ietf-interfaces   # or yuma123, or a partner profile (see profile.py)
      username: root
      hostkey_policy: known_hosts  # known_hosts | pinned | insecure (insecure only when written here)
      known_hosts: path            # default ~/.ssh/known_hosts; relative to the topology file
      pinned_key: "ssh-ed25519 AAAA..."
      timeout_s: 10.0              # per RPC
      connect_timeout_s: 10.0
      poll_interval_s: 2.0         # event polling when the device has no usable notifications
      confirm_timeout_s: 30        # confirmed-commit window (raised to cover the profile's settle time)
      confirmed_commit: true       # use it when advertised
      lock: true                   # lock the target datastore(s) around a change
      interface_map: {uni1: ge-0/0/1}   # topology name -> device name
      profile_path: [my-profiles]  # extra profile directories
    credentials:
      private_key: {file: keys/id_ed25519}   # or {env: NAME} holding the key text
      password: {env: NC_PASSWORD}           # SSH password, or the private key's passphrase
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from interlude.adapters.netconf.session import ConnectParams
from interlude.errors import ConfigError, TopologyError
from interlude.topology.loader import resolve_secret
from interlude.topology.model import NodeSpec


class NetconfSettings(BaseModel):
    """The ``settings`` mapping of a netconf node."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    profile: str = "ietf-interfaces"
    username: str = "root"
    hostkey_policy: Literal["known_hosts", "pinned", "insecure"] = "known_hosts"
    known_hosts: str | None = None
    pinned_key: str | None = None
    timeout_s: float = Field(10.0, gt=0, le=600)
    connect_timeout_s: float = Field(10.0, gt=0, le=600)
    poll_interval_s: float = Field(2.0, gt=0, le=3600)
    confirm_timeout_s: int = Field(30, ge=1, le=3600)
    confirmed_commit: bool = True
    lock: bool = True
    interface_map: dict[str, str] = Field(default_factory=dict)
    profile_path: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _pinned_needs_key(self) -> NetconfSettings:
        if self.hostkey_policy == "pinned" and not self.pinned_key:
            raise ValueError("hostkey_policy 'pinned' needs settings.pinned_key")
        return self


def parse_settings(node: NodeSpec) -> NetconfSettings:
    """Validate ``node.settings``; :class:`TopologyError` points at the key."""
    try:
        return NetconfSettings.model_validate(node.settings)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        msg = "unknown key (not a netconf setting)" if err["type"] == "extra_forbidden" else err["msg"]
        raise TopologyError(msg, f"nodes.{node.name}.settings{'.' + loc if loc else ''}") from None


def connect_params(node: NodeSpec, settings: NetconfSettings, base_dir: Path) -> ConnectParams:
    """Resolve the node's address and secret references into :class:`ConnectParams` (secrets stay private)."""
    if not node.address:
        raise TopologyError(
            "a netconf node needs an address (or a running lab that assigns one)", f"nodes.{node.name}.address"
        )
    creds = node.credentials
    unknown = set(creds) - {"private_key", "password"}
    if unknown:
        raise TopologyError(
            f"unknown credential(s) {sorted(unknown)} (use private_key, password)", f"nodes.{node.name}.credentials"
        )
    password = resolve_secret(creds["password"], base_dir) if "password" in creds else None
    key_file: Path | None = None
    key_material: str | None = None
    if "private_key" in creds:
        ref = creds["private_key"]
        if ref.file is not None:
            resolve_secret(ref, base_dir)  # readable? (SecretError names the reference)
            path = Path(ref.file)
            key_file = path if path.is_absolute() else base_dir / path
        else:
            key_material = resolve_secret(ref, base_dir)
    if password is None and key_file is None and key_material is None:
        raise ConfigError(f"node {node.name!r}: netconf needs credentials.private_key or credentials.password")
    known_hosts: Path | None = None
    if settings.known_hosts:
        known_hosts = Path(settings.known_hosts).expanduser()
        if not known_hosts.is_absolute():
            known_hosts = base_dir / known_hosts
        if settings.hostkey_policy == "known_hosts" and not known_hosts.is_file():
            raise ConfigError(f"node {node.name!r}: known_hosts file {known_hosts} does not exist")
    elif settings.hostkey_policy == "known_hosts":
        default = Path("~/.ssh/known_hosts").expanduser()
        known_hosts = default if default.is_file() else None
    return ConnectParams(
        host=node.address,
        port=node.port or 830,
        username=settings.username,
        hostkey_policy=settings.hostkey_policy,
        known_hosts=known_hosts,
        pinned_key=settings.pinned_key,
        password=password,
        key_file=key_file,
        key_material=key_material,
        connect_timeout_s=settings.connect_timeout_s,
        rpc_timeout_s=settings.timeout_s,
    )
