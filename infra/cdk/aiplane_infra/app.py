"""Build the stacks for one environment, or for every deployable one."""

from __future__ import annotations

import aws_cdk as cdk

from aiplane_infra import nag
from aiplane_infra.stacks import ApiStack, AsyncStack, DataStack, MonitoringStack
from aiplane_shared.environments import DEPLOYABLE, Environment, get_environment
from aiplane_shared.families import FAMILIES


def build_environment(app: cdk.App, environment: Environment) -> dict[str, cdk.Stack]:
    env = cdk.Environment(account=environment.account, region=environment.region)
    prefix = environment.resource_prefix
    data = DataStack(app, f"{prefix}-data", environment, env=env)
    appproxy = data.appproxy_redis.network  # the appproxy functions run where its Redis is
    stacks: dict[str, cdk.Stack] = {
        "data": data,
        "async": AsyncStack(app, f"{prefix}-async", environment, appproxy, env=env),
    }
    for family in FAMILIES:
        api = ApiStack(app, f"{prefix}-api-{family}", environment, family, data.fleet_network, appproxy, env=env)
        api.add_stack_dependency(stacks["data"])  # functions read tables and secrets the data stack creates
        stacks[f"api-{family}"] = api
    stacks["async"].add_stack_dependency(stacks["data"])
    function_names = [name for stack in stacks.values() for name in stack.functions.function_names]
    stacks["monitoring"] = MonitoringStack(app, f"{prefix}-monitoring", environment, function_names, env=env)
    nag.acknowledge(stacks)
    for stack in stacks.values():
        cdk.Tags.of(stack).add("project", "aiplane")
        cdk.Tags.of(stack).add("environment", environment.name)
    return stacks


def build_app(app: cdk.App, environment_name: str | None) -> None:
    names = [environment_name] if environment_name else list(DEPLOYABLE)
    for name in names:
        build_environment(app, get_environment(name))
