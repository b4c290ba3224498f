"""`aiplane-gpu-agent`: the loop that drives the components (see `components.py`).

At start-up it settles who it is (instance id from metadata, worker id kept in the state dir),
takes the host's inventory, picks its runner and reports it, opens its listener, builds its
components, then ticks them every `TICK_S` until SIGTERM/SIGINT, when it stops each component
(which stops what it runs and tells the API) and closes the listener.
"""

from __future__ import annotations

import json
import os
import signal
import threading
from typing import Any

import httpx

from aiplane_agent.api import ControlPlane
from aiplane_agent.components import TICK_S, AgentContext, Component
from aiplane_agent.config import AgentConfig, parse_args
from aiplane_agent.fleet import GpufarmMembership
from aiplane_agent.inventory import Inventory
from aiplane_agent.listener import Listener, LoadMeter
from aiplane_agent.log import log
from aiplane_agent.runners import Runner, RunnerUnavailable, choose_runner

IMDS = "http://169.254.169.254/latest"
IDENTITY_FILE = "identity.json"


def imds(path: str) -> str | None:
    """Instance metadata (IMDSv2); None off EC2."""
    try:
        token = httpx.put(f"{IMDS}/api/token", headers={"X-aws-ec2-metadata-token-ttl-seconds": "300"}, timeout=1)
        answer = httpx.get(
            f"{IMDS}/meta-data/{path}", headers={"X-aws-ec2-metadata-token": token.raise_for_status().text}, timeout=1
        )
        return answer.raise_for_status().text
    except httpx.HTTPError:
        return None


def settle_identity(config: AgentConfig) -> tuple[str, str]:
    """(instance id, worker id); what was settled once is kept in the state dir across restarts."""
    path = config.state_dir / IDENTITY_FILE
    kept: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    instance_id = config.instance_id or kept.get("instance_id") or imds("instance-id") or os.uname().nodename
    worker_id = config.worker_id or kept.get("worker_id") or instance_id
    path.write_text(json.dumps({"instance_id": instance_id, "worker_id": worker_id}))
    return instance_id, worker_id


class Agent:
    def __init__(
        self,
        config: AgentConfig,
        *,
        runner: Runner | None = None,
        inventory: Inventory | None = None,
        api: ControlPlane | None = None,
    ) -> None:
        runner = runner or choose_runner(config)  # first: a host without the runner it needs opens nothing
        config.state_dir.mkdir(parents=True, exist_ok=True)
        self.config = config
        self.stopping = threading.Event()
        self.meter = LoadMeter(config.capacity)
        self.listener = Listener(
            config.host, config.port, self.meter, self.health, config.upstream, config.upstream_timeout_s
        )
        instance_id, worker_id = settle_identity(config)
        host = config.advertise_host or imds("local-ipv4") or "127.0.0.1"
        self.ctx = AgentContext(
            config=config,
            api=api or ControlPlane(config),
            runner=runner,
            inventory=inventory or Inventory.detect(config.gpus, config.cpus, config.memory_gb),
            instance_id=instance_id,
            worker_id=worker_id,
            url=f"http://{host}:{self.listener.port}",
            state_dir=config.state_dir,
        )
        self.components = self.build_components()
        self.ctx.plugin_health = self.plugin_health
        for component in self.components:
            self.listener.mount(component.routes())

    def build_components(self) -> list[Component]:
        """Every component this configuration asks for; new kinds of work are added here."""
        from aiplane_agent.services.jupyter import JupyterServices
        from aiplane_agent.services.models import ModelServing
        from aiplane_agent.tasks import TaskWorker

        components: list[Component] = []
        if self.config.gpufarm_url:
            components.append(GpufarmMembership(self.ctx, self.meter))
            components.append(ModelServing(self.ctx))
        if self.config.mlworker_url:
            components.append(TaskWorker(self.ctx))
            if self.config.service_slots:
                components.append(JupyterServices(self.ctx))
        return components

    def health(self) -> dict[str, Any]:
        return {
            "status": "ok",
            "instance_id": self.ctx.instance_id,
            "worker_id": self.ctx.worker_id,
            "runner": self.ctx.runner.describe(),
            "gpus": [gpu.as_dict() for gpu in self.ctx.inventory.gpus],
            "capabilities": self.ctx.inventory.capabilities(),
            "host": self.ctx.inventory.host_load(),
            "running_work": sum(component.running_work() for component in self.components),
            "components": {component.name: component.status() for component in self.components},
            "plugins": self.plugin_health(),
        }

    def plugin_health(self) -> dict[str, dict[str, Any]]:
        """What the components' own checks find of the mlworker plugins they run, now."""
        return {name: report for component in self.components for name, report in component.plugin_health().items()}

    def tick_forever(self) -> None:
        while not self.stopping.is_set():
            for component in self.components:
                try:
                    component.tick(self.ctx)
                except Exception as error:  # one component's failure must not stop the others
                    log("component tick failed", component=component.name, error=f"{type(error).__name__}: {error}")
            self.stopping.wait(TICK_S)

    def run(self) -> None:
        log(
            "aiplane GPU agent started",
            instance_id=self.ctx.instance_id,
            worker_id=self.ctx.worker_id,
            url=self.ctx.url,
            runner=self.ctx.runner.describe(),
            capabilities=self.ctx.inventory.capabilities(),
        )
        loop = threading.Thread(target=self.tick_forever, name="agent-loop", daemon=True)
        loop.start()
        self.listener.serve_forever()  # until stop()
        loop.join(timeout=TICK_S * 4 + 10)
        for component in reversed(self.components):
            try:
                component.stop()
            except Exception as error:
                log("component stop failed", component=component.name, error=f"{type(error).__name__}: {error}")
        self.ctx.api.close()
        log("aiplane GPU agent stopped", instance_id=self.ctx.instance_id)

    def stop(self, *_: Any) -> None:
        self.stopping.set()
        threading.Thread(target=self.listener.shutdown, daemon=True).start()


def main(argv: list[str] | None = None) -> None:
    try:
        agent = Agent(parse_args(argv))
    except RunnerUnavailable as refused:
        log("aiplane GPU agent refused to start", error=str(refused))
        raise SystemExit(2) from None
    signal.signal(signal.SIGTERM, agent.stop)
    signal.signal(signal.SIGINT, agent.stop)
    agent.run()


if __name__ == "__main__":
    main()
