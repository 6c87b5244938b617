"""Our SFT/FM payload schemas and the SLS verdicts (pure, no network)."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest

from interlude.domain.model import PortRef, Service, ServiceKind
from interlude.domain.southbound import Capability, OamKind, OamResult
from interlude.errors import ValidationError
from interlude.service.oamjobs.common import next_run
from interlude.service.oamjobs.oam import (
    SatConfig,
    SessionParams,
    judge,
    mep_spec,
    pick_meps,
    run_service_activation,
    service_meps,
)
from interlude.service.oamjobs.payloads import schemas, technology_of, urn, validate
from interlude.service.platform.network import Network
from interlude.topology.loader import bundled_topology_path, load_topology
from interlude.topology.model import SlsSpec

TOPO = load_topology(bundled_topology_path())
JOB = urn("sft", "carrier-ethernet", "test-job-configuration")


def test_every_schema_is_shipped_and_valid() -> None:
    found = schemas()
    for api, roles in (("sft", ("test-job-configuration", "test-profile-configuration", "test-result")),
                       ("fm", ("job-configuration", "result"))):  # fmt: skip
        for tech in ("carrier-ethernet", "ip"):
            for role in roles:
                doc = found[urn(api, tech, role)]
                jsonschema.Draft7Validator.check_schema(doc)
                assert doc["properties"]["@type"]["const"] == doc["$id"]


@pytest.mark.parametrize(
    ("payload", "path", "code"),
    [
        ({"@type": JOB}, "/cfg", "missingProperty"),
        ({"@type": JOB, "testType": "delay", "extra": 1}, "/cfg", "unexpectedProperty"),
        ({"@type": JOB, "testType": "delay", "frameCount": "ten"}, "/cfg/frameCount", "invalidFormat"),
        ({"@type": JOB, "testType": "delay", "intervalMs": 0}, "/cfg/intervalMs", "invalidValue"),
        ({"testType": "delay"}, "/cfg/@type", "missingProperty"),
        ({"@type": "urn:other", "testType": "delay"}, "/cfg/@type", "invalidValue"),
        ("not an object", "/cfg", "invalidFormat"),
    ],
)
def test_validation_problems_point_into_the_body(payload: Any, path: str, code: str) -> None:
    errors = validate(payload, api="sft", role="test-job-configuration", technology="carrier-ethernet",
                      base_path="/cfg")  # fmt: skip
    assert [(e.property_path, e.code) for e in errors][:1] == [(path, code)]


def test_valid_configuration_passes_and_technology_must_match() -> None:
    ok = {"@type": JOB, "testType": "serviceActivation", "serviceActivation": {"cirStepsPercent": [50, 100]}}
    assert validate(ok, api="sft", role="test-job-configuration", technology="carrier-ethernet", base_path="") == []
    wrong = validate(ok, api="sft", role="test-job-configuration", technology="ip", base_path="")
    assert wrong and wrong[0].property_path == "/@type"
    assert technology_of(Service("x", "b", ServiceKind.IPVC)) == "ip"
    assert technology_of(Service("x", "b", ServiceKind.OVC)) == "carrier-ethernet"


def test_verdicts_against_the_sls() -> None:
    sls = SlsSpec(fd_us=10_000, ifdv_us=3_000, flr_ratio=0.001)
    good = {"oneWayFrameDelayEstimate": {"p99": 9_000}, "twoWayInterFrameDelayVariation": {"p99": 100},
            "frameLossRatio": 0.0}  # fmt: skip
    assert judge(good, sls, delay=True, loss=True) == ("pass", [])
    slow = {**good, "oneWayFrameDelayEstimate": {"p99": 12_000}}
    verdict, failures = judge(slow, sls, delay=True, loss=True)
    assert verdict == "fail" and len(failures) == 1 and "FD" in failures[0]
    lossy = {**good, "frameLossRatio": 0.01}
    assert judge(lossy, sls, delay=False, loss=True)[0] == "fail"
    assert judge(lossy, None, delay=True, loss=True) == ("notEvaluated", [])
    assert judge(good, SlsSpec(), delay=True, loss=True) == ("notEvaluated", [])


def test_mep_selection() -> None:
    ovc = Service("ovc-1002", "sp-alpha", ServiceKind.OVC, ports=(PortRef("pe2", "uni1"), PortRef("agg1", "enni1")))
    assert service_meps(TOPO, ovc) == ["ovc1002-uni", "ovc1002-enni"]
    enni_ep = Service("ovc-1002-enni", "sp-alpha", ServiceKind.OVC_END_POINT, ports=(PortRef("agg1", "enni1"),),
                      parent="ovc-1002")  # fmt: skip
    assert service_meps(TOPO, enni_ep) == ["ovc1002-enni"]
    enni = Service("agg1-enni1", "sp-alpha", ServiceKind.ENNI_SERVICE, ports=(PortRef("agg1", "enni1"),))
    assert service_meps(TOPO, enni) == ["ovc1001-enni", "ovc1002-enni"]
    uni = Service("pe2-uni1", "sp-alpha", ServiceKind.OPERATOR_UNI, ports=(PortRef("pe2", "uni1"),))
    src, dst = pick_meps(TOPO, uni, enni, None, None, "")
    assert (src.name, dst.name) == ("ovc1002-uni", "ovc1002-enni")  # same MEG preferred
    with pytest.raises(ValidationError) as exc:
        pick_meps(TOPO, ovc, ovc, "ovc1001-uni", None, "")
    assert exc.value.property_path == "/sourceMep"
    lonely = Service("pe1-uni4", "sp-alpha", ServiceKind.OPERATOR_UNI, ports=(PortRef("pe1", "uni4"),))
    with pytest.raises(ValidationError, match="no MEP"):
        pick_meps(TOPO, lonely, ovc, None, None, "")


class _FakeOam:
    """An adapter offering only OAM: every DMM answers with ``delay_us``, SLM loses ``loss`` of the frames."""

    def __init__(self, delay_us: float, loss: float) -> None:
        self.kind = "fake"
        self.node = TOPO.nodes["pe1"]
        self.capabilities = frozenset({Capability.OAM})
        self.delay_us = delay_us
        self.loss = loss
        self.requests: list[Any] = []

    async def run_oam(self, request: Any) -> Any:
        self.requests.append(request)
        n = request.count
        if request.kind is OamKind.DELAY:
            return OamResult(request.kind, n, n, tuple([self.delay_us] * n))
        lost = round(n * self.loss)
        return OamResult(request.kind, n, n - lost, forward_lost=lost, backward_lost=0)


async def test_service_activation_steps_scale_and_judge_the_eir_share() -> None:
    fake = _FakeOam(delay_us=4_000, loss=0.2)
    network = Network(TOPO, {"pe1": fake})  # type: ignore[dict-item]
    svc = Service("ovc-x", "sp-alpha", ServiceKind.OVC, cir_bps=80_000_000, eir_bps=20_000_000)
    sls = SlsSpec(fd_us=10_000, flr_ratio=0.3)
    out = await run_service_activation(network, mep_spec(TOPO, "ovc1001-uni"), mep_spec(TOPO, "ovc1001-enni"),
                                       SessionParams(), SatConfig(frames_per_step=10), svc, sls)  # fmt: skip
    steps = out["steps"]
    assert [s["kind"] for s in steps] == ["cir"] * 4 + ["cirEir"]
    assert [s["targetRateBps"] for s in steps] == [20e6, 40e6, 60e6, 80e6, 100e6]
    # scaled so the highest step (CIR+EIR = 100 Mbit/s) offers the 1 Mbit/s lab cap
    assert [round(s["offeredRateBps"]) for s in steps] == [200_000, 400_000, 600_000, 800_000, 1_000_000]
    assert [s["verdict"] for s in steps[:4]] == ["pass"] * 4  # FLR 0.2 <= 0.3, one-way FD 2 ms <= 10 ms
    assert steps[4]["verdict"] == "pass"  # 20 % lost == the EIR share (20/100): the CIR got through
    assert out["verdict"] == "pass" and len(fake.requests) == 10  # a DMM and an SLM per step

    fake.loss = 0.4
    out = await run_service_activation(network, mep_spec(TOPO, "ovc1001-uni"), mep_spec(TOPO, "ovc1001-enni"),
                                       SessionParams(), SatConfig(frames_per_step=10), svc, sls)  # fmt: skip
    assert [s["verdict"] for s in out["steps"]] == ["fail"] * 5 and out["verdict"] == "fail"


def test_next_run_skips_missed_periods() -> None:
    assert next_run(100.0, 10.0, 1, now=105.0) == (2, 110.0)
    assert next_run(100.0, 10.0, 1, now=135.0) == (5, 140.0)  # runs 2..4 passed while the partner was down
    assert next_run(100.0, 10.0, 3, now=120.0) == (4, 130.0)
