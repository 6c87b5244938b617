"""Policy checks: may this buyer make this change to this service, within the partner's bounds.

Pure functions over :class:`Policy` values (the topology file's ``policies``, converted by
:func:`interlude.service.inventory.config.policies_of`). Violations are
:class:`~interlude.errors.PolicyViolationError` objects carrying a JSON pointer (``property_path``) to the
buyer's property, so the API can answer a 422 array, or the order runner a ``terminationError``.
"""

from __future__ import annotations

from dataclasses import dataclass

from interlude.domain.model import Service, ServiceChange, ServiceKind
from interlude.errors import PolicyViolationError

# Interface services (UNI/ENNI) carry no policy of their own: the buyer may lock/unlock its own ports.
INTERFACE_MODIFIABLE = frozenset({"administrativeState"})


@dataclass(frozen=True, slots=True)
class Bounds:
    """An inclusive numeric range a policy allows."""

    min: float
    max: float

    def __contains__(self, value: object) -> bool:
        return isinstance(value, int | float) and self.min <= value <= self.max


@dataclass(frozen=True, slots=True)
class Policy:
    """What a buyer may change on the services under one named policy, and within which bounds.

    ``modifiable`` names MEF attributes (``cir``, ``ceVlans``, ...; ``connectivity`` allows new OVCs/IPVCs);
    a bound left None is not restricted.
    """

    name: str = ""
    modifiable: tuple[str, ...] = ()
    cir_mbps: Bounds | None = None
    cbs_bytes: Bounds | None = None
    eir_mbps: Bounds | None = None
    ce_vlans: Bounds | None = None
    max_ce_vlans: int | None = None


def check_change(service: Service, change: ServiceChange, policy: Policy | None) -> list[PolicyViolationError]:
    """Every reason the change is not allowed (empty list: allowed)."""
    errors: list[PolicyViolationError] = []
    if service.kind.is_interface:
        allowed = set(INTERFACE_MODIFIABLE)
    elif policy is None:
        allowed = set()
    else:
        allowed = set(policy.modifiable)
    policy_name = policy.name if policy is not None else "none"
    for attr in change.attributes():
        if attr not in allowed:
            errors.append(
                PolicyViolationError(
                    f"{attr} of {service.kind} {service.id} may not be changed (policy {policy_name!r})",
                    property_path=change.paths.get(attr),
                    code="invalidValue",
                )
            )
    if errors or policy is None:
        return errors
    if change.cir_bps is not None and policy.cir_mbps is not None:
        mbps = change.cir_bps / 1_000_000
        if mbps not in policy.cir_mbps:
            errors.append(
                PolicyViolationError(
                    f"CIR {mbps:g} Mbps is outside the allowed range "
                    f"{policy.cir_mbps.min:g}..{policy.cir_mbps.max:g} Mbps (policy {policy_name!r})",
                    property_path=change.paths.get("cir"),
                )
            )
    if change.cbs_bytes is not None and policy.cbs_bytes is not None and change.cbs_bytes not in policy.cbs_bytes:
        errors.append(
            PolicyViolationError(
                f"CBS {change.cbs_bytes} bytes is outside the allowed range "
                f"{policy.cbs_bytes.min:g}..{policy.cbs_bytes.max:g} bytes (policy {policy_name!r})",
                property_path=change.paths.get("cbs"),
            )
        )
    if change.eir_bps is not None and policy.eir_mbps is not None and change.eir_bps / 1e6 not in policy.eir_mbps:
        errors.append(
            PolicyViolationError(
                f"EIR outside {policy.eir_mbps.min:g}..{policy.eir_mbps.max:g} Mbps (policy {policy_name!r})",
                property_path=change.paths.get("eir"),
            )
        )
    if change.ce_vlans is not None:
        path = change.paths.get("ceVlans")
        if not change.ce_vlans:
            errors.append(PolicyViolationError("the CE-VLAN list may not be empty", property_path=path))
        if policy.max_ce_vlans is not None and len(change.ce_vlans) > policy.max_ce_vlans:
            errors.append(
                PolicyViolationError(
                    f"{len(change.ce_vlans)} CE-VLANs exceed the maximum of {policy.max_ce_vlans}",
                    property_path=path,
                )
            )
        if policy.ce_vlans is not None:
            bad = [v for v in change.ce_vlans if v not in policy.ce_vlans]
            if bad:
                errors.append(
                    PolicyViolationError(
                        f"CE-VLAN(s) {bad} outside the allowed range {policy.ce_vlans.min:g}..{policy.ce_vlans.max:g}",
                        property_path=path,
                    )
                )
    if change.ce_vlans is not None and service.kind is ServiceKind.IPVC:
        errors.append(PolicyViolationError("an IPVC has no CE-VLAN map", property_path=change.paths.get("ceVlans")))
    return errors


def check_new_connectivity(policy: Policy | None, cir_bps: int | None, path: str | None) -> list[PolicyViolationError]:
    """Bounds for a new OVC/IPVC's bandwidth (creating one needs ``connectivity`` in the policy)."""
    if policy is None:
        return []
    errors: list[PolicyViolationError] = []
    if cir_bps is not None and policy.cir_mbps is not None and cir_bps / 1e6 not in policy.cir_mbps:
        errors.append(
            PolicyViolationError(
                f"CIR {cir_bps / 1e6:g} Mbps is outside the allowed range "
                f"{policy.cir_mbps.min:g}..{policy.cir_mbps.max:g} Mbps (policy {policy.name!r})",
                property_path=path,
            )
        )
    return errors
