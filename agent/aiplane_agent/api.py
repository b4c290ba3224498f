"""The agent's one client of the control plane: gpufarm's agent routes and mlworker's worker
protocol, over HTTPS, with the one credential the agent holds."""

from __future__ import annotations

from typing import Any

import httpx

from aiplane_agent.config import AgentConfig

API_TIMEOUT_S = 10.0


class ApiError(Exception):
    """The API answered, but not with success."""

    def __init__(self, status_code: int, body: str) -> None:
        super().__init__(f"{status_code}: {body[:300]}")
        self.status_code = status_code
        self.body = body


class ControlPlane:
    def __init__(self, config: AgentConfig, transport: httpx.BaseTransport | None = None) -> None:
        self.config = config
        self.http = httpx.Client(timeout=API_TIMEOUT_S, transport=transport)
        # Each family's credential header: gpufarm takes a bearer key, mlworker X-API-Key.
        self.headers = {
            config.gpufarm_url: {"Authorization": f"Bearer {config.credential}"},
            config.mlworker_url: {"X-API-Key": config.credential},
        }

    def close(self) -> None:
        self.http.close()

    def _call(self, base: str | None, method: str, path: str, json: Any = None) -> httpx.Response:
        if base is None:
            raise RuntimeError(f"no API base URL configured for {path}")
        answer = self.http.request(method, base + path, json=json, headers=self.headers[base])
        if answer.status_code >= 400:
            raise ApiError(answer.status_code, answer.text)
        return answer

    # For components with routes of their own (Jupyter and model state reports): the answer, or ApiError.
    def gpufarm(self, method: str, path: str, json: Any = None) -> httpx.Response:
        return self._call(self.config.gpufarm_url, method, path, json)

    def mlworker(self, method: str, path: str, json: Any = None) -> httpx.Response:
        return self._call(self.config.mlworker_url, method, path, json)

    # gpufarm: the fleet's agent routes (AGENT_ROUTES).
    def gpufarm_register(self, instance_id: str, url: str, gpus: list[dict[str, Any]]) -> dict[str, Any]:
        return self._call(
            self.config.gpufarm_url,
            "POST",
            "/api/v1/gpu/agents/register",
            {"instance_id": instance_id, "url": url, "gpus": gpus},
        ).json()

    def gpufarm_heartbeat(self, instance_id: str, load: dict[str, Any]) -> dict[str, Any]:
        return self._call(
            self.config.gpufarm_url, "POST", "/api/v1/gpu/agents/heartbeat", {"instance_id": instance_id, **load}
        ).json()

    def gpufarm_deregister(self, instance_id: str) -> None:
        self._call(self.config.gpufarm_url, "DELETE", f"/api/v1/gpu/agents/{instance_id}")

    # mlworker: the GPU worker protocol (EXTRA_ROUTES).
    def register_worker(self, worker_id: str, capabilities: dict[str, Any], service_slots: int) -> dict[str, Any]:
        body: dict[str, Any] = {"id": worker_id, "capabilities": capabilities, "service_slots": service_slots}
        if self.config.shared:  # otherwise left as it is (an admin may have shared this worker)
            body["shared"] = True
        return self._call(self.config.mlworker_url, "POST", "/v1/scheduler/workers", body).json()

    def worker_heartbeat(
        self, worker_id: str, leases: dict[str, int], plugins: dict[str, dict[str, Any]] | None = None
    ) -> dict[str, Any]:
        """`leases`: task id -> fencing token of each task this agent runs; `plugins`: the health
        of each mlworker plugin it runs (`Component.plugin_health`)."""
        body: dict[str, Any] = {
            "leases": [{"task_id": task_id, "fencing_token": token} for task_id, token in leases.items()]
        }
        if plugins is not None:
            body["plugins"] = plugins
        return self._call(self.config.mlworker_url, "POST", f"/v1/scheduler/workers/{worker_id}/heartbeat", body).json()

    def lease(self, worker_id: str) -> dict[str, Any] | None:
        """The next task for this worker, or None when nothing fits."""
        answer = self._call(self.config.mlworker_url, "POST", f"/v1/scheduler/workers/{worker_id}/lease")
        return None if answer.status_code == 204 else answer.json()

    def report_task(self, task_id: str, report: dict[str, Any]) -> dict[str, Any]:
        return self._call(self.config.mlworker_url, "POST", f"/v1/scheduler/jobs/{task_id}/state", report).json()

    def put_presigned(self, url: str, content: bytes) -> None:
        """An upload the API presigned (task logs): no credential of ours travels with it."""
        answer = httpx.put(url, content=content, timeout=API_TIMEOUT_S * 6)
        answer.raise_for_status()

    def get_presigned(self, url: str, target, chunk_bytes: int = 1 << 20) -> None:
        """Stream a presigned download (datasets) into an open binary file."""
        with httpx.stream("GET", url, timeout=API_TIMEOUT_S * 6) as answer:
            answer.raise_for_status()
            for chunk in answer.iter_bytes(chunk_bytes):
                target.write(chunk)
