"""Performance Monitoring v5: validating profile values and job requests, resolving a job into its plan.

See :mod:`interlude.service.performance.common` for how the PM service is split.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from interlude.domain.model import Service, parse_iso
from interlude.domain.pm import (
    CE_SOAM_CONFIG,
    TCA_METRICS,
    seconds,
)
from interlude.domain.southbound import Capability
from interlude.service.oamjobs.ipmeasure import IpParams, service_points
from interlude.service.performance.common import (
    DEFAULT_FRAMES,
    DEFAULT_PERIOD_MS,
    DEFAULT_TOOLS,
    MIN_GRANULARITY_S,
    PAST_TOLERANCE_S,
    PROFILES,
    PmDeps,
    Problems,
    duration_ok,
)
from interlude.service.performance.payloads import validate_configuration

log = logging.getLogger(__name__)


class PmPlanner:
    """Validation of profile values and job requests, and their resolution into a plan.

    It reads profiles, the inventory and the topology, and asks the network gateway what each node's adapter
    can do, so a job its nodes could never run is refused when it is requested, not when it first measures.
    """

    def __init__(self, deps: PmDeps) -> None:
        self.store = deps.store
        self.inventory = deps.inventory
        self.topology = deps.topology
        self.network = deps.network

    def check_profile_values(self, body: Mapping[str, Any], base: str, errors: Problems, *, partial: bool) -> None:
        """Add the problems of profile values (a profile, a job's own values, or a patch when ``partial``)."""
        required = (
            "granularity",
            "jobType",
            "outputFormat",
            "reportingPeriod",
            "resultFormat",
            "serviceSpecificConfiguration",
        )
        if not partial:
            for name in required:
                if name not in body:
                    errors.add(f"'{name}' is required", f"{base}/{name}", "missingProperty")
        gran = body.get("granularity")
        g_s: float | None = None
        for name in ("granularity", "reportingPeriod"):
            value = body.get(name)
            if value is None:
                continue
            if not duration_ok(value):
                errors.add(
                    f"{name} must be a TimeDuration {{timeDurationValue, timeDurationUnits}}",
                    f"{base}/{name}",
                    "invalidFormat",
                )
                continue
            if seconds(value) <= 0:
                errors.add(f"{name} must be positive", f"{base}/{name}")
        if gran is not None and duration_ok(gran):
            g_s = seconds(gran)
            if g_s < MIN_GRANULARITY_S:
                errors.add(f"granularity must be at least {MIN_GRANULARITY_S:g} s", f"{base}/granularity")
        rep = body.get("reportingPeriod")
        if g_s and rep is not None and duration_ok(rep):
            r_s = seconds(rep)
            if r_s < g_s or abs(r_s / g_s - round(r_s / g_s)) > 1e-6:
                errors.add("reportingPeriod must be a whole multiple of granularity", f"{base}/reportingPeriod")
        if "jobType" in body and body["jobType"] not in ("proactive", "on-demand", "passive"):
            errors.add("jobType must be proactive, on-demand or passive", f"{base}/jobType")
        if "outputFormat" in body and body["outputFormat"] != "json":
            errors.add("only outputFormat 'json' is supported", f"{base}/outputFormat")
        if "resultFormat" in body and body["resultFormat"] != "payload":
            errors.add("only resultFormat 'payload' is supported (reports carry their data)", f"{base}/resultFormat")
        if "jobPriority" in body and (
            not isinstance(body["jobPriority"], int) or isinstance(body["jobPriority"], bool)
        ):
            errors.add("jobPriority must be an integer", f"{base}/jobPriority", "invalidFormat")
        if "serviceSpecificConfiguration" in body:
            errors.extend(
                validate_configuration(body["serviceSpecificConfiguration"], f"{base}/serviceSpecificConfiguration")
            )

    # Jobs: validation and planning ------------------------------------------------------------------------------

    async def resolve(self, body: Mapping[str, Any], buyer: str | None, errors: Problems) -> dict[str, Any]:
        """Validate a job request and resolve it into a plan (the MEPs, ports and timings it runs)."""
        topo = self.topology
        values: dict[str, Any] = {}
        profile_id: str | None = None
        prof = body.get("performanceProfile")
        if not isinstance(prof, Mapping):
            errors.add("performanceProfile is required", "/performanceProfile", "missingProperty")
        elif prof.get("@type") == "PerformanceProfileRef":
            profile_id = prof.get("performanceProfileId")
            doc = await self.store.get_document(PROFILES, str(profile_id)) if profile_id else None
            if doc is None or (buyer is not None and doc.buyer != buyer):
                errors.add(
                    f"no performance profile {profile_id!r}",
                    "/performanceProfile/performanceProfileId",
                    "referenceNotFound",
                )
            else:
                values = dict(doc.body["mef"])
        elif prof.get("@type") == "PerformanceProfileValue":
            self.check_profile_values(prof, "/performanceProfile", errors, partial=False)
            values = dict(prof)
        else:
            errors.add(
                "performanceProfile @type must be PerformanceProfileRef or PerformanceProfileValue",
                "/performanceProfile/@type",
            )
        sched = body.get("scheduleDefinition")
        now = time.time()
        start, end = now, None
        if not isinstance(sched, Mapping):
            errors.add("scheduleDefinition is required", "/scheduleDefinition", "missingProperty")
            sched = {}
        if "recurringSchedule" in sched:
            errors.add(
                "recurringSchedule is not supported: a proactive job measures every granularity from its start",
                "/scheduleDefinition/recurringSchedule",
                "unexpectedProperty",
            )
        for name in ("scheduleDefinitionStartTime", "scheduleDefinitionEndTime"):
            if name in sched:
                try:
                    dt = parse_iso(str(sched[name]))
                except ValueError:
                    dt = None
                if dt is None:
                    errors.add(f"{name} is not an ISO-8601 date-time", f"/scheduleDefinition/{name}", "invalidFormat")
                    continue
                if name.endswith("StartTime"):
                    start = dt.timestamp()
                else:
                    end = dt.timestamp()
        if start < now - PAST_TOLERANCE_S:
            errors.add("scheduleDefinitionStartTime is in the past", "/scheduleDefinition/scheduleDefinitionStartTime")
        start = max(start, now)
        if "executionDuration" in sched:
            if not duration_ok(sched["executionDuration"]) or seconds(sched["executionDuration"]) <= 0:
                errors.add("executionDuration must be a positive TimeDuration", "/scheduleDefinition/executionDuration")
            else:
                dur_end = start + seconds(sched["executionDuration"])
                end = dur_end if end is None else min(end, dur_end)
        if end is not None and end <= start:
            errors.add("the schedule ends before it starts", "/scheduleDefinition/scheduleDefinitionEndTime")
        if values.get("jobType") == "on-demand" and end is None:
            errors.add(
                "an on-demand job needs scheduleDefinitionEndTime or executionDuration",
                "/scheduleDefinition",
                "missingProperty",
            )

        plan: dict[str, Any] = {
            "profile_id": profile_id,
            "start": start,
            "end": end,
            "service_id": None,
            "pairs": [],
            "ports": [],
            "tools": [],
            "tca": [],
            "percentile": 99.0,
            "availability": {},
        }
        if values.get("granularity") and duration_ok(values["granularity"]):
            plan["granularity_s"] = seconds(values["granularity"])
            rep = values.get("reportingPeriod")
            plan["report_every"] = (
                max(1, round(seconds(rep) / plan["granularity_s"])) if rep and duration_ok(rep) else 1
            )
        config = values.get("serviceSpecificConfiguration")
        plan["config"] = config
        mo = body.get("monitoredObject")
        if not isinstance(mo, Mapping):
            errors.add("monitoredObject is required", "/monitoredObject", "missingProperty")
            return plan
        service = None
        mo_type = mo.get("@type")
        if mo_type == "ServiceRef":
            sid = str(mo.get("serviceId", ""))
            service = self.inventory.indexed(sid)
            if service is None or (buyer is not None and service.buyer != buyer):
                errors.add(f"no service {sid!r}", "/monitoredObject/serviceId", "referenceNotFound")
                return plan
        elif mo_type == "ServiceFromToRef":
            ids = (
                str((mo.get("serviceFrom") or {}).get("serviceFromId", "")),
                str((mo.get("serviceTo") or {}).get("serviceToId", "")),
            )
            meps = [self._mep_of(i) for i in ids]
            for i, (mep_id, mep) in enumerate(zip(ids, meps, strict=True)):
                side = ("serviceFrom/serviceFromId", "serviceTo/serviceToId")[i]
                if mep is None:
                    errors.add(
                        f"{mep_id!r} is neither a MEP nor an end point with a MEP",
                        f"/monitoredObject/{side}",
                        "referenceNotFound",
                    )
            if any(m is None for m in meps):
                return plan
            owners = [self._service_of_mep(str(m)) for m in meps]
            service = self.inventory.indexed(owners[0]) if owners[0] and owners[0] == owners[1] else None
            if service is None or (buyer is not None and service.buyer != buyer):
                errors.add(
                    "the two end points do not belong to one service of yours", "/monitoredObject", "referenceNotFound"
                )
                return plan
            plan["pairs"] = [[str(meps[0]), str(meps[1])]]
        elif mo_type == "EntityRef":
            eid = str(mo.get("entityId", ""))
            node, _, ifname = eid.partition(":")
            spec = topo.nodes.get(node)
            if spec is None or ifname not in spec.interfaces:
                errors.add(f"no port {eid!r} (use node:interface)", "/monitoredObject/entityId", "referenceNotFound")
                return plan
            if buyer is not None and spec.interfaces[ifname].buyer != buyer:
                errors.add(f"port {eid!r} is not one of yours", "/monitoredObject/entityId", "referenceNotFound")
                return plan
            plan["ports"] = [eid]
        else:
            errors.add(
                "monitoredObject @type must be ServiceRef, ServiceFromToRef or EntityRef", "/monitoredObject/@type"
            )
            return plan
        if not isinstance(config, Mapping) or errors:
            return plan
        base = (
            "/performanceProfile/serviceSpecificConfiguration"
            if profile_id is None
            else "/performanceProfile/performanceProfileId"
        )
        if service is not None:
            plan["service_id"] = service.id
        is_ce = config.get("@type") == CE_SOAM_CONFIG
        if is_ce:
            if service is None:
                errors.add(
                    "SOAM measurements need a service (ServiceRef or ServiceFromToRef), not a port",
                    "/monitoredObject/@type",
                )
                return plan
            if service.kind.value not in ("ovc", "ovcEndPoint"):
                errors.add(
                    f"service {service.id!r} is not a Carrier Ethernet OVC; use the IP configuration", f"{base}/@type"
                )
                return plan
            if not plan["pairs"]:
                pairs = config.get("orderedPairs")
                if pairs:
                    plan["pairs"] = [[p["fromEndPoint"], p["toEndPoint"]] for p in pairs]
                else:
                    svc_spec = topo.service(service.parent or service.id)
                    meps = list(svc_spec.meps) if svc_spec else []
                    if len(meps) < 2:
                        errors.add(
                            f"service {service.id!r} has no pair of MEPs to measure between",
                            "/monitoredObject",
                            "otherIssue",
                        )
                        return plan
                    plan["pairs"] = [[meps[0], meps[1]]]
            for i, (a, b) in enumerate(plan["pairs"]):
                for side, name in (("fromEndPoint", a), ("toEndPoint", b)):
                    if name not in topo.meps:
                        errors.add(f"no MEP {name!r}", f"{base}/orderedPairs/{i}/{side}", "referenceNotFound")
                    elif self._service_of_mep(name) not in (service.id, service.parent):
                        errors.add(f"MEP {name!r} is not on service {service.id!r}", f"{base}/orderedPairs/{i}/{side}")
            tools = []
            budget = 0.0
            for i, t in enumerate(config.get("tools") or DEFAULT_TOOLS):
                period = float(t.get("messagePeriodMs", DEFAULT_PERIOD_MS)) / 1000.0
                count = int(t.get("framesPerInterval", DEFAULT_FRAMES))
                budget += period * count * len(plan["pairs"])
                tools.append(
                    {
                        "tool": t["tool"],
                        "period_s": period,
                        "count": count,
                        "size": int(t.get("frameSizeBytes", 64)),
                        "priority": int(t.get("priority", 0)),
                        "index": i,
                    }
                )
            plan["tools"] = tools
            if plan.get("granularity_s") and budget > 0.9 * plan["granularity_s"]:
                errors.add(
                    f"the OAM sessions take {budget:.2f} s, more than 90% of the granularity; send fewer "
                    "frames or use a longer granularity",
                    f"{base}/tools",
                )
            for a, _ in plan["pairs"]:
                decl = topo.meps.get(a)
                if decl is not None and not self.network.has(decl.node, Capability.OAM):
                    errors.add(
                        f"node {decl.node!r} ({self.network.kind(decl.node)} adapter) cannot run OAM sessions",
                        "/monitoredObject",
                        "otherIssue",
                    )
            plan["percentile"] = float(config.get("percentile", 99.0))
            plan["availability"] = dict(config.get("availability") or {})
            if config.get("counters"):
                plan["ports"] = [f"{p.node}:{p.interface}" for p in service.ports]
        else:
            if config.get("ipMeasurement") is not None:
                self._plan_ip_measurement(plan, config, service, base, errors)
            if config.get("interfaces"):
                plan["ports"] = list(config["interfaces"])
            elif service is not None:
                ports = service.ports
                if not ports and service.parent:
                    parent = self.inventory.indexed(service.parent)
                    ports = parent.ports if parent else ()
                plan["ports"] = [f"{p.node}:{p.interface}" for p in ports]
            for i, port in enumerate(plan["ports"]):
                node, _, ifname = port.partition(":")
                if node not in topo.nodes or ifname not in topo.nodes[node].interfaces:
                    errors.add(f"no port {port!r}", f"{base}/interfaces/{i}", "referenceNotFound")
                elif not self.network.has(node, Capability.COUNTERS):
                    errors.add(
                        f"node {node!r} ({self.network.kind(node)} adapter) cannot read counters",
                        "/monitoredObject",
                        "otherIssue",
                    )
        tcas = config.get("tca") or []
        for i, t in enumerate(tcas):
            if t["metric"] not in TCA_METRICS:
                errors.add(f"unknown metric {t['metric']!r}", f"{base}/tca/{i}/metric")
            if int(t.get("windowThreshold", 1)) > int(t.get("windowSize", 1)):
                errors.add("windowThreshold cannot exceed windowSize", f"{base}/tca/{i}/windowThreshold")
        plan["tca"] = [{**t, "direction": TCA_METRICS.get(t["metric"], "above")} for t in tcas]
        if not plan["pairs"] and not plan["ports"] and not plan.get("ip_pairs"):
            errors.add("nothing to measure: no MEP pair and no port", "/monitoredObject", "otherIssue")
        return plan

    def _plan_ip_measurement(self, plan: dict[str, Any], config: Mapping[str, Any], service: Service | None,
                             base: str, errors: Problems) -> None:
        """IP SLS measurement between two measurement points of the monitored IP service, every interval."""
        ip = dict(config["ipMeasurement"])
        where = f"{base}/ipMeasurement"
        if service is None:
            errors.add("IP SLS measurements need a service (ServiceRef), not a port", "/monitoredObject/@type")
            return
        points = service_points(self.topology, service)
        source = ip.get("fromMeasurementPoint") or (points[0] if points else None)
        remote = ip.get("toMeasurementPoint") or next((p for p in points if p != source), None)
        for side, name in (("fromMeasurementPoint", source), ("toMeasurementPoint", remote)):
            if name is None or name not in points:
                errors.add(f"service {service.id!r} has no measurement point {name!r} (it has {points})",
                           f"{where}/{side}", "referenceNotFound")
                return
        if source == remote:
            errors.add("the two measurement points must differ", f"{where}/toMeasurementPoint")
            return
        params = IpParams.from_config({"protocol": ip.get("protocol", "stamp"), "packetCount":
                                       ip.get("packetsPerInterval", 20), "intervalMs": ip.get("messagePeriodMs", 10),
                                       "packetSize": ip.get("packetSize", 44), "dscp": ip.get("dscp", 0)})
        budget = params.packet_count * params.interval_s
        if plan.get("granularity_s") and budget > 0.9 * plan["granularity_s"]:
            errors.add(f"the IP sessions take {budget:.2f} s, more than 90% of the granularity; send fewer packets "
                       "or use a longer granularity", f"{where}/packetsPerInterval")
        node = self.topology.measurement_points[str(source)].node
        if not self.network.has(node, Capability.IP_MEASUREMENT):
            errors.add(f"node {node!r} ({self.network.kind(node)} adapter) cannot run IP measurements",
                       "/monitoredObject", "otherIssue")
        plan["ip_pairs"] = [[source, remote]]
        plan["ip"] = {"protocol": params.protocol.value, "count": params.packet_count, "period_s": params.interval_s,
                      "size": params.packet_size, "dscp": params.dscp}
        plan["percentile"] = float(ip.get("percentile", 99.0))

    def _mep_of(self, ident: str) -> str | None:
        """A MEP name from a MEP name or an end point service id (its port's MEP)."""
        topo = self.topology
        if ident in topo.meps:
            return ident
        svc = self.inventory.indexed(ident)
        if svc is None or not svc.ports:
            return None
        port = svc.ports[0]
        return next(
            (
                n
                for n, m in topo.meps.items()
                if (m.node, m.interface) == (port.node, port.interface) and self._service_of_mep(n) == svc.parent
            ),
            None,
        )

    def _service_of_mep(self, mep: str) -> str | None:
        return next((s.id for s in self.topology.services if mep in s.meps), None)
