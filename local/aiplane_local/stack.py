"""Start and stop the embedded stack: moto server, resources, dispatchers (everything but HTTP)."""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import threading
from dataclasses import dataclass

import boto3
import httpx
from fakeredis import TcpFakeServer
from moto.server import ThreadedMotoServer

from aiplane_local import moto_gaps
from aiplane_local.dispatchers import Dispatchers
from aiplane_local.gpu_agents import AGENT_ADDRESS_TAG, GpuInstanceSupervisor
from aiplane_local.provision import ProvisionedStack, provision
from aiplane_shared.environments import get_environment
from aiplane_shared.resources import (
    ADMIN_API_KEY_SECRET,
    APPPROXY_JWT_SECRET,
    APPPROXY_MANAGER_TOKEN_SECRET,
    APPPROXY_REDIS_SECRET,
    APPPROXY_WORKER_TOKEN_SECRET,
    Queue,
)

# Bootstrap secret -> the variable that may set it locally.
BOOTSTRAP_ENV = {
    ADMIN_API_KEY_SECRET.name: "AIPLANE_ADMIN_API_KEY",
    APPPROXY_MANAGER_TOKEN_SECRET.name: "AIPLANE_APPPROXY_MANAGER_TOKEN",
    APPPROXY_WORKER_TOKEN_SECRET.name: "AIPLANE_APPPROXY_WORKER_TOKEN",
    APPPROXY_JWT_SECRET.name: "AIPLANE_APPPROXY_JWT_SECRET",
}


@dataclass
class LocalStack:
    aws_endpoint: str
    bootstrap: dict[str, str]  # bootstrap secret name -> value
    generated: list[str]  # variables that were unset, so their values were generated
    provisioned: ProvisionedStack
    dispatchers: Dispatchers
    moto: ThreadedMotoServer
    gpu_instances: GpuInstanceSupervisor
    redis_url: str  # the embedded Redis-compatible server the appproxy workers share (ElastiCache in the cloud)
    redis: TcpFakeServer

    def drain(self, queue: Queue) -> int:
        """Hand the queue's messages to its consumer, as `make run`'s dispatchers do, until it is
        empty; how many were delivered (tests that need a worker to have run)."""
        sqs = boto3.client("sqs", region_name=self.dispatchers.region)
        url = self.provisioned.queue_urls[queue.name]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        delivered = 0
        while batch := self.dispatchers.deliver_once(sqs, queue, url, arn):
            delivered += batch
        return delivered

    def provision(self, environment_name: str) -> ProvisionedStack:
        """Another environment's resources (dev's, for the built assets) in this moto, with the same secrets."""
        environment = get_environment(environment_name)
        return provision(
            environment.resource_prefix, environment.region, {**self.bootstrap, **redis_secret(self.redis_url)}
        )

    def stop(self) -> None:
        self.dispatchers.stop()
        self.gpu_instances.stop()
        self.redis.shutdown()
        self.redis.server_close()
        self.moto.stop()


def redis_secret(redis_url: str) -> dict[str, str]:
    """The `appproxy-redis` secret's value, as the CDK app writes it for ElastiCache."""
    return {APPPROXY_REDIS_SECRET.name: json.dumps({"url": redis_url})}


def start_redis(port: int) -> TcpFakeServer:
    """fakeredis's TCP server: speaks RESP (pub/sub, INCR, MGET...) to the coordinator and to real
    AppProxy workers, as ElastiCache does in the cloud."""
    server = TcpFakeServer(("127.0.0.1", port), server_type="redis")
    threading.Thread(target=server.serve_forever, name="embedded-redis", daemon=True).start()
    return server


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_local_stack(
    aws_port: int | None = None, *, start_dispatchers: bool = True, redis_port: int | None = None
) -> LocalStack:
    """Start moto on 127.0.0.1:aws_port and the embedded Redis on 127.0.0.1:redis_port (free ports
    when None), point this process at them and create every resource.

    Must run before any boto3 client exists in the process: clients read the endpoint once.
    """
    environment = get_environment("local")
    port = aws_port or free_port()
    endpoint = f"http://127.0.0.1:{port}"
    os.environ.update(
        {
            "AWS_ENDPOINT_URL": endpoint,
            "MOTO_PORT": str(port),  # moto's ASL interpreter calls localhost:$MOTO_PORT
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_SESSION_TOKEN": "local",
            "AWS_DEFAULT_REGION": environment.region,
            "AWS_REGION": environment.region,
            # StartSyncExecution's "sync-" host prefix cannot resolve against 127.0.0.1.
            "AWS_DISABLE_HOST_PREFIX_INJECTION": "true",
            "AIPLANE_GPU_AGENT_ADDRESS_TAG": AGENT_ADDRESS_TAG,  # agents listen on loopback here (gpu_agents.py)
            "AIPLANE_ENV": environment.name,
            "AIPLANE_RESOURCE_PREFIX": environment.resource_prefix,
        }
    )
    moto_gaps.install(environment.resource_prefix)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's server would log every AWS call
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    httpx.post(f"{endpoint}/moto-api/config", json=moto_gaps.MOTO_CONFIG).raise_for_status()

    values, generated = {}, []
    for secret_name, variable in BOOTSTRAP_ENV.items():
        values[secret_name] = os.environ.get(variable) or ""
        if not values[secret_name]:
            values[secret_name] = secrets.token_urlsafe(24)
            generated.append(variable)
    redis = start_redis(redis_port or free_port())
    redis_url = f"redis://127.0.0.1:{redis.server_address[1]}"
    provisioned = provision(environment.resource_prefix, environment.region, {**values, **redis_secret(redis_url)})
    dispatchers = Dispatchers(environment.resource_prefix, environment.region, provisioned.queue_urls)
    gpu_instances = GpuInstanceSupervisor(environment.region)
    if start_dispatchers:
        dispatchers.start()
        gpu_instances.start()
    return LocalStack(endpoint, values, generated, provisioned, dispatchers, server, gpu_instances, redis_url, redis)
