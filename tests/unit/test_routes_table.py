"""The route table: every contract row has a group and an access level, and the public list is
the one place that decides what needs no credentials."""

from aiplane_shared.families import FAMILIES
from aiplane_shared.routes import (
    AGENT,
    AGENT_ROUTES,
    APPPROXY_MANAGER_ROUTES,
    EXTRA_ROUTES,
    MANAGER,
    PUBLIC,
    PUBLIC_ROUTES,
    WORKER,
    contract_routes,
    extra_routes_of,
    groups_of,
    routes_of,
)

EXPECTED_COUNTS = {"runtime": 159, "appproxy": 19, "mlworker": 30, "gpufarm": 40}


def test_every_contract_row_is_loaded_once():
    routes = contract_routes()
    assert len(routes) == 248
    assert len({(r.family, r.method, r.path) for r in routes}) == 248
    assert {family: len(routes_of(family)) for family in FAMILIES} == EXPECTED_COUNTS


def test_every_route_belongs_to_a_known_group():
    for route in contract_routes():
        assert route.group in groups_of(route.family), route


def test_public_routes_are_contract_rows_with_a_reason():
    served = (*contract_routes(), *(route for family in FAMILIES for route in extra_routes_of(family)))
    rows = {(r.family, r.method, r.path) for r in served}
    for key, reason in PUBLIC_ROUTES.items():
        assert key in rows, key
        assert reason
    public = {(r.family, r.method, r.path) for r in served if r.access == PUBLIC}
    assert public == set(PUBLIC_ROUTES)


def test_appproxy_access_follows_the_contract_preconditions():
    appproxy = {(r.method, r.path): r.access for r in routes_of("appproxy")}
    assert {key for key, access in appproxy.items() if access == MANAGER} == set(APPPROXY_MANAGER_ROUTES)
    assert appproxy[("GET", "/api/worker")] == WORKER
    assert appproxy[("GET", "/health")] == PUBLIC


def test_the_agent_routes_are_extra_gpufarm_routes_of_their_own_access_level():
    assert AGENT_ROUTES <= set(EXTRA_ROUTES)
    assert {(r.family, r.method, r.path) for r in extra_routes_of("gpufarm") if r.access == AGENT} == set(AGENT_ROUTES)
    assert all(r.access != AGENT for r in contract_routes())


def test_the_gpu_worker_protocol_routes_are_mlworker_extra_routes():
    from aiplane_shared.routes import GPU_WORKER, GPU_WORKER_ROUTES

    assert {(r.family, r.method, r.path) for r in extra_routes_of("mlworker") if r.access == GPU_WORKER} == set(
        GPU_WORKER_ROUTES
    )
