"""`python -m aiplane_local`: the whole system on one machine (what `make run` starts)."""

from __future__ import annotations

import argparse
import asyncio
import os
import socket

import uvicorn

from aiplane_local.gpu_agents import LocalAgent
from aiplane_local.provision import publish_api_urls
from aiplane_local.stack import start_local_stack
from aiplane_shared.resources import (
    ADMIN_API_KEY_SECRET,
    APPPROXY_JWT_SECRET,
    APPPROXY_MANAGER_TOKEN_SECRET,
    APPPROXY_WORKER_TOKEN_SECRET,
)


def main() -> None:
    parser = argparse.ArgumentParser(description="Run aiplane locally against an embedded AWS (moto).")
    # Not HOST: shells such as zsh set it to the machine's name, which would serve beyond loopback.
    parser.add_argument("--host", default=os.environ.get("AIPLANE_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8080")))
    parser.add_argument("--aws-port", type=int, default=int(os.environ.get("AWS_PORT", "4566")))
    parser.add_argument("--appproxy-port", type=int, default=int(os.environ.get("APPPROXY_PORT", "8081")))
    parser.add_argument("--redis-port", type=int, default=int(os.environ.get("REDIS_PORT", "6379")))
    args = parser.parse_args()

    # Bound first, so a port of 0 (any free one) is known to the stack and the ready line.
    api_socket = socket.create_server((args.host, args.port))
    coordinator_socket = socket.create_server((args.host, args.appproxy_port))
    base_url, coordinator_url = url_of(api_socket), url_of(coordinator_socket)
    stack = start_local_stack(args.aws_port, redis_port=args.redis_port)
    publish_api_urls(stack.provisioned.prefix, os.environ["AWS_REGION"], base_url)
    from aiplane_local.server import (  # after the endpoint is set: models read it at import
        build_coordinator_app,
        build_root_app,
    )

    listeners = [
        (uvicorn.Server(uvicorn.Config(build_root_app(), log_level="info")), api_socket),
        (uvicorn.Server(uvicorn.Config(build_coordinator_app(), log_level="info")), coordinator_socket),
    ]
    local_agents: list[LocalAgent] = []

    def on_ready() -> None:
        if os.environ.get("AIPLANE_LOCAL_AGENT", "1") != "0":
            local_agents.append(
                LocalAgent(
                    f"{base_url}/mlworker",
                    stack.bootstrap[ADMIN_API_KEY_SECRET.name],
                    gpus=int(os.environ.get("AIPLANE_LOCAL_AGENT_GPUS") or 0),
                    gpufarm_url=f"{base_url}/gpufarm",
                    service_slots=int(os.environ.get("AIPLANE_LOCAL_AGENT_SERVICE_SLOTS") or 2),
                )
            )
        print(readiness_line(base_url, coordinator_url, stack), flush=True)

    try:
        asyncio.run(serve_all(listeners, on_ready))
    finally:
        for agent in local_agents:
            agent.stop()
        stack.stop()


def url_of(listener: socket.socket) -> str:
    host, port = listener.getsockname()[:2]
    return f"http://{host}:{port}"


async def serve_all(listeners: list[tuple[uvicorn.Server, socket.socket]], on_ready) -> None:
    """Serve every listener; ready once all listen, and all stop when one does (each server's
    signal handler reaches only one of them)."""
    servers = [server for server, _ in listeners]
    tasks = [asyncio.create_task(server.serve(sockets=[sock])) for server, sock in listeners]
    while not all(server.started for server in servers):
        if any(task.done() for task in tasks):
            break
        await asyncio.sleep(0.05)
    else:
        on_ready()
    _, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for server in servers:
        server.should_exit = True
    await asyncio.gather(*pending)


def readiness_line(base_url: str, coordinator_url: str, stack) -> str:
    generated = f" (generated, unset: {', '.join(stack.generated)})" if stack.generated else ""
    return (
        f"aiplane ready: {base_url}/{{runtime,appproxy,mlworker,gpufarm}} | "
        f"appproxy coordinator (no prefix, for workers) {coordinator_url} | AWS endpoint {stack.aws_endpoint} | "
        f"Redis (appproxy workers) {stack.redis_url} | "
        f"admin API key {stack.bootstrap[ADMIN_API_KEY_SECRET.name]} | "
        f"appproxy manager token {stack.bootstrap[APPPROXY_MANAGER_TOKEN_SECRET.name]} | "
        f"appproxy worker token {stack.bootstrap[APPPROXY_WORKER_TOKEN_SECRET.name]} | "
        f"appproxy worker jwt_secret {stack.bootstrap[APPPROXY_JWT_SECRET.name]}{generated}"
    )


if __name__ == "__main__":
    main()
