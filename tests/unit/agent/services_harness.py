"""What the agent's service components run against in unit tests: a scripted control plane (an httpx mock
transport: nothing leaves the process) and an AgentContext whose listener really serves on loopback."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from aiplane_agent.api import ControlPlane
from aiplane_agent.components import AgentContext, Component
from aiplane_agent.config import AgentConfig
from aiplane_agent.inventory import Inventory
from aiplane_agent.listener import Listener, LoadMeter
from aiplane_agent.runners.process import ProcessRunner

from tests.standins import LoopbackServer, StandInHandler, serve_in_background

API = "http://control-plane.invalid"


class ScriptedApi:
    """Answers `answers[path]` (a value or a callable of the JSON body) and records every call."""

    def __init__(self) -> None:
        self.answers: dict[str, Any] = {}
        self.calls: list[tuple[str, Any]] = []
        self.lock = threading.Lock()

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        body = json.loads(request.content) if request.content else None
        with self.lock:
            self.calls.append((path, body))
            answer = self.answers.get(path, {"ok": True})
        if callable(answer):
            answer = answer(body)
        if isinstance(answer, httpx.Response):
            return answer
        return httpx.Response(200, json=answer)

    def reports(self, suffix: str) -> list[Any]:
        with self.lock:
            return [body for path, body in self.calls if path.endswith(suffix)]


def wait_for(condition: Callable[[], Any], timeout_s: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


class AgentUnderTest:
    """An AgentContext with a live loopback listener; mount a component, tick it by hand."""

    def __init__(self, state_dir: Path, api: ScriptedApi, **config: Any) -> None:
        settings = AgentConfig(
            credential="agent-credential",
            gpufarm_url=f"{API}/gpufarm",
            mlworker_url=f"{API}/mlworker",
            host="127.0.0.1",
            poll_s=0,
            state_dir=state_dir,
            **config,
        )
        self.listener = Listener("127.0.0.1", 0, LoadMeter(8), lambda: {"status": "ok"})
        serve_in_background(self.listener.server)
        self.ctx = AgentContext(
            config=settings,
            api=ControlPlane(settings, transport=httpx.MockTransport(api.handle)),
            runner=ProcessRunner(),
            inventory=Inventory.detect("0", 2, 4),
            instance_id="i-test",
            worker_id="worker-test",
            url=f"http://127.0.0.1:{self.listener.port}",
            state_dir=state_dir,
        )

    def mount(self, component: Component) -> Component:
        self.listener.mount(component.routes())
        return component

    def close(self) -> None:
        self.listener.shutdown()


class FileServer(LoopbackServer):
    """Serves one file's bytes at /artifact on loopback, as a presigned S3 GET would."""

    def __init__(self, content: bytes) -> None:
        class Handler(StandInHandler):
            def do_GET(self) -> None:
                self.send_body(200, content, content_type=None)

        super().__init__(Handler)
        self.url = f"{self.url}/artifact"
