"""The Jupyter component: runs the mlworker Jupyter services assigned to this worker.

Every `poll_s` it asks the scheduler for its services (`POST /v1/jupyter/workers/{id}/services`,
which also hands it `starting` ones up to its `service_slots`) and then:
- a `starting` one: starts a real Jupyter server (jupyter-server) through the runner, with the
  service's token (`JUPYTER_TOKEN`, never on the command line) on a port of its own on the
  agent's listen host, waits until Jupyter's own `GET /api/status` answers with that token, and
  only then reports `running` with the URL; a server that exits or never answers is reported
  `error` with the reason (its exit status and the end of its log);
- a `stopping` one (DELETE), or one no longer in the answer: stops the server, reports `stopped`;
- a `running` one it has no server for (the agent restarted), or whose server died: `error`.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from aiplane_agent.api import ApiError
from aiplane_agent.components import AgentContext, BaseComponent
from aiplane_agent.log import log
from aiplane_agent.runners import Execution, RunSpec
from aiplane_agent.services import AssignmentPoll, free_port

START_TIMEOUT_S = 90.0
STATUS_POLL_S = 0.25
STOP_GRACE_S = 5.0
LOG_TAIL_BYTES = 2000
LOG_FILE = "jupyter.log"


def server_command(port: int, host: str, root_dir: str, in_container: bool) -> list[str]:
    program = ["jupyter", "server"] if in_container else [sys.executable, "-m", "jupyter_server"]
    options = [
        f"--ServerApp.ip={host}",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        "--ServerApp.open_browser=False",
        f"--ServerApp.root_dir={root_dir}",
    ]
    if in_container or os.geteuid() == 0:
        options.append("--allow-root")  # containers (and some hosts) run as root; the token still guards it
    return [*program, *options]


def log_tail(path: Path) -> str:
    try:
        with open(path, "rb") as handle:
            handle.seek(0, 2)
            handle.seek(max(0, handle.tell() - LOG_TAIL_BYTES))
            return handle.read().decode("utf-8", errors="replace").strip()
    except OSError:
        return ""


class JupyterServer:
    """One service's server, from start to stop."""

    def __init__(self, component: JupyterServices, service: dict[str, Any]) -> None:
        self.component = component
        self.ctx = component.ctx
        self.service_id: str = service["id"]
        self.token: str = service["token"]
        self.image: str | None = service.get("image")
        self.directory = component.directory / self.service_id
        self.log_path = self.directory / LOG_FILE
        self.execution: Execution | None = None
        self.url: str | None = None
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._start, name=f"jupyter-{self.service_id}", daemon=True)

    # Runs in its own thread: starting takes seconds.
    def _start(self) -> None:
        try:
            error = self._launch_and_wait()
        except Exception as failure:  # anything unforeseen is the service's error, never a silent "starting"
            error = f"the agent could not start it: {type(failure).__name__}: {failure}"
        if self.stopped.is_set():
            return
        self.component.last_error = error
        if error is not None:
            self.shutdown()
            self.component.report(self.service_id, "error", error=error)
            self.component.forget(self)
            return
        if not self.component.report(self.service_id, "running", url=self.url):
            self.shutdown()  # stopped meanwhile (or given to another worker): the server goes
            self.component.forget(self)

    def _launch_and_wait(self) -> str | None:
        container = self.ctx.runner.name == "container"
        host = self.component.listen_host
        port = free_port(host)
        notebooks = self.directory / "notebooks"
        notebooks.mkdir(parents=True, exist_ok=True)
        self.execution = self.ctx.runner.start(
            RunSpec(
                task_id=f"jupyter-{self.service_id}",
                command=server_command(
                    port,
                    "0.0.0.0" if container else host,
                    "/workspace/notebooks" if container else str(notebooks),
                    container,
                ),
                workdir=self.directory,
                log_path=self.log_path,
                env={"JUPYTER_TOKEN": self.token},
                image=self.image,
                published=(f"{host}:{port}:{port}",) if container else (),
            )
        )
        if self.stopped.is_set():
            self.shutdown()
            return None
        url = f"http://{self.component.advertise_host}:{port}/"
        deadline = time.monotonic() + START_TIMEOUT_S
        with httpx.Client(timeout=2.0) as http:
            while time.monotonic() < deadline and not self.stopped.is_set():
                code = self.execution.poll()
                if code is not None:
                    return f"the Jupyter server exited with status {code}: {log_tail(self.log_path)[-500:]}"
                if answers_status(http, f"http://{connect_host(host)}:{port}/", self.token):
                    self.url = url
                    log("jupyter server running", service_id=self.service_id, url=url)
                    return None
                time.sleep(STATUS_POLL_S)
        if self.stopped.is_set():
            return None
        return f"the Jupyter server did not answer /api/status within {START_TIMEOUT_S:g} s: {log_tail(self.log_path)[-500:]}"

    def died(self) -> int | None:
        """The exit status of a server that was running and ended on its own."""
        if self.url is None or self.execution is None or self.stopped.is_set():
            return None
        return self.execution.poll()

    def shutdown(self) -> None:
        self.stopped.set()
        if self.execution is not None:
            self.execution.stop(STOP_GRACE_S)


def connect_host(listen_host: str) -> str:
    return "127.0.0.1" if listen_host in ("0.0.0.0", "") else listen_host


def answers_status(http: httpx.Client, base_url: str, token: str) -> bool:
    """Jupyter's own status route answers, with the service's token."""
    try:
        answer = http.get(f"{base_url}api/status", headers={"Authorization": f"token {token}"})
    except httpx.HTTPError:
        return False
    return answer.status_code == 200 and "started" in answer.text


class JupyterServices(BaseComponent):
    name = "jupyter"

    def __init__(self, ctx: AgentContext) -> None:
        self.ctx = ctx
        self.directory = ctx.component_dir("jupyter")
        self.listen_host = ctx.config.host
        self.advertise_host = urlsplit(ctx.url).hostname or "127.0.0.1"
        self.servers: dict[str, JupyterServer] = {}
        self.lock = threading.Lock()
        self.poll = AssignmentPoll("services")
        self.last_error: str | None = None  # of the latest server start or exit; None once one starts

    def tick(self, ctx: AgentContext) -> None:
        services = self.poll.assigned(
            ctx.config.poll_s, lambda: ctx.api.mlworker("POST", f"/v1/jupyter/workers/{ctx.worker_id}/services")
        )
        if services is not None:
            self._follow(services)

    def _follow(self, services: list[dict[str, Any]]) -> None:
        wanted = {service["id"]: service for service in services}
        with self.lock:
            servers = dict(self.servers)
        for service_id, server in servers.items():
            if service_id not in wanted:  # ended elsewhere, or given to another worker
                self._stop(server, report=False)
            elif (code := server.died()) is not None:
                self.forget(server)
                self.last_error = f"the Jupyter server exited with status {code}: {log_tail(server.log_path)[-500:]}"
                self.report(service_id, "error", error=self.last_error)
        for service_id, service in wanted.items():
            held = servers.get(service_id)
            if service["status"] == "stopping":
                if held is not None:
                    self._stop(held, report=False)
                self.report(service_id, "stopped")
            elif service["status"] == "starting" and held is None:
                self._launch(service)
            elif service["status"] == "running" and held is None:
                self.report(service_id, "error", error="the agent restarted and its Jupyter server is gone")

    def _launch(self, service: dict[str, Any]) -> None:
        server = JupyterServer(self, service)
        with self.lock:
            self.servers[server.service_id] = server
        log("starting jupyter server", service_id=server.service_id)
        server.thread.start()

    def _stop(self, server: JupyterServer, *, report: bool) -> None:
        server.shutdown()
        self.forget(server)
        log("jupyter server stopped", service_id=server.service_id)
        if report:
            self.report(server.service_id, "stopped")

    def forget(self, server: JupyterServer) -> None:
        with self.lock:
            if self.servers.get(server.service_id) is server:
                del self.servers[server.service_id]

    def report(self, service_id: str, status: str, **fields: Any) -> bool:
        """Whether the scheduler took the report (409: the service changed meanwhile)."""
        body = {"worker_id": self.ctx.worker_id, "status": status, **{k: v for k, v in fields.items() if v is not None}}
        try:
            self.ctx.api.mlworker("POST", f"/v1/jupyter/services/{service_id}/state", body)
            return True
        except ApiError as error:
            log(
                "jupyter report refused",
                service_id=service_id,
                status=status,
                code=error.status_code,
                error=error.body[:300],
            )
        except httpx.HTTPError as error:
            log("mlworker unreachable", error=type(error).__name__)
        return False

    def running_work(self) -> int:
        with self.lock:
            return len(self.servers)

    def plugin_health(self) -> dict[str, dict[str, Any]]:
        """The jupyter plugin as this agent finds it: it can start servers (jupyter-server is
        installed, for the process runner), none it runs has died, and its latest start worked."""
        problem = self.last_error
        if self.ctx.runner.name != "container" and importlib.util.find_spec("jupyter_server") is None:
            problem = "jupyter-server is not installed on this worker"
        with self.lock:
            died = [code for server in self.servers.values() if (code := server.died()) is not None]
        if died:
            problem = f"a Jupyter server exited with status {died[0]}"
        return {"jupyter": {"status": "unhealthy", "error": problem[:1000]} if problem else {"status": "healthy"}}

    def status(self) -> dict[str, Any]:
        with self.lock:
            return {"services": {service_id: server.url or "starting" for service_id, server in self.servers.items()}}

    def stop(self) -> None:
        with self.lock:
            servers = list(self.servers.values())
        for server in servers:
            self._stop(server, report=True)
