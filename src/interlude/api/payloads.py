"""MEF service payloads (``serviceConfiguration``) for our domain services, both directions.

Rendering: each :class:`~interlude.domain.model.ServiceKind` maps to one MEF service schema whose ``$id`` is
the ``@type`` (Carrier Ethernet operator OVC / OVC End Point / Operator UNI / ENNI Service, IP IPVC / IPVC End
Point / IP UNI, from the Legato service schemas). ``administrativeState`` and the live ``operationalState``
are in every payload (the IP schemas have none; we add the CE types as MEF 135's example does).

Parsing a ``modify``: the buyer sends the payload (whole, as read from the inventory, or only the parts it
changes). The attributes we can change are taken out by path (admin state, ingress bandwidth profile, CE-VLAN
map); every other submitted leaf must equal the current value, else a 422 says that attribute cannot be
changed. ``operationalState`` is read-only and ignored.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from interlude.domain.model import AdminStatus, Service, ServiceChange, ServiceKind
from interlude.errors import ValidationError
from interlude.service.inventory.service import service_href

TYPE_URNS: dict[ServiceKind, str] = {
    ServiceKind.OVC: "urn:mef:lso:spec:legato:carrier-ethernet-ovc:v0.0.1:all",
    ServiceKind.OVC_END_POINT: "urn:mef:lso:spec:legato:carrier-ethernet-ovc-end-point:v0.0.1:all",
    ServiceKind.OPERATOR_UNI: "urn:mef:lso:spec:legato:carrier-ethernet-operator-uni:v0.0.1:all",
    ServiceKind.ENNI_SERVICE: "urn:mef:lso:spec:legato:carrier-ethernet-enni-service:v0.0.1:all",
    ServiceKind.IPVC: "urn:mef:lso:spec:legato:ipvc:v0.0.4:all",
    ServiceKind.IPVC_END_POINT: "urn:mef:lso:spec:legato:ipvc-end-point:v0.0.4:all",
    ServiceKind.IP_UNI: "urn:mef:lso:spec:legato:ip-uni:v0.0.4:all",
}
KIND_BY_URN = {urn: kind for kind, urn in TYPE_URNS.items()}


def kind_of_urn(urn: object) -> ServiceKind | None:
    """The kind for an ``@type`` (accepting the ``interlude`` spelling of the same URN)."""
    if not isinstance(urn, str):
        return None
    return KIND_BY_URN.get(urn.replace(":interlude:", ":legato:"))


def information_rate(bps: int) -> dict[str, Any]:
    """MEF ``InformationRate`` in the largest exact unit."""
    for unit, factor in (("GBPS", 10**9), ("MBPS", 10**6), ("KBPS", 10**3)):
        if bps % factor == 0 and bps >= factor:
            return {"irValue": bps // factor, "irUnits": unit}
    return {"irValue": bps, "irUnits": "BPS"}


_IR_FACTORS = {"BPS": 1, "KBPS": 10**3, "MBPS": 10**6, "GBPS": 10**9, "TBPS": 10**12}
_DS_FACTORS = {"BYTES": 1, "KBYTES": 10**3, "MBYTES": 10**6, "GBYTES": 10**9}


def parse_information_rate(value: object, path: str) -> int:
    """bits/s from an ``InformationRate`` object."""
    if not isinstance(value, Mapping):
        raise ValidationError("an InformationRate object {irValue, irUnits} is expected", path, "invalidFormat")
    ir, units = value.get("irValue"), value.get("irUnits", "BPS")
    if not isinstance(ir, int | float) or isinstance(ir, bool) or ir < 0:
        raise ValidationError("irValue must be a number >= 0", f"{path}/irValue", "invalidFormat")
    if units not in _IR_FACTORS:
        raise ValidationError(f"irUnits must be one of {list(_IR_FACTORS)}", f"{path}/irUnits", "invalidValue")
    return round(ir * _IR_FACTORS[units])


def parse_data_size(value: object, path: str) -> int:
    """Bytes from a ``DataSize`` object."""
    if not isinstance(value, Mapping):
        raise ValidationError("a DataSize object {dataSizeValue, dataSizeUnits} is expected", path, "invalidFormat")
    size, units = value.get("dataSizeValue"), value.get("dataSizeUnits", "BYTES")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ValidationError("dataSizeValue must be an integer >= 0", f"{path}/dataSizeValue", "invalidFormat")
    if units not in _DS_FACTORS:
        raise ValidationError(f"dataSizeUnits must be one of {list(_DS_FACTORS)}", f"{path}/dataSizeUnits")
    return size * _DS_FACTORS[units]


def _vlan_list(values: tuple[int, ...]) -> dict[str, Any]:
    return {"type": "LIST", "vlanIdList": list(values)}


def _states(svc: Service) -> dict[str, Any]:
    return {"administrativeState": {"state": svc.admin.value}, "operationalState": {"state": svc.oper.value}}


def _bwp_flow(svc: Service) -> dict[str, Any]:
    return {
        "cir": information_rate(svc.cir_bps or 0),
        "cbs": {"dataSizeValue": svc.cbs_bytes or 0, "dataSizeUnits": "BYTES"},
        "eir": information_rate(svc.eir_bps or 0),
        "ebs": {"dataSizeValue": 0, "dataSizeUnits": "BYTES"},
        "couplingFlag": False,
        "colorMode": {"value": "COLOR_BLIND"},
    }


def _external_interface(svc: Service, mtu: int) -> dict[str, Any]:
    return {
        **_states(svc),
        "externalInterfaceFrameFormat": {"type": "ETHERNET"},
        "linkOam": "DISABLED",
        "lagLinkMeg": "DISABLED",
        "meg": "ENABLED",
        "maximumFrameSize": mtu,
        "linkAggregation": "NONE",
    }


def render_configuration(svc: Service, mtu: int = 1522) -> dict[str, Any]:
    """The MEF ``serviceConfiguration`` of a service."""
    urn = TYPE_URNS[svc.kind]
    k = svc.kind
    if k is ServiceKind.OVC:
        body: dict[str, Any] = {
            "identifier": svc.id[:45], "ovcType": "POINT_TO_POINT", "maximumNumberOfUniOvcEndPoints": 1,
            "maximumNumberOfEnniOvcEndPoints": 1, "ceVlanIdPreservation": "PRESERVE",
            "svlanPcpPreservation": "ENABLED", "svlanDeiPreservation": "ENABLED",
            "l2cpAddressSet": {"bridgedAddresses": "CTB"}, **_states(svc), "cTagPcpPreservation": "ENABLED",
            "cTagDeiPreservation": "ENABLED", "connectionType": "POINT_TO_POINT",
            "frameDisposition": {"unicast": "UNCONDITIONALLY", "multicast": "CONDITIONALLY",
                                 "broadcast": "CONDITIONALLY"},
            "listOfCosNames": ["H"], "maximumFrameSize": mtu,
        }  # fmt: skip
    elif k is ServiceKind.OVC_END_POINT:
        if svc.role == "enni":
            epmap: dict[str, Any] = {
                "ovcEndPointMapForm": "FORM_E",
                "ovcEndPointMapFormE": [{"sVlanIdList": _vlan_list((svc.s_vlan,) if svc.s_vlan else ())}],
            }
        else:
            epmap = {
                "ovcEndPointMapForm": "FORM_U",
                "ovcEndPointMapFormU": [{"ceVlanIdList": _vlan_list(svc.ce_vlans)}],
            }
        body = {
            "identifier": svc.id[:45], "role": "ROOT", "endPointMap": epmap,
            "egressEquivalenceClassIdentifier": {"eecMappingType": {"value": "PCP"}, "eecMapping": [{"eecName": "H"}]},
            "maintenanceIntermediatePoint": "DISABLED", **_states(svc),
            "ingressClassOfServiceMap": {"cosMappingType": {"value": "END_POINT"}, "cosMapping": [{"cosName": "H"}]},
            "colorMap": {"colorFieldType": {"value": "END_POINT"}},
        }  # fmt: skip
        if svc.cir_bps is not None:
            body["ingressBandwidthProfilePerEndPoint"] = _bwp_flow(svc)
    elif k is ServiceKind.OPERATOR_UNI:
        body = {
            "identifier": svc.id[:45], **_external_interface(svc, mtu), "maximumNumberOfEndPoints": 16,
            "maxNumOfCtagVlanIdsPerEndPoint": 16, "tokenShare": "DISABLED",
            "l2cpAddressSet": {"bridgedAddresses": "CTB"}, "numberOfLinks": 1,
        }  # fmt: skip
    elif k is ServiceKind.ENNI_SERVICE:
        body = {
            "operatorEnnIdentifier": svc.id[:45], "svlanIdControl": {"value": "FULL"}, "maximumNumberOfOvcs": 4094,
            "maximumNumberOfOvcEndPointsPerOvc": 1, "tokenShare": "DISABLED", **_external_interface(svc, mtu),
        }  # fmt: skip
    elif k is ServiceKind.IPVC:
        body = {
            "ipvcIdentifier": svc.id[:53], "ipvcTopology": "CLOUD_ACCESS", "packetDelivery": "STANDARD_ROUTING",
            "dscpPreservation": "DISABLED", "maximumTransferUnit": 1500, "fragmentation": "DISABLED",
            "reservedPrefixes": [], "listOfClassOfServiceNames": ["BEST_EFFORT"], **_states(svc),
        }  # fmt: skip
    elif k is ServiceKind.IPVC_END_POINT:
        body = {"identifier": svc.id[:53], "eiType": "UNI", "role": "ROOT", **_states(svc)}
        if svc.ip_prefix:
            address, _, length = svc.ip_prefix.partition("/")
            body["prefixMapping"] = {"ipv4Prefix": {"ipv4Address": address, "prefixLength": int(length or 32)}}
        if svc.cir_bps is not None:
            body["ingressBwpEnvelope"] = {
                "maxIrE": information_rate(svc.cir_bps),
                "ipvcEpIngressBwpAll": {"cir": information_rate(svc.cir_bps), "maxIr": information_rate(svc.cir_bps)},
            }
    else:  # IP UNI
        body = {
            "identifier": svc.id[:53], "managementType": "PROVIDER_MANAGEMENT",
            "reversePathForwarding": "DISABLED", **_states(svc),
        }  # fmt: skip
    return {"@type": urn, **body}


_RELATION_TO_PARENT = {
    ("ovcEndPoint", "uni"): "UNI_ENDPOINT_OF_OVC",
    ("ovcEndPoint", "enni"): "ENNI_ENDPOINT_OF_OVC",
    ("ipvcEndPoint", "uni"): "IPUNI_ENDPOINT_OF_IPVC",
}
_RELATION_TO_INTERFACE = {
    ServiceKind.OPERATOR_UNI: "CONNECTS_TO_OPERATOR_UNI",
    ServiceKind.ENNI_SERVICE: "CONNECTS_TO_ENNI",
    ServiceKind.IP_UNI: "CONNECTS_TO_IPUNI",
}


def render_service(svc: Service, interface_kind: ServiceKind | None = None, mtu: int = 1522) -> dict[str, Any]:
    """The MEF inventory ``Service`` (``interface_kind``: kind of the service ``connects_to`` points at)."""
    out: dict[str, Any] = {
        "id": svc.id,
        "href": service_href(svc.id),
        "serviceType": svc.service_type,
        "state": svc.state.value,
        "serviceConfiguration": render_configuration(svc, mtu),
    }
    if svc.description:
        out["description"] = svc.description
    for key, value in (
        ("externalId", svc.external_id), ("serviceDate", svc.service_date), ("startDate", svc.start_date),
        ("endDate", svc.end_date), ("startMode", svc.start_mode),
    ):  # fmt: skip
        if value is not None:
            out[key] = value
    rels: list[dict[str, Any]] = []
    if svc.parent is not None:
        rtype = _RELATION_TO_PARENT.get((svc.kind.value, svc.role or "uni"), "ENDPOINT_OF")
        rels.append({"relationshipType": rtype, "service": {"id": svc.parent, "href": service_href(svc.parent)}})
    if svc.connects_to is not None:
        rtype = _RELATION_TO_INTERFACE.get(interface_kind or ServiceKind.OPERATOR_UNI, "CONNECTS_TO_OPERATOR_UNI")
        if svc.role == "enni":
            rtype = "CONNECTS_TO_ENNI"
        rels.append(
            {"relationshipType": rtype, "service": {"id": svc.connects_to, "href": service_href(svc.connects_to)}}
        )
    if rels:
        out["serviceRelationship"] = rels
    if svc.order_items:
        out["serviceOrderItem"] = [
            {"itemId": item, "serviceOrderId": order,
             "serviceOrderHref": f"/mefApi/interlude/serviceOrderingManagement/v1/serviceOrder/{order}"}
            for order, item in svc.order_items
        ]  # fmt: skip
    return out


# Parsing ------------------------------------------------------------------------------------------------


def _pop(tree: dict[str, Any], path: tuple[str | int, ...]) -> tuple[bool, Any]:
    """Remove and return the value at ``path`` (False if absent)."""
    node: Any = tree
    for step in path[:-1]:
        if isinstance(step, int):
            if not isinstance(node, list) or len(node) <= step:
                return False, None
        elif not isinstance(node, dict) or step not in node:
            return False, None
        node = node[step]
    last = path[-1]
    if isinstance(last, int):
        if isinstance(node, list) and len(node) > last:
            return True, node[last]
        return False, None
    if isinstance(node, dict) and last in node:
        return True, node.pop(last)
    return False, None


def _leaves(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, sub in value.items():
            yield from _leaves(sub, f"{prefix}/{str(key).replace('~', '~0').replace('/', '~1')}")
    elif isinstance(value, list):
        yield prefix, value if not any(isinstance(v, dict | list) for v in value) else None
        if any(isinstance(v, dict | list) for v in value):
            for i, sub in enumerate(value):
                yield from _leaves(sub, f"{prefix}/{i}")
    else:
        yield prefix, value


def _lookup(tree: Any, pointer: str) -> tuple[bool, Any]:
    node = tree
    for raw in pointer.split("/")[1:]:
        step = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and step in node:
            node = node[step]
        elif isinstance(node, list) and step.isdigit() and int(step) < len(node):
            node = node[int(step)]
        else:
            return False, None
    return True, node


def _vlans(value: object, path: str) -> tuple[int, ...]:
    if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise ValidationError("vlanIdList must be a list of VLAN ids", path, "invalidFormat")
    bad = [v for v in value if not 1 <= v <= 4094]
    if bad:
        raise ValidationError(f"VLAN ids {bad} outside 1..4094", path, "invalidValue")
    return tuple(value)


def extract_change(svc: Service, config: object, base: str, mtu: int = 1522) -> ServiceChange:
    """The :class:`ServiceChange` a ``modify`` payload asks for (see module docstring)."""
    if not isinstance(config, dict):
        raise ValidationError("serviceConfiguration must be an object", base, "invalidFormat")
    expected = TYPE_URNS[svc.kind]
    if kind_of_urn(config.get("@type")) is not svc.kind:
        raise ValidationError(
            f"@type {config.get('@type')!r} does not match service {svc.id!r} (expected {expected!r})",
            f"{base}/@type",
            "invalidValue",
        )
    submitted = {k: v for k, v in config.items() if k != "@type"}
    current = render_configuration(svc, mtu)
    current.pop("@type")
    change = ServiceChange()
    # administrativeState (and the defective 'adminState' alias some MEF schemas require)
    for key in ("administrativeState", "adminState"):
        found, value = _pop(submitted, (key,))
        current.pop(key, None)
        if found:
            path = f"{base}/{key}/state"
            state = value.get("state") if isinstance(value, dict) else None
            if state not in ("LOCKED", "UNLOCKED"):
                raise ValidationError("state must be LOCKED or UNLOCKED", path, "invalidValue")
            if AdminStatus(state) is not svc.admin:
                change.admin = AdminStatus(state)
                change.paths["administrativeState"] = path
    submitted.pop("operationalState", None)
    current.pop("operationalState", None)
    if svc.kind is ServiceKind.OVC_END_POINT:
        bwp = ("ingressBandwidthProfilePerEndPoint",)
        for attr, sub, parser in (("cir", "cir", parse_information_rate), ("cbs", "cbs", parse_data_size),
                                  ("eir", "eir", parse_information_rate)):  # fmt: skip
            found, value = _pop(submitted, (*bwp, sub))
            _pop(current, (*bwp, sub))
            if found:
                path = f"{base}/ingressBandwidthProfilePerEndPoint/{sub}"
                parsed = parser(value, path)
                old = {"cir": svc.cir_bps, "cbs": svc.cbs_bytes, "eir": svc.eir_bps or 0}[attr]
                if parsed != old:
                    setattr(change, {"cir": "cir_bps", "cbs": "cbs_bytes", "eir": "eir_bps"}[attr], parsed)
                    change.paths[attr] = path
        vl = ("endPointMap", "ovcEndPointMapFormU", 0, "ceVlanIdList", "vlanIdList")
        found, value = _pop(submitted, vl)
        _pop(current, vl)
        if found:
            path = f"{base}/endPointMap/ovcEndPointMapFormU/0/ceVlanIdList/vlanIdList"
            vlans = _vlans(value, path)
            if svc.role == "enni":
                raise ValidationError("an ENNI end point has no CE-VLAN map", path, "invalidValue")
            if vlans != svc.ce_vlans:
                change.ce_vlans = vlans
                change.paths["ceVlans"] = path
    if svc.kind is ServiceKind.IPVC_END_POINT:
        cir_path: tuple[str | int, ...] = ("ingressBwpEnvelope", "ipvcEpIngressBwpAll", "cir")
        found, value = _pop(submitted, cir_path)
        _pop(current, cir_path)
        if found:
            path = f"{base}/ingressBwpEnvelope/ipvcEpIngressBwpAll/cir"
            parsed = parse_information_rate(value, path)
            if parsed != svc.cir_bps:
                change.cir_bps = parsed
                change.paths["cir"] = path
        # maxIr / maxIrE follow the CIR: accept them without treating them as separate changes.
        for follower in (("ingressBwpEnvelope", "ipvcEpIngressBwpAll", "maxIr"), ("ingressBwpEnvelope", "maxIrE")):
            _pop(submitted, follower)
            _pop(current, follower)
    errors: list[ValidationError] = []
    for pointer, value in _leaves(submitted):
        if value is None:
            continue
        present, old = _lookup(current, pointer)
        if not present:
            errors.append(
                ValidationError(
                    f"{pointer.lstrip('/')} is not an attribute of this {svc.kind} that can be set",
                    f"{base}{pointer}",
                    "unexpectedProperty",
                )
            )
        elif old != value:
            errors.append(
                ValidationError(f"{pointer.lstrip('/')} cannot be changed (current value {old!r})", f"{base}{pointer}")
            )
    if errors:
        raise _Many(errors)
    return change


class _Many(ValidationError):
    """Several payload problems at once (raised as one, unpacked by the API)."""

    def __init__(self, errors: list[ValidationError]) -> None:
        super().__init__("; ".join(str(e) for e in errors), errors[0].property_path, errors[0].code)
        self.errors = errors


def unpack(exc: ValidationError) -> list[ValidationError]:
    """The individual problems of a (possibly aggregated) validation error."""
    return list(exc.errors) if isinstance(exc, _Many) else [exc]


def extract_end_point(config: Mapping[str, Any], kind: ServiceKind, base: str) -> dict[str, Any]:
    """CE-VLANs, S-VLAN and bandwidth of a new end point's payload."""
    out: dict[str, Any] = {"paths": {}}
    if kind is ServiceKind.OVC_END_POINT:
        epmap = config.get("endPointMap")
        if isinstance(epmap, dict):
            u = epmap.get("ovcEndPointMapFormU")
            if isinstance(u, list) and u and isinstance(u[0], dict):
                path = f"{base}/endPointMap/ovcEndPointMapFormU/0/ceVlanIdList/vlanIdList"
                out["ce_vlans"] = _vlans((u[0].get("ceVlanIdList") or {}).get("vlanIdList", []), path)
                out["paths"]["ceVlans"] = path
            e = epmap.get("ovcEndPointMapFormE")
            if isinstance(e, list) and e and isinstance(e[0], dict):
                path = f"{base}/endPointMap/ovcEndPointMapFormE/0/sVlanIdList/vlanIdList"
                s = _vlans((e[0].get("sVlanIdList") or {}).get("vlanIdList", []), path)
                if len(s) != 1:
                    raise ValidationError("give exactly one S-VLAN for an ENNI end point", path, "invalidValue")
                out["s_vlan"] = s[0]
                out["paths"]["sVlan"] = path
            v = epmap.get("ovcEndPointMapFormV")
            if isinstance(v, list) and v and isinstance(v[0], dict) and "sVlan" in v[0]:
                path = f"{base}/endPointMap/ovcEndPointMapFormV/0/sVlan"
                out["s_vlan"] = _vlans([v[0]["sVlan"]], path)[0]
                out["paths"]["sVlan"] = path
        bwp = config.get("ingressBandwidthProfilePerEndPoint")
        if isinstance(bwp, dict):
            if "cir" in bwp:
                path = f"{base}/ingressBandwidthProfilePerEndPoint/cir"
                out["cir_bps"] = parse_information_rate(bwp["cir"], path)
                out["paths"]["cir"] = path
            if "cbs" in bwp:
                out["cbs_bytes"] = parse_data_size(bwp["cbs"], f"{base}/ingressBandwidthProfilePerEndPoint/cbs")
    else:
        env = config.get("ingressBwpEnvelope")
        if isinstance(env, dict) and isinstance(env.get("ipvcEpIngressBwpAll"), dict):
            flow = env["ipvcEpIngressBwpAll"]
            if "cir" in flow:
                path = f"{base}/ingressBwpEnvelope/ipvcEpIngressBwpAll/cir"
                out["cir_bps"] = parse_information_rate(flow["cir"], path)
                out["paths"]["cir"] = path
    return out
