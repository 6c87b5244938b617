"""Service Function Testing API ``/mefApi/interlude/serviceFunctionTesting/v3/`` (MEF SFT v3, Kylie).

Test profiles (``GET/POST /testProfile``, ``GET/PATCH/DELETE /testProfile/{id}``), test jobs (``GET/POST
/testJob``, ``GET /testJob/{id}``), the task resources ``{cancel,modify,suspend,resume}TestJob`` (list, create,
retrieve), test results (``GET /testResult``, ``GET /testResult/{id}``) and ``/hub``. Notifications go to
``{callback}/mefApi/interlude/serviceFunctionTestingNotification/v3/listener/{eventType}``. The use cases are
in :mod:`interlude.service.oamjobs.sft.service`; this module parses, checks shapes (422 with ``propertyPath``) and
renders.
"""

from __future__ import annotations

from typing import Any, Literal

from aiohttp import web
from pydantic import AwareDatetime, Field

from interlude.api.common import RUNTIME, buyer_of, hub_routes, json_response, operation, parse_model, read_json
from interlude.api.oamjobs import (
    Wire,
    action_handler,
    create_handler,
    get_handler,
    list_handler,
    task_routes,
)
from interlude.errors import RequestError
from interlude.service.oamjobs.sft.common import BASE, SFT, TASK_TYPES, task_path
from interlude.service.oamjobs.sft.service import SftService


class _Ref(Wire):
    id: str = Field(min_length=1)
    href: str | None = None


class _ProfileRefOrValue(Wire):
    type_: Literal["TestProfileRef", "TestProfileValue"] = Field(alias="@type")
    id: str | None = None


class _Duration(Wire):
    amount: int = Field(ge=0)
    units: str


class TestJobIn(Wire):
    """MEF ``TestJob_Common`` (the create body)."""

    name: str
    description: str | None = None
    requestedStartDateTime: AwareDatetime | None = None
    requestedEndDateTime: AwareDatetime
    recurrencePeriod: _Duration | None = None
    testProfile: _ProfileRefOrValue
    relatedServiceFrom: _Ref
    relatedServiceTo: _Ref
    serviceSpecificTestJobConfiguration: dict[str, Any]


class _SpecRef(Wire):
    id: str = Field(min_length=1)


class TestProfileIn(Wire):
    """MEF ``TestProfile_Create``."""

    name: str
    isBundled: bool
    lifecycleStatus: Literal["experimental", "pending", "approved", "deprecated"]
    relatedServiceSpecification: _SpecRef
    validFor: AwareDatetime
    description: str | None = None
    serviceSpecificTestProfileConfiguration: dict[str, Any] | None = None


class TestProfilePatch(Wire):
    """MEF ``TestProfile_Modify`` (at least one property)."""

    name: str | None = None
    isBundled: bool | None = None
    lifecycleStatus: Literal["experimental", "pending", "approved", "deprecated"] | None = None
    validFor: AwareDatetime | None = None
    serviceSpecificTestProfileConfiguration: dict[str, Any] | None = None


class TaskIn(Wire):
    """MEF ``{Cancel,Modify,Suspend,Resume}TestJob_Common``."""

    testJob: _Ref
    requestedStartDateTime: AwareDatetime | None = None
    requestedEndDateTime: AwareDatetime | None = None


def _svc(request: web.Request) -> SftService:
    return request.app[RUNTIME].sft


PROFILE_FILTERS = (
    "creationDate.gt", "creationDate.lt", "lastUpdate.gt", "lastUpdate.lt", "relatedServiceSpecificationId",
)  # fmt: skip
JOB_FILTERS = (
    "relatedServiceIdFrom", "relatedServiceIdTo", "testProfileId", "name", "requestedStartDateTime.gt",
    "requestedStartDateTime.lt", "requestedEndDateTime.gt", "requestedEndDateTime.lt",
)  # fmt: skip
RESULT_FILTERS = (
    "testJobId", "relatedServiceIdFrom", "relatedServiceIdTo", "relatedServiceSpecificationId",
    "relatedContactInformationName", "requestedStartDateTime.gt", "requestedStartDateTime.lt",
    "requestedEndDateTime.gt", "requestedEndDateTime.lt",
)  # fmt: skip


async def patch_profile(request: web.Request) -> web.StreamResponse:
    """``PATCH /testProfile/{id}`` (merge patch; the body as sent, dates unchanged, for the echo rule)."""
    body = await read_json(request)
    parse_model(TestProfilePatch, body)
    if not body:
        raise RequestError(400, "invalidBody", "the patch needs at least one property")
    return json_response(await _svc(request).patch_profile(request.match_info["id"], dict(body), buyer_of(request)))


# Tasks --------------------------------------------------------------------------------------------------------

TASK_FILTERS = ("testJobId", "state", "creationDate.gt", "creationDate.lt")


def _task_routes(task: str) -> list[web.RouteDef]:
    return task_routes(f"{BASE}/{task_path(task)}", task, TaskIn, ["accepted", "acknowledged", "rejected"],
                       TASK_FILTERS, lambda r: _svc(r).tasks)  # fmt: skip


def routes() -> list[web.RouteDef]:
    """Every route of the API."""
    out = [
        web.post(
            f"{BASE}/testProfile",
            create_handler(TestProfileIn, lambda r: _svc(r).create_profile),
            name=operation(BASE, "createTestProfile"),
        ),
        web.get(
            f"{BASE}/testProfile",
            list_handler(PROFILE_FILTERS, lambda r: _svc(r).list_profiles),
            name=operation(BASE, "listTestProfile"),
        ),
        web.get(
            f"{BASE}/testProfile/{{id}}",
            get_handler(lambda r: _svc(r).get_profile),
            name=operation(BASE, "retrieveTestProfile"),
        ),
        web.patch(f"{BASE}/testProfile/{{id}}", patch_profile, name=operation(BASE, "modifyTestProfile")),
        web.delete(
            f"{BASE}/testProfile/{{id}}",
            action_handler(lambda r: _svc(r).delete_profile),
            name=operation(BASE, "deleteTestProfile"),
        ),
        web.post(
            f"{BASE}/testJob",
            create_handler(TestJobIn, lambda r: _svc(r).create_job),
            name=operation(BASE, "createTestJob"),
        ),
        web.get(
            f"{BASE}/testJob",
            list_handler(JOB_FILTERS, lambda r: _svc(r).list_jobs),
            name=operation(BASE, "listTestJob"),
        ),
        web.get(
            f"{BASE}/testJob/{{id}}", get_handler(lambda r: _svc(r).get_job), name=operation(BASE, "retrieveTestJob")
        ),
        web.get(
            f"{BASE}/testResult",
            list_handler(RESULT_FILTERS, lambda r: _svc(r).results.list_results),
            name=operation(BASE, "listTestResult"),
        ),
        web.get(
            f"{BASE}/testResult/{{id}}",
            get_handler(lambda r: _svc(r).results.get_result),
            name=operation(BASE, "retrieveTestResult"),
        ),
        *hub_routes(BASE, SFT),
    ]
    for task in TASK_TYPES:
        out.extend(_task_routes(task))
    return out
