"""`python -m aiplane_local`: the whole system on one machine (what `make run` starts)."""

from __future__ import annotations

import argparse
import os

import uvicorn

from aiplane_local.gpu_agents import LocalAgent
from aiplane_local.provision import publish_api_urls
from aiplane_local.stack import start_local_stack
from aiplane_shared.resources import ADMIN_API_KEY_SECRET, APPPROXY_MANAGER_TOKEN_SECRET, APPPROXY_WORKER_TOKEN_SECRET


def main() -> None:
    parser = argparse.ArgumentParser(description="Run aiplane locally against an embedded AWS (moto).")
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8080")))
    parser.add_argument("--aws-port", type=int, default=int(os.environ.get("AWS_PORT", "4566")))
    args = parser.parse_args()

    stack = start_local_stack(args.aws_port)
    publish_api_urls(stack.provisioned.prefix, os.environ["AWS_REGION"], f"http://{args.host}:{args.port}")
    from aiplane_local.server import build_root_app  # after the endpoint is set: models read it at import

    app = build_root_app()
    config = uvicorn.Config(app, host=args.host, port=args.port, log_level="info")
    server = uvicorn.Server(config)
    original_startup = server.startup

    local_agents: list[LocalAgent] = []

    async def startup(sockets=None) -> None:
        await original_startup(sockets)
        if os.environ.get("AIPLANE_LOCAL_AGENT", "1") != "0":
            local_agents.append(LocalAgent(f"http://{args.host}:{args.port}/mlworker",
                                           stack.bootstrap[ADMIN_API_KEY_SECRET.name],
                                           gpus=int(os.environ.get("AIPLANE_LOCAL_AGENT_GPUS") or 0),
                                           gpufarm_url=f"http://{args.host}:{args.port}/gpufarm",
                                           service_slots=int(os.environ.get("AIPLANE_LOCAL_AGENT_SERVICE_SLOTS") or 2)))
        print(readiness_line(f"http://{args.host}:{args.port}", stack), flush=True)

    server.startup = startup
    try:
        server.run()
    finally:
        for agent in local_agents:
            agent.stop()
        stack.stop()


def readiness_line(base_url: str, stack) -> str:
    generated = f" (generated, unset: {', '.join(stack.generated)})" if stack.generated else ""
    return (
        f"aiplane ready: {base_url}/{{runtime,appproxy,mlworker,gpufarm}} | AWS endpoint {stack.aws_endpoint} | "
        f"admin API key {stack.bootstrap[ADMIN_API_KEY_SECRET.name]} | "
        f"appproxy manager token {stack.bootstrap[APPPROXY_MANAGER_TOKEN_SECRET.name]} | "
        f"appproxy worker token {stack.bootstrap[APPPROXY_WORKER_TOKEN_SECRET.name]}{generated}"
    )


if __name__ == "__main__":
    main()
