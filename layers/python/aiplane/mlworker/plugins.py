"""Plugins: a fixed catalog defined here; their configuration lives in the mlworker table.

Each plugin declares its settings as a pydantic model (unknown keys refused), so a PUT of a
config is validated against that plugin's own schema before anything is stored. A plugin with
no stored config runs its defaults. DELETE disables it (the stored config keeps its settings).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError

from aiplane.clock import now_iso
from aiplane.data.models import get_or_none
from aiplane.errors import NotFoundError, ValidationError
from aiplane.mlworker import audit, workers
from aiplane.mlworker.audit import Actor
from aiplane.mlworker.common import without_none
from aiplane.mlworker.models import PluginConfigRecord, WorkerRecord
from aiplane.mlworker.schemas import PluginConfigBody

REPORT_FRESH_S = workers.HEARTBEAT_TIMEOUT_S  # an agent's report older than this is no report


class _Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")


class JupyterSettings(_Settings):
    port: int = Field(default=8888, ge=1024, le=65535)
    idle_timeout_minutes: int = Field(default=60, ge=0, le=10080)


class VllmSettings(_Settings):
    model: str | None = Field(default=None, min_length=1)
    tensor_parallel_size: int = Field(default=1, ge=1, le=8)
    max_model_len: int | None = Field(default=None, ge=1)
    gpu_memory_utilization: float = Field(default=0.9, gt=0, le=1)


class TensorboardSettings(_Settings):
    log_dir: str = Field(default="/workspace/runs", min_length=1)
    reload_interval_s: int = Field(default=30, ge=1, le=3600)


class MlflowSettings(_Settings):
    tracking_uri: str = Field(default="http://127.0.0.1:5000", pattern=r"^(https?|file)://")
    experiment_name: str | None = None


class WandbSettings(_Settings):
    project: str | None = None
    entity: str | None = None
    mode: Literal["online", "offline", "disabled"] = "offline"


@dataclass(frozen=True)
class PluginSpec:
    name: str
    version: str
    description: str
    requires_restart: bool
    default_mode: str
    default_image: str | None
    settings: type[_Settings]
    enabled_by_default: bool = True


CATALOG: dict[str, PluginSpec] = {
    spec.name: spec
    for spec in (
        PluginSpec(
            "jupyter",
            "4.2.5",
            "JupyterLab notebook services",
            False,
            "sidecar",
            "jupyter/pytorch:latest",
            JupyterSettings,
        ),
        PluginSpec(
            "vllm",
            "0.6.3",
            "vLLM model serving",
            True,
            "sidecar",
            "vllm/vllm-openai:v0.6.3",
            VllmSettings,
            enabled_by_default=False,
        ),
        PluginSpec(
            "tensorboard",
            "2.18.0",
            "TensorBoard training dashboards",
            False,
            "sidecar",
            "tensorflow/tensorflow:2.18.0",
            TensorboardSettings,
        ),
        PluginSpec(
            "mlflow",
            "2.17.2",
            "MLflow experiment tracking",
            False,
            "remote",
            None,
            MlflowSettings,
            enabled_by_default=False,
        ),
        PluginSpec(
            "wandb",
            "0.18.5",
            "Weights & Biases experiment tracking",
            False,
            "remote",
            None,
            WandbSettings,
            enabled_by_default=False,
        ),
    )
}


def check_names(names: Iterable[str], param: str) -> None:
    """400 unless every name is in the catalog."""
    unknown = sorted(set(names) - set(CATALOG))
    if unknown:
        raise ValidationError(f"unknown plugins in {param}: {', '.join(unknown)}", param=param)


def spec_of(name: str) -> PluginSpec:
    spec = CATALOG.get(name)
    if spec is None:
        raise NotFoundError(f"plugin {name} not found")
    return spec


def _stored(name: str) -> PluginConfigRecord | None:
    return get_or_none(PluginConfigRecord, f"PLUGIN#{name}", "CONFIG", consistent_read=True)


def config_of(name: str) -> dict[str, Any]:
    spec = spec_of(name)
    stored = _stored(name)
    if stored is None:
        return without_none(
            {
                "enabled": spec.enabled_by_default,
                "mode": spec.default_mode if spec.enabled_by_default else "disabled",
                "image": spec.default_image,
                "settings": spec.settings().model_dump(exclude_none=True),
            }
        )
    return without_none(
        {"enabled": stored.enabled, "mode": stored.mode, "image": stored.image, "settings": stored.settings or {}}
    )


def _validated(spec: PluginSpec, body: PluginConfigBody) -> dict[str, Any]:
    try:
        settings = spec.settings.model_validate(body.settings).model_dump(exclude_none=True)
    except PydanticValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(part) for part in ("settings", *first.get("loc", ())))
        raise ValidationError(f"{field}: {first.get('msg', 'invalid')}", param=field) from None
    enabled = body.enabled if body.enabled is not None else body.mode != "disabled"
    mode = body.mode or (spec.default_mode if enabled else "disabled")
    if enabled and mode == "disabled":
        raise ValidationError("an enabled plugin needs mode sidecar or remote", param="mode")
    if not enabled:
        mode = "disabled"
    image = body.image or spec.default_image
    if enabled and mode == "sidecar" and image is None:
        raise ValidationError(f"plugin {spec.name} in sidecar mode needs an image", param="image")
    return {"enabled": enabled, "mode": mode, "image": image, "settings": settings}


def _store(name: str, config: dict[str, Any]) -> None:
    PluginConfigRecord(
        f"PLUGIN#{name}",
        "CONFIG",
        enabled=config["enabled"],
        mode=config["mode"],
        image=config["image"],
        settings=config["settings"],
        updated_at=now_iso(),
    ).save()


def update_config(name: str, body: PluginConfigBody, actor: Actor) -> dict[str, Any]:
    spec = spec_of(name)
    config = _validated(spec, body)
    _store(name, config)
    audit.append_event(
        "plugin_configured",
        actor,
        resource=f"plugin/{name}",
        action="update_config",
        metadata={"enabled": config["enabled"], "mode": config["mode"]},
    )
    return plugin_body(name)


def disable(name: str, actor: Actor) -> None:
    config = {**config_of(name), "enabled": False, "mode": "disabled"}
    config.setdefault("image", None)
    _store(name, config)
    audit.append_event("plugin_configured", actor, resource=f"plugin/{name}", action="disable")


@dataclass(frozen=True)
class Health:
    """A plugin's health from what agents last reported (`WorkerRecord.plugin_health`)."""

    status: str  # healthy | degraded | unhealthy (the contract's HealthResponse)
    reports: list[dict[str, Any]]  # the fresh ones: [{"worker_id", "status", "reported_at", "error"?, "url"?}]
    reason: str | None = None  # why it is not healthy

    @property
    def last_check(self) -> str | None:
        return max((report["reported_at"] for report in self.reports), default=None)


def fresh_reports(
    name: str, now_epoch: float | None = None, listed: list[WorkerRecord] | None = None
) -> list[dict[str, Any]]:
    """What the agents of live workers reported of `name` within the last `REPORT_FRESH_S`
    (`listed`: the workers, when the caller has read them already)."""
    now_epoch = now_epoch or time.time()
    reports = []
    for worker in workers.list_workers() if listed is None else listed:
        report = (worker.plugin_health or {}).get(name)
        if (
            report is not None
            and workers.effective_status(worker, now_epoch) != workers.OFFLINE
            and now_epoch - float(report["reported_epoch"]) <= REPORT_FRESH_S
        ):
            reports.append(
                {
                    "worker_id": worker.worker_id,
                    **{key: value for key, value in report.items() if key != "reported_epoch"},
                }
            )
    return reports


def health_of(name: str, *, config: dict[str, Any] | None = None, listed: list[WorkerRecord] | None = None) -> Health:
    """healthy: enabled, and every fresh agent report says healthy; degraded: some do (or some are
    starting); unhealthy: disabled, none does, or no agent reported it lately (unknown: nothing
    claims healthy unless an agent's check found it so). `config` and `listed`: what the caller
    has read already."""
    if not (config or config_of(name))["enabled"]:
        return Health("unhealthy", [], "disabled")
    reports = fresh_reports(name, listed=listed)
    if not reports:
        return Health("unhealthy", [], f"no agent reported it in the last {REPORT_FRESH_S} s")
    healthy = [report for report in reports if report["status"] == "healthy"]
    if len(healthy) == len(reports):
        return Health("healthy", reports)
    failing = next((report for report in reports if report["status"] != "healthy"), reports[0])
    reason = f"worker {failing['worker_id']}: {failing.get('error') or failing['status']}"
    starting = any(report["status"] == "starting" for report in reports)
    return Health("degraded" if healthy or starting else "unhealthy", reports, reason)


def plugin_bodies() -> list[dict[str, Any]]:
    """Every plugin of the catalog, from one read of the workers (and one of each config)."""
    listed = workers.list_workers()
    return [plugin_body(name, listed=listed) for name in CATALOG]


def plugin_body(name: str, *, listed: list[WorkerRecord] | None = None) -> dict[str, Any]:
    spec = spec_of(name)
    config = config_of(name)
    health = health_of(name, config=config, listed=listed)
    if not config["enabled"]:
        status = "stopped"
    elif health.status == "healthy":
        status = "healthy"
    else:
        status = "starting" if any(report["status"] == "starting" for report in health.reports) else "unhealthy"
    url = next((report["url"] for report in health.reports if report.get("url")), None)
    return {
        "name": name,
        "enabled": config["enabled"],
        "mode": config["mode"],
        "status": without_none({"name": name, "status": status, "url": url, "last_check": health.last_check}),
        "config": config,
        "requires_restart": spec.requires_restart,
        "version": spec.version,
    }


def health_body(name: str) -> dict[str, Any]:
    """The contract's HealthResponse (`timestamp`: when answered) and, beyond it, when the newest
    report was made (`last_check`), each fresh report (`workers`) and why it is not healthy."""
    spec = spec_of(name)
    health = health_of(name)
    return without_none(
        {
            "status": health.status,
            "version": spec.version,
            "timestamp": now_iso(),
            "last_check": health.last_check,
            "workers": health.reports,
            "reason": health.reason,
        }
    )
