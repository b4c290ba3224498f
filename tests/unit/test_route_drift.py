"""The route table drives API Gateway: a route a router declares but the table lacks would pass every
in-process test and then 404 behind API Gateway (this happened once, to the agent routes). So every
declared route is in the table, under the group whose function declares it, and every route in the
table is declared by a router."""

from __future__ import annotations

import pytest

from aiplane.api.app import declared_routes
from aiplane_shared.families import FAMILIES
from aiplane_shared.routes import OPENAPI_PATH, extra_routes_of, groups_of, routes_of
from functions.family_app import router_of


@pytest.mark.parametrize("family", FAMILIES)
def test_every_declared_route_is_in_the_route_table_under_its_group(family):
    table = {(route.method, route.path): route.group for route in (*routes_of(family), *extra_routes_of(family))}
    declared = {
        (method, path): group
        for group in groups_of(family)
        for method, path in declared_routes(router_of(family, group))
        if method != "HEAD" and path != OPENAPI_PATH
    }  # the CDK routes the document on its own
    missing = sorted(set(declared) - set(table))
    assert not missing, f"declared by a router but not in the route table: {missing}"
    misplaced = sorted(route for route, group in declared.items() if table[route] != group)
    assert not misplaced, f"declared by another group's function than the table says: {misplaced}"
    undeclared = sorted(set(table) - set(declared))
    assert not undeclared, f"in the route table but no router declares it: {undeclared}"
