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

from interlude.api.common import RUNTIME, Query, buyer_of, hub_routes, json_response, parse_model, read_json
from interlude.api.testing_routes import Wire as _Wire
from interlude.api.testing_routes import filters as _filters
from interlude.api.testing_routes import page as _page
from interlude.api.testing_routes import task_routes
from interlude.errors import RequestError
from interlude.service.oamjobs.sft.service import BASE, SFT, TASK_TYPES, SftService, task_path


class _Ref(_Wire):
    id: str = Field(min_length=1)
    href: str | None = None


class _ProfileRefOrValue(_Wire):
    type_: Literal["TestProfileRef", "TestProfileValue"] = Field(alias="@type")
    id: str | None = None


class _Duration(_Wire):
    amount: int = Field(ge=0)
    units: str


class TestJobIn(_Wire):
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


class _SpecRef(_Wire):
    id: str = Field(min_length=1)


class TestProfileIn(_Wire):
    """MEF ``TestProfile_Create``."""

    name: str
    isBundled: bool
    lifecycleStatus: Literal["experimental", "pending", "approved", "deprecated"]
    relatedServiceSpecification: _SpecRef
    validFor: AwareDatetime
    description: str | None = None
    serviceSpecificTestProfileConfiguration: dict[str, Any] | None = None


class TestProfilePatch(_Wire):
    """MEF ``TestProfile_Modify`` (at least one property)."""

    name: str | None = None
    isBundled: bool | None = None
    lifecycleStatus: Literal["experimental", "pending", "approved", "deprecated"] | None = None
    validFor: AwareDatetime | None = None
    serviceSpecificTestProfileConfiguration: dict[str, Any] | None = None


class TaskIn(_Wire):
    """MEF ``{Cancel,Modify,Suspend,Resume}TestJob_Common``."""

    testJob: _Ref
    requestedStartDateTime: AwareDatetime | None = None
    requestedEndDateTime: AwareDatetime | None = None


def _svc(request: web.Request) -> SftService:
    return request.app[RUNTIME].sft


def _raw(body: Any) -> dict[str, Any]:
    """The JSON body as sent (dates unchanged, for the echo rule)."""
    return dict(body)


# Profiles -----------------------------------------------------------------------------------------------------

PROFILE_FILTERS = (
    "creationDate.gt", "creationDate.lt", "lastUpdate.gt", "lastUpdate.lt", "relatedServiceSpecificationId",
)  # fmt: skip


async def create_profile(request: web.Request) -> web.StreamResponse:
    """``POST /testProfile``."""
    body = await read_json(request)
    parse_model(TestProfileIn, body)
    mef = await _svc(request).create_profile(_raw(body), buyer_of(request))
    return json_response(mef, status=201, headers={"Location": mef["href"]})


async def list_profiles(request: web.Request) -> web.StreamResponse:
    """``GET /testProfile``."""
    q = Query(request, PROFILE_FILTERS)
    return _page(q, await _svc(request).list_profiles(buyer_of(request), _filters(q, PROFILE_FILTERS)))


async def get_profile(request: web.Request) -> web.StreamResponse:
    """``GET /testProfile/{id}``."""
    Query(request, ())
    return json_response(await _svc(request).get_profile(request.match_info["id"], buyer_of(request)))


async def patch_profile(request: web.Request) -> web.StreamResponse:
    """``PATCH /testProfile/{id}`` (merge patch)."""
    body = await read_json(request)
    parse_model(TestProfilePatch, body)
    if not body:
        raise RequestError(400, "invalidBody", "the patch needs at least one property")
    return json_response(await _svc(request).patch_profile(request.match_info["id"], _raw(body), buyer_of(request)))


async def delete_profile(request: web.Request) -> web.StreamResponse:
    """``DELETE /testProfile/{id}``."""
    await _svc(request).delete_profile(request.match_info["id"], buyer_of(request))
    return web.Response(status=204)


# Jobs ---------------------------------------------------------------------------------------------------------

JOB_FILTERS = (
    "relatedServiceIdFrom", "relatedServiceIdTo", "testProfileId", "name", "requestedStartDateTime.gt",
    "requestedStartDateTime.lt", "requestedEndDateTime.gt", "requestedEndDateTime.lt",
)  # fmt: skip


async def create_job(request: web.Request) -> web.StreamResponse:
    """``POST /testJob``."""
    body = await read_json(request)
    parse_model(TestJobIn, body)
    mef = await _svc(request).create_job(_raw(body), buyer_of(request))
    return json_response(mef, status=201, headers={"Location": mef["href"]})


async def list_jobs(request: web.Request) -> web.StreamResponse:
    """``GET /testJob``."""
    q = Query(request, JOB_FILTERS)
    return _page(q, await _svc(request).list_jobs(buyer_of(request), _filters(q, JOB_FILTERS)))


async def get_job(request: web.Request) -> web.StreamResponse:
    """``GET /testJob/{id}``."""
    Query(request, ())
    return json_response(await _svc(request).get_job(request.match_info["id"], buyer_of(request)))


# Results ------------------------------------------------------------------------------------------------------

RESULT_FILTERS = (
    "testJobId", "relatedServiceIdFrom", "relatedServiceIdTo", "relatedServiceSpecificationId",
    "relatedContactInformationName", "requestedStartDateTime.gt", "requestedStartDateTime.lt",
    "requestedEndDateTime.gt", "requestedEndDateTime.lt",
)  # fmt: skip


async def list_results(request: web.Request) -> web.StreamResponse:
    """``GET /testResult``."""
    q = Query(request, RESULT_FILTERS)
    return _page(q, await _svc(request).list_results(buyer_of(request), _filters(q, RESULT_FILTERS)))


async def get_result(request: web.Request) -> web.StreamResponse:
    """``GET /testResult/{id}``."""
    Query(request, ())
    return json_response(await _svc(request).get_result(request.match_info["id"], buyer_of(request)))


# Tasks --------------------------------------------------------------------------------------------------------

TASK_FILTERS = ("testJobId", "state", "creationDate.gt", "creationDate.lt")


def _task_routes(task: str) -> list[web.RouteDef]:
    return task_routes(f"{BASE}/{task_path(task)}", task, TaskIn, ["accepted", "acknowledged", "rejected"],
                       TASK_FILTERS, _svc)  # fmt: skip


def routes() -> list[web.RouteDef]:
    """Every route of the API."""
    out = [
        web.post(f"{BASE}/testProfile", create_profile),
        web.get(f"{BASE}/testProfile", list_profiles),
        web.get(f"{BASE}/testProfile/{{id}}", get_profile),
        web.patch(f"{BASE}/testProfile/{{id}}", patch_profile),
        web.delete(f"{BASE}/testProfile/{{id}}", delete_profile),
        web.post(f"{BASE}/testJob", create_job),
        web.get(f"{BASE}/testJob", list_jobs),
        web.get(f"{BASE}/testJob/{{id}}", get_job),
        web.get(f"{BASE}/testResult", list_results),
        web.get(f"{BASE}/testResult/{{id}}", get_result),
        *hub_routes(BASE, SFT),
    ]
    for task in TASK_TYPES:
        out.extend(_task_routes(task))
    return out
