"""Performance Monitoring v5: running a job's intervals (OAM sessions, counters, TCAs) and writing its reports.

See :mod:`interlude.service.performance.service` for the job life cycle and :mod:`interlude.service.performance.common`
for the split.
"""

from __future__ import annotations

import copy
import logging
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from interlude.domain.alarms import TcaSpec, TcaState, evaluate_tca, parse_tca_specs
from interlude.domain.model import iso
from interlude.domain.pm import (
    counters_result,
    metric_values,
    result_object,
    soam_result,
)
from interlude.domain.southbound import CounterSample, MepSpec, OamKind, OamRequest, OamResult
from interlude.errors import AdapterError, InterludeError, OamError
from interlude.service.oamjobs.oam import new_test_id
from interlude.service.performance.common import (
    JOBS,
    REPORTS,
    PmDeps,
    PmRecords,
    job_href,
    now_iso,
    profile_values,
    report_href,
)
from interlude.service.platform.jobs import JobContext, JobOutcome
from interlude.store.base import Document, Transaction

log = logging.getLogger(__name__)


class PmMeasurement:
    """Job execution: ``pm.start`` (baseline) and ``pm.interval`` (sessions, counters, TCAs, reports).

    Sessions and counters go through the network gateway outside any transaction; what they produced is
    stored in the job runner's completion transaction, through the shared :class:`PmRecords`.
    """

    def __init__(self, deps: PmDeps, records: PmRecords) -> None:
        self.store = deps.store
        self.network = deps.network
        self.topology = deps.topology
        self.alarms = deps.alarms
        self.streaming = deps.streaming
        self.records = records

    async def run_start(self, ctx: JobContext) -> JobOutcome | None:
        """``pm.start``: schedule the job for later, or read its baseline counters and schedule the first interval."""
        jid = str(ctx.item.payload["job"])
        doc = await self.store.get_document(JOBS, jid)
        if doc is None or doc.state not in ("acknowledged", "scheduled", "inProgress"):
            return None
        plan = doc.body["plan"]
        now = time.time()
        if now + 0.05 < float(plan["start"]):

            async def later(tx: Transaction) -> None:
                fresh = await tx.get_document(JOBS, jid)
                if fresh is not None and fresh.state == "acknowledged":
                    await self.records.set_state(tx, fresh, "scheduled")
                n = int((fresh or doc).body["meta"].get("restarts", 0))
                await ctx.runner.schedule(
                    "pm.start", float(plan["start"]), {"job": jid}, key=f"{jid}:start:{n}:at", tx=tx
                )

            return JobOutcome({"scheduled": plan["start"]}, later)
        baseline, error = await self._read_counters(plan["ports"])
        if error is not None and not plan["pairs"]:

            async def unavailable(tx: Transaction) -> None:
                fresh = await tx.get_document(JOBS, jid)
                if fresh is not None and fresh.state in ("acknowledged", "scheduled", "inProgress"):
                    await self.records.set_state(
                        tx,
                        fresh,
                        "resourcesUnavailable",
                        mef_changes={"terminationError": [{"code": "otherIssue", "value": error[:250]}]},
                    )

            return JobOutcome({"error": error}, unavailable)

        async def begin(tx: Transaction) -> None:
            fresh = await tx.get_document(JOBS, jid)
            if fresh is None or fresh.state not in ("acknowledged", "scheduled", "inProgress"):
                return
            seq = int(fresh.body["meta"].get("seq", 0))
            new = await self.records.set_state(
                tx,
                fresh,
                "inProgress",
                meta={
                    "counters": {k: _sample_dict(v) for k, v in baseline.items()},
                    "anchor": now,
                    "anchor_seq": seq,
                    "last_at": now,
                },
            )
            await ctx.runner.schedule(
                "pm.interval", now + float(plan["granularity_s"]), {"job": jid, "seq": seq}, key=f"{jid}:{seq}", tx=tx
            )
            del new

        return JobOutcome({"started": now}, begin)

    async def _read_counters(self, ports: list[str]) -> tuple[dict[str, CounterSample], str | None]:
        by_node: dict[str, list[str]] = {}
        for port in ports:
            node, _, ifname = port.partition(":")
            by_node.setdefault(node, []).append(ifname)
        out: dict[str, CounterSample] = {}
        errors: list[str] = []
        for node, names in by_node.items():
            try:
                source = self.network.counters(node)
                samples = await source.read_counters(names)
            except (AdapterError, OamError) as exc:
                errors.append(f"{node}: {exc}")
                continue
            for name, sample in samples.items():
                out[f"{node}:{name}"] = sample
        return out, ("; ".join(errors) or None)

    async def _run_oam(self, plan: Mapping[str, Any]) -> list[dict[str, Any]]:
        topo = self.topology
        results: list[dict[str, Any]] = []
        for a, b in plan["pairs"]:
            ma, mb = topo.meps[a], topo.meps[b]
            spec_a = MepSpec(a, ma.node, ma.interface, ma.mep_id, ma.level, ma.vlan, ma.meg_id)
            spec_b = MepSpec(b, mb.node, mb.interface, mb.mep_id, mb.level, mb.vlan, mb.meg_id)
            outcome: dict[str, OamResult | None] = {"delay": None, "loss": None}
            problems: list[str] = []
            for tool in plan["tools"]:
                kind = OamKind.DELAY if tool["tool"] == "DMM_DMR" else OamKind.SYNTHETIC_LOSS
                request = OamRequest(
                    kind=kind,
                    mep=spec_a,
                    remote=spec_b,
                    count=tool["count"],
                    interval_s=tool["period_s"],
                    frame_size=tool["size"],
                    priority=tool["priority"],
                    timeout_s=1.0,
                    # A new Test ID per session (see new_test_id): reusing one across intervals would report the
                    # earlier intervals' frames as backward loss.
                    test_id=new_test_id(),
                )
                try:
                    oam = self.network.oam(ma.node)
                    outcome["delay" if kind is OamKind.DELAY else "loss"] = await oam.run_oam(request)
                except (InterludeError, OSError) as exc:
                    problems.append(f"{tool['tool']}: {exc}")
            item = soam_result(
                service_id=str(plan["service_id"]),
                from_mep=a,
                to_mep=b,
                delay=outcome["delay"],
                loss=outcome["loss"],
                percentile=float(plan["percentile"]),
                availability=plan["availability"],
            )
            if problems:
                item["suspectFlag"] = True
                item["error"] = "; ".join(problems)[:500]
            results.append(item)
        return results

    async def run_interval(self, ctx: JobContext) -> JobOutcome | None:
        """``pm.interval``: measure one interval, evaluate thresholds; store, report and stream the result."""
        jid = str(ctx.item.payload["job"])
        seq = int(ctx.item.payload["seq"])
        doc = await self.store.get_document(JOBS, jid)
        if doc is None or doc.state != "inProgress":
            return None
        plan = doc.body["plan"]
        meta = doc.body["meta"]
        started = float(meta.get("last_at", time.time()))
        data = await self._run_oam(plan) if plan["pairs"] else []
        samples, error = await self._read_counters(plan["ports"])
        ended = time.time()
        previous = {k: _sample_from(v) for k, v in (meta.get("counters") or {}).items()}
        for port in plan["ports"]:
            node, _, ifname = port.partition(":")
            speed = self.topology.nodes[node].interfaces[ifname].speed_mbps * 1_000_000
            if port in samples and port in previous:
                data.append(counters_result(port, previous[port], samples[port], speed, ended - started))
            else:
                data.append(
                    {
                        "@type": "urn:lso-interlude:pm:interface-counters:result:v1",
                        "interface": port,
                        "intervalSeconds": round(ended - started, 3),
                        "inOctets": 0,
                        "outOctets": 0,
                        "inPackets": 0,
                        "outPackets": 0,
                        "suspectFlag": True,
                        "error": (error or "no baseline sample")[:500],
                    }
                )
        item = {
            "measurementTime": {"measurementStartDate": _ts(started), "measurementEndDate": _ts(ended)},
            "measurementData": data,
        }
        # Thresholds: evaluated per result object and metric, state kept on the job.
        tca_state: dict[str, Any] = copy.deepcopy(meta.get("tca") or {})
        outcomes: list[tuple[str, str, str, dict[str, Any]]] = []
        specs: list[TcaSpec] = parse_tca_specs(plan.get("tca"))
        for result in data:
            values = metric_values(result)
            obj = result_object(result)
            for spec in specs:
                if spec.metric not in values or (result.get("suspectFlag") and spec.metric != "oneWayFrameLossRatio"):
                    continue
                key = f"{obj}|{spec.metric}"
                raw = tca_state.get(key, {})
                st = TcaState(set=bool(raw.get("set", False)), quiet=int(raw.get("quiet", 0)))
                st.window.extend(bool(x) for x in raw.get("window", []))
                out = evaluate_tca(spec, st, values[spec.metric])
                tca_state[key] = {"set": st.set, "quiet": st.quiet, "window": list(st.window)}
                if out.action:
                    outcomes.append((out.action, obj, spec.metric, out.attributes))
        for action, obj, metric, attrs in outcomes:
            verb = {"set": "crossed", "clear": "back under", "stateless": "crossed"}[action]
            details = (
                f"PM job {jid}: {metric} {verb} threshold {attrs['tcaPerformanceThresholdValue']} "
                f"on {obj} (value {attrs['performanceMetricValue']})"
            )
            try:
                await self.alarms.tca(
                    action=action,
                    job_id=jid,
                    obj=obj,
                    metric=metric,
                    buyer=doc.buyer,
                    service_ids=[plan["service_id"]] if plan.get("service_id") else [],
                    attributes=attrs,
                    details=details,
                )
            except InterludeError:
                log.exception("TCA alarm for job %s failed", jid)
        report_due = (seq + 1) % int(plan.get("report_every", 1)) == 0
        end = plan.get("end")
        finished = end is not None and ended + float(plan["granularity_s"]) > float(end) + 0.01
        if finished:
            await self.alarms.clear_job_tcas(jid, "completed")

        async def commit(tx: Transaction) -> None:
            fresh = await tx.get_document(JOBS, jid)
            if fresh is None:
                return
            body = copy.deepcopy(fresh.body)
            pending = [*body["meta"].get("pending", []), item]
            body["meta"].update(
                {
                    "seq": seq + 1,
                    "last_at": ended,
                    "tca": tca_state,
                    "counters": {k: _sample_dict(v) for k, v in samples.items()},
                }
            )
            running = fresh.state == "inProgress"
            if report_due or finished or not running:
                await self.write_report(tx, fresh, pending)
                pending = []
            body["meta"]["pending"] = pending
            new = Document(
                JOBS,
                jid,
                body,
                buyer=fresh.buyer,
                state=fresh.state,
                key1=fresh.key1,
                key2=fresh.key2,
                created_at=fresh.created_at,
            )
            await tx.put_document(new)
            if running and finished:
                await self.records.set_state(tx, new, "completed")
            elif running:
                anchor = float(body["meta"].get("anchor", ended))
                anchor_seq = int(body["meta"].get("anchor_seq", 0))
                due = max(anchor + (seq + 2 - anchor_seq) * float(plan["granularity_s"]), time.time())
                await ctx.runner.schedule(
                    "pm.interval", due, {"job": jid, "seq": seq + 1}, key=f"{jid}:{seq + 1}", tx=tx
                )
            await self.streaming.publish(jid, fresh.buyer, _stream_message(jid, fresh.body["mef"], item), tx)

        return JobOutcome({"seq": seq, "items": len(data)}, commit)

    async def write_report(self, tx: Transaction, job: Document, items: list[dict[str, Any]]) -> str | None:
        """Store the report of ``items`` and notify it (``performanceReportCreateEvent`` plus ready or error).

        A reporting period in which nothing could be measured at all (every result carries an ``error``: the
        node's adapter could not run the sessions or read the counters, e.g. the node was unreachable for the
        whole period) gives a ``failed`` report with a ``terminationError`` and
        ``performanceJobReportPreparationErrorEvent`` (with ``reportPreparationFailedReason``) instead of
        ``performanceJobReportReadyEvent``; the report still keeps the suspect items, so nothing is lost.
        """
        if not items:
            return None
        reason = _unmeasured_reason(items)
        state = "failed" if reason else "completed"
        rid = uuid.uuid4().hex[:16]
        mef = job.body["mef"]
        values = profile_values(job)
        report = {
            "id": rid,
            "href": report_href(rid),
            "creationDateTime": now_iso(),
            "state": "completed",
            "performanceJob": {
                "@type": "PerformanceJobRef",
                "performanceJobId": job.id,
                "performanceJobHref": job_href(job.id),
            },
            "description": f"report of performance job {job.id}",
            "granularity": values.get("granularity"),
            "monitoredObject": [mef["monitoredObject"]],
            "outputFormat": values.get("outputFormat", "json"),
            "resultFormat": values.get("resultFormat", "payload"),
            "serviceSpecificConfiguration": values.get("serviceSpecificConfiguration"),
            "reportingTimeframe": {
                "reportingStartDate": items[0]["measurementTime"]["measurementStartDate"],
                "reportingEndDate": items[-1]["measurementTime"]["measurementEndDate"],
            },
            "reportContent": [{"monitoredObject": mef["monitoredObject"], "reportContentItem": items}],
        }
        if reason:
            report["state"] = "failed"
            report["terminationError"] = [{"code": "otherIssue", "value": reason[:250]}]
        await tx.put_document(Document(REPORTS, rid, {"mef": report}, buyer=job.buyer, state=state, key1=job.id))
        if reason:
            outcome = await self.records.messages(
                "performanceJobReportPreparationErrorEvent",
                {"id": job.id, "href": job_href(job.id), "reportPreparationFailedReason": reason[:1000]},
                job.buyer,
            )
        else:
            outcome = await self.records.messages(
                "performanceJobReportReadyEvent",
                {"id": job.id, "href": job_href(job.id), "reportId": rid, "reportHref": report_href(rid)},
                job.buyer,
            )
        await tx.add_outbox(
            [
                *await self.records.messages(
                    "performanceReportCreateEvent", {"id": rid, "href": report_href(rid)}, job.buyer
                ),
                *outcome,
            ]
        )
        return rid


def _ts(value: float) -> str:
    return iso(datetime.fromtimestamp(value, UTC)) or ""


def _sample_dict(s: CounterSample) -> dict[str, Any]:
    return {
        "interface": s.interface,
        "in_octets": s.in_octets,
        "out_octets": s.out_octets,
        "in_packets": s.in_packets,
        "out_packets": s.out_packets,
        "in_errors": s.in_errors,
        "out_errors": s.out_errors,
        "in_discards": s.in_discards,
        "out_discards": s.out_discards,
        "sampled_at": s.sampled_at,
    }


def _sample_from(d: Mapping[str, Any]) -> CounterSample:
    return CounterSample(**dict(d))


def _stream_message(jid: str, job: Mapping[str, Any], item: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "performanceJobId": jid,
        "monitoredObject": job.get("monitoredObject"),
        "measurementTime": item["measurementTime"],
        "measurementData": item["measurementData"],
    }


def _unmeasured_reason(items: list[dict[str, Any]]) -> str | None:
    """Why nothing of a reporting period could be measured, or None when at least one result is a measurement."""
    errors: list[str] = []
    for item in items:
        data = item.get("measurementData") or []
        # An entry with an error but a tool's figures (one of DMM/SLM ran) is still a measurement.
        if not data or any("error" not in d or "delayTool" in d or "lossTool" in d for d in data):
            return None
        errors.extend(str(d["error"]) for d in data)
    unique = list(dict.fromkeys(errors))
    return f"nothing could be measured in the reporting period ({len(items)} interval(s)): " + "; ".join(unique)
