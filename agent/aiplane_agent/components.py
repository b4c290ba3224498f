"""What plugs into the agent: components.

A component is one kind of work the agent does for the control plane (joining the gpufarm
fleet, running mlworker tasks, serving Jupyter or models). The agent builds each one at start-up
with the `AgentContext` and then, from one loop:

- `tick(ctx)` is called every loop period (`TICK_S`, from the agent's loop thread). It must not
  block for long: a component starts long work in threads of its own and checks on it in `tick`.
  It keeps its own clocks (heartbeats every `ctx.config.heartbeat_s`, leases every `poll_s`).
  An exception is logged and the next tick runs again.
- `routes()` lists the HTTP routes it serves on the agent's listener (the URL the agent
  registers with gpufarm, which the API's proxy and predict calls reach). A route is a method, a
  path template with `{name}` segments, and a handler taking an `HttpRequest` and answering an
  `HttpResponse`. Handlers run on the listener's threads, concurrently with `tick`.
- `status()` is what it adds to the agent's `/health` answer and heartbeats (JSON-able), e.g.
  the models it serves.
- `plugin_health()`: the mlworker plugins it runs and what its own check of each found now,
  `{name: {"status": healthy | unhealthy | starting | stopped, "error"?, "url"?}}`; the mlworker
  heartbeat carries them all (`AgentContext.plugin_health`), and the scheduler answers plugin
  health from these reports only. `running_work()` counts the tasks/services/models it runs now (the load
  the agent reports).
- `stop()` is called once when the agent stops (SIGTERM/SIGINT): stop what it runs, tell the API.

`BaseComponent` gives every method a default, so a component writes only what it needs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from aiplane_agent.api import ControlPlane
from aiplane_agent.config import AgentConfig
from aiplane_agent.inventory import Inventory
from aiplane_agent.runners import Runner

TICK_S = 0.1


@dataclass
class HttpRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    path_params: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class HttpResponse:
    status: int
    body: bytes = b""
    content_type: str = "application/json"

    @classmethod
    def of_json(cls, status: int, value: Any) -> HttpResponse:
        return cls(status, json.dumps(value).encode())


Handler = Callable[[HttpRequest], HttpResponse]


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # a template: /models/{model_id}/predict
    handler: Handler

    def match(self, method: str, path: str) -> dict[str, str] | None:
        if method != self.method:
            return None
        pattern = "^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(self.path)) + "$"
        found = re.match(pattern, path)
        return found.groupdict() if found else None


def no_plugins() -> dict[str, dict[str, Any]]:
    return {}


@dataclass
class AgentContext:
    """What every component gets: who this agent is and what it may use."""

    config: AgentConfig
    api: ControlPlane
    runner: Runner
    inventory: Inventory
    instance_id: str
    worker_id: str
    url: str  # where the API reaches this agent's listener
    state_dir: Path
    # Every component's plugin_health(), merged (the agent sets it once its components are built).
    plugin_health: Callable[[], dict[str, dict[str, Any]]] = no_plugins

    def component_dir(self, name: str) -> Path:
        """A component's own persistent directory under the state dir (kept across restarts)."""
        path = self.state_dir / name
        path.mkdir(parents=True, exist_ok=True)
        return path


class Component(Protocol):
    name: str

    def tick(self, ctx: AgentContext) -> None: ...

    def routes(self) -> list[Route]: ...

    def status(self) -> dict[str, Any]: ...

    def running_work(self) -> int: ...

    def plugin_health(self) -> dict[str, dict[str, Any]]: ...

    def stop(self) -> None: ...


class BaseComponent:
    name = "component"

    def tick(self, ctx: AgentContext) -> None:
        return None

    def routes(self) -> list[Route]:
        return []

    def status(self) -> dict[str, Any]:
        return {}

    def running_work(self) -> int:
        return 0

    def plugin_health(self) -> dict[str, dict[str, Any]]:
        return {}

    def stop(self) -> None:
        return None


ComponentFactory = Callable[[AgentContext], Component]
