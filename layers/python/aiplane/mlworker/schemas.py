"""Request bodies of the ML worker API (contract 002), validated before anything is written."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from aiplane.mlworker.scheduling import DEFAULT_PRIORITY, MAX_PRIORITY, MIN_PRIORITY

JOB_NAME_PATTERN = r"^[a-zA-Z0-9_-]+$"
Priority = Field(default=DEFAULT_PRIORITY, ge=MIN_PRIORITY, le=MAX_PRIORITY)


class DatasetSpec(BaseModel):
    name: str | None = None
    source: str | None = None
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-fA-F]{64}$")
    mount_path: str | None = None


class CreateTaskRequest(BaseModel):
    job_name: str = Field(min_length=1, max_length=64, pattern=JOB_NAME_PATTERN)
    priority: int = Priority
    args: str | None = None
    entrypoint: str | None = None
    snapshot_id: str | None = None
    datasets: list[str] = Field(default_factory=list)
    dataset_specs: list[DatasetSpec] = Field(default_factory=list)
    cpu: int = Field(default=0, ge=0, le=1024)
    memory_gb: int = Field(default=0, ge=0, le=16384)
    gpu: int = Field(default=0, ge=0, le=64)
    metadata: dict[str, str] = Field(default_factory=dict)
    # Beyond the contract's body (docs/mlworker.md "Scheduling"): a gang's node count (gpu, cpu and
    # memory_gb are per node), the reservation it runs in, its walltime limit in seconds (default
    # per environment) and whether a higher-priority task may preempt it.
    node_count: int = Field(default=1, ge=1, le=64)
    reservation_id: str | None = Field(default=None, min_length=1, max_length=64)
    walltime: int | None = Field(default=None, ge=60, le=30 * 24 * 3600)
    preemptible: bool = False


class PriorityRequest(BaseModel):
    priority: int = Field(ge=MIN_PRIORITY, le=MAX_PRIORITY)


class CreateReservationRequest(BaseModel):
    gpu_count: int = Field(ge=1, le=4096)
    gpu_type: str | None = Field(default=None, min_length=1, max_length=64)
    node_count: int = Field(default=1, ge=1, le=512)
    expires_minutes: int = Field(default=30, ge=1, le=7 * 24 * 60)


class PluginConfigBody(BaseModel):
    enabled: bool | None = None
    mode: Literal["sidecar", "remote", "disabled"] | None = None
    image: str | None = Field(default=None, min_length=1, max_length=512)
    settings: dict[str, Any] = Field(default_factory=dict)


class CreateExperimentRequest(BaseModel):
    name: str = Field(min_length=1, max_length=128)
    description: str | None = Field(default=None, max_length=4096)


class StartJupyterRequest(BaseModel):
    name: str = Field(min_length=1, max_length=128)
    workspace: str | None = Field(default=None, max_length=1024)
    image: str = Field(default="jupyter/pytorch:latest", min_length=1, max_length=512)


# GPU worker protocol (routes beyond the contract, see aiplane_shared.routes.EXTRA_ROUTES).
class WorkerCapabilities(BaseModel):
    gpu_count: int = Field(default=0, ge=0, le=64)
    gpu_type: str | None = Field(default=None, max_length=64)
    cpu_cores: int = Field(default=0, ge=0, le=1024)
    memory_gb: int = Field(default=0, ge=0, le=16384)


class RegisterWorkerRequest(BaseModel):
    id: str | None = Field(default=None, min_length=1, max_length=128, pattern=r"^[a-zA-Z0-9_.:-]+$")
    capabilities: WorkerCapabilities = Field(default_factory=WorkerCapabilities)
    service_slots: int = Field(default=0, ge=0, le=64)
    # Admins only (403 otherwise): the worker takes every user's work, not only its owner's.
    # Omitted: unchanged (a new worker is not shared).
    shared: bool | None = None


class PluginStatusReport(BaseModel):
    """What the worker's health check of one of the task's sidecars found."""

    model_config = ConfigDict(extra="forbid")

    status: Literal["healthy", "unhealthy", "starting", "stopped"]
    url: str | None = Field(default=None, max_length=2048, pattern=r"^https?://")


class JobStateReport(BaseModel):
    """A worker reports progress of a task it holds (and, optionally, its sidecars' health)."""

    model_config = ConfigDict(extra="forbid")

    worker_id: str = Field(min_length=1, max_length=128)
    status: Literal["running", "collecting", "completed", "failed"]
    output: str | None = Field(default=None, max_length=65536)
    error: str | None = Field(default=None, max_length=4096)
    fencing_token: int = Field(ge=1)  # the lease's, from the lease answer: a stale one is refused
    exit_code: int | None = Field(default=None, ge=-255, le=255)
    log_uploaded: bool = False  # the full log is at the URL the collecting report's answer presigned
    plugin_status: dict[str, PluginStatusReport] | None = Field(default=None, max_length=16)


class HeldLease(BaseModel):
    task_id: str = Field(min_length=1, max_length=128)
    fencing_token: int = Field(ge=1)


class PluginHealthReport(PluginStatusReport):
    """What the agent's own check of a plugin it runs found."""

    error: str | None = Field(default=None, max_length=1024)


class WorkerHeartbeat(BaseModel):
    """Optional: the leases the worker runs, so that stale ones are answered in stop_tasks, and
    the health of the plugins its agent runs (plugin health answers from these reports)."""

    leases: list[HeldLease] | None = Field(default=None, max_length=1024)
    plugins: dict[str, PluginHealthReport] | None = Field(default=None, max_length=16)


class JupyterStateReport(BaseModel):
    """The worker a service was assigned to reports it running (with its URL), stopped, or failed (with why)."""

    model_config = ConfigDict(extra="forbid")

    worker_id: str = Field(min_length=1, max_length=128)
    status: Literal["running", "stopped", "error"]
    url: str | None = Field(default=None, max_length=2048, pattern=r"^https?://")
    error: str | None = Field(default=None, max_length=4096)
