"""Uploaded models on GPU agents: which agent serves which model, and what the agents report.

An agent asks for its models (`agent_models`, with its contract's credential): it gets those
assigned to it, plus `loading` models nobody serves yet (or whose agent stopped heartbeating) of
owners who may reach it (the agent's owner; every user, once an admin shared it), each assigned
with a conditional write so two agents never take the same one. Each comes with a presigned GET
of its artifact: the agent needs no AWS credentials for it. The agent then reports `serving`
(with the endpoint on its own address that predictions go to) or `failed` (with why: a format
it cannot serve, an artifact it cannot load); a model never stays `loading` on an agent that
gave up. A model no longer in the answer (deleted, or moved to another agent) is unloaded.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from pynamodb.exceptions import UpdateError

from aiplane.commerce import serving
from aiplane.commerce.records import ALL_MODELS, ModelRecord, everyone_shards, model_key, ready_keys
from aiplane.data.conditions import refused_by_condition
from aiplane.data.models import get_or_404
from aiplane.errors import ConflictError, ValidationError
from aiplane.gpufarm import agent_liveness, loadbalancer
from aiplane.gpufarm.records import GpuAgentRecord
from aiplane.identity.principal import Principal

SERVING = "serving"  # an agent reports serving (the model becomes ready) or failed
MODELS_PER_AGENT = 16
DOWNLOAD_URL_EXPIRY_S = 900
_HELD = (serving.LOADING, serving.READY)


def _held_models() -> list[ModelRecord]:
    """Models that are, or are to be, served; oldest first."""
    held = [
        model
        for shard in everyone_shards(ALL_MODELS)
        for model in ModelRecord.everyone.query(shard, filter_condition=ModelRecord.status.is_in(*_HELD))
    ]
    return sorted(held, key=lambda model: model.gsi2sk)


def _may_serve(agent: GpuAgentRecord, model: ModelRecord) -> bool:
    """The same rule as the proxy's: a user's work reaches their own agents and shared ones."""
    return model.owner_id == agent.owner_id or bool(agent.shared)


def agent_models(agent: Principal, instance_id: str) -> list[dict[str, Any]]:
    record = loadbalancer.own_agent(agent, instance_id)
    models = _held_models()
    held = [model for model in models if model.agent_instance_id == instance_id]
    live = agent_liveness.live_instance_ids()
    for model in models:
        if len(held) >= MODELS_PER_AGENT:
            break
        previous = model.agent_instance_id
        if previous == instance_id or (previous in live) or not _may_serve(record, model):
            continue
        if previous is None and model.status != serving.LOADING:
            continue  # served outside the fleet's assignment (an operator's endpoint): leave it
        assigned = (
            ModelRecord.agent_instance_id.does_not_exist()
            if previous is None
            else ModelRecord.agent_instance_id == previous
        )
        try:  # a model whose agent died loads again here
            model.update(
                actions=[
                    ModelRecord.agent_instance_id.set(instance_id),
                    ModelRecord.status.set(serving.LOADING),
                    *ready_keys(False, model.model_id),
                    ModelRecord.endpoint_url.remove(),
                    ModelRecord.replicas.set(0),
                ],
                condition=ModelRecord.status.is_in(*_HELD) & assigned,
            )
        except UpdateError as error:
            if not refused_by_condition(error):
                raise
            continue  # another agent took it, or it was deleted meanwhile
        held.append(model)
    return [_assignment(model) for model in held]


def _assignment(model: ModelRecord) -> dict[str, Any]:
    return {
        "model_id": model.model_id,
        "name": model.name,
        "format": model.format,
        "version": model.version,
        "status": model.status,
        "size_bytes": int(model.size_bytes),
        "gpu_required": bool(model.gpu_required),
        "download_url": serving.artifact_download_url(model, expires_s=DOWNLOAD_URL_EXPIRY_S),
    }


def report(
    agent: Principal, instance_id: str, model_id: str, status: str, endpoint: str | None, error: str | None
) -> dict[str, Any]:
    record = loadbalancer.own_agent(agent, instance_id)
    try:
        if status == SERVING:
            if not endpoint:
                raise ValidationError("a serving model needs its endpoint", param="endpoint")
            _check_endpoint(endpoint, record.url)
            serving.mark_serving(model_id, endpoint, agent_instance_id=instance_id)
        else:
            if not error:
                raise ValidationError("a failed model needs its error", param="error")
            serving.mark_failed(model_id, error, agent_instance_id=instance_id)
    except UpdateError as failure:
        if not refused_by_condition(failure):
            raise
        get_or_404(ModelRecord, model_key(model_id), "META", missing=f"no model {model_id}")
        raise ConflictError(f"model {model_id} is not assigned to {instance_id}") from None
    return {"model_id": model_id, "status": serving.READY if status == SERVING else serving.FAILED}


def _check_endpoint(endpoint: str, agent_url: str) -> None:
    """Predictions go to the agent's own registered address, nowhere else (decided before connecting)."""
    try:
        parts, agent = urlsplit(endpoint), urlsplit(agent_url)
        same_origin = (parts.scheme, parts.hostname, parts.port) == (agent.scheme, agent.hostname, agent.port)
    except ValueError:
        raise ValidationError("endpoint is not a valid URL", param="endpoint") from None
    if not same_origin or parts.username is not None or parts.password is not None or not parts.path.startswith("/"):
        raise ValidationError(f"endpoint must be a path on the agent's address {agent_url}", param="endpoint")
