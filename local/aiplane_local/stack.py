"""Start and stop the embedded stack: moto server, resources, dispatchers (everything but HTTP)."""

from __future__ import annotations

import os
import secrets
import socket
from dataclasses import dataclass

import httpx
from moto.server import ThreadedMotoServer

from aiplane_local import moto_gaps
from aiplane_local.dispatchers import Dispatchers
from aiplane_local.provision import ProvisionedStack, provision
from aiplane.identity import bootstrap
from aiplane_shared.environments import get_environment

BOOTSTRAP_ENV = {
    bootstrap.ADMIN_API_KEY: "AIPLANE_ADMIN_API_KEY",
    bootstrap.APPPROXY_MANAGER_TOKEN: "AIPLANE_APPPROXY_MANAGER_TOKEN",
    bootstrap.APPPROXY_WORKER_TOKEN: "AIPLANE_APPPROXY_WORKER_TOKEN",
}


@dataclass
class LocalStack:
    aws_endpoint: str
    bootstrap: dict[str, str]
    generated: list[str]  # bootstrap fields that were generated, not taken from the environment
    provisioned: ProvisionedStack
    dispatchers: Dispatchers
    moto: ThreadedMotoServer

    def stop(self) -> None:
        self.dispatchers.stop()
        self.moto.stop()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_local_stack(aws_port: int | None = None, *, start_dispatchers: bool = True) -> LocalStack:
    """Start moto on 127.0.0.1:aws_port, point this process at it and create every resource.

    Must run before any boto3 client exists in the process: clients read the endpoint once.
    """
    environment = get_environment("local")
    port = aws_port or free_port()
    endpoint = f"http://127.0.0.1:{port}"
    os.environ.update({
        "AWS_ENDPOINT_URL": endpoint,
        "MOTO_PORT": str(port),  # moto's ASL interpreter calls localhost:$MOTO_PORT
        "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local", "AWS_SESSION_TOKEN": "local",
        "AWS_DEFAULT_REGION": environment.region, "AWS_REGION": environment.region,
        # StartSyncExecution's "sync-" host prefix cannot resolve against 127.0.0.1.
        "AWS_DISABLE_HOST_PREFIX_INJECTION": "true",
        "AIPLANE_ENV": environment.name,
        "AIPLANE_RESOURCE_PREFIX": environment.resource_prefix,
    })
    moto_gaps.install(environment.resource_prefix)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    httpx.post(f"{endpoint}/moto-api/config", json=moto_gaps.MOTO_CONFIG).raise_for_status()

    values, generated = {}, []
    for field, variable in BOOTSTRAP_ENV.items():
        values[field] = os.environ.get(variable) or ""
        if not values[field]:
            values[field] = secrets.token_urlsafe(24)
            generated.append(field)
    provisioned = provision(environment.resource_prefix, environment.region, values)
    dispatchers = Dispatchers(environment.resource_prefix, environment.region, provisioned.queue_urls)
    if start_dispatchers:
        dispatchers.start()
    return LocalStack(endpoint, values, generated, provisioned, dispatchers, server)
