"""Counting the gpufarm table's items a request reads (botocore hooks on the models' one client),
and seeding many items the way their writers store them; used by test_pages and bench/gpufarm_pages."""

from __future__ import annotations

import uuid
from datetime import timedelta

from aiplane import clock
from aiplane.commerce.records import (
    ALL_MODELS,
    ModelRecord,
    TransactionRecord,
    everyone_shard,
    model_key,
    model_owner_key,
)
from aiplane.data.aws import client as aws_client
from aiplane.gpufarm import agent_liveness, contract_states
from aiplane.gpufarm.records import GpuAgentRecord, GpuContractRecord, LoadBalancerRecord, RunningCountRecord
from aiplane_local.reads import counting_reads as counting_reads_on

MODELS = (GpuContractRecord, GpuAgentRecord, RunningCountRecord, ModelRecord, TransactionRecord, LoadBalancerRecord)


def counting_reads():
    return counting_reads_on(*MODELS, clients=(aws_client("dynamodb"),))  # request_counts uses boto3's client


def seed_contracts(
    user_id: str, count: int, *, status: str = contract_states.TERMINATED, offer_id: str = "g5.xlarge"
) -> None:
    """Contracts as `contracts.create_contracts` keys them, batch-written (counted as set_status would)."""
    moment = clock.now() - timedelta(days=1)
    with GpuContractRecord.batch_write() as batch:
        for _ in range(count):
            contract_id = f"contract_{uuid.uuid4().hex[:16]}"
            batch.save(
                contract_states.set_index_keys(
                    GpuContractRecord(
                        GpuContractRecord.key(contract_id),
                        contract_id=contract_id,
                        user_id=user_id,
                        provider="aws",
                        offer_id=offer_id,
                        status=status,
                        created_at=moment,
                        updated_at=moment,
                    )
                )
            )
    if status == contract_states.RUNNING:
        contract_states.add_running(count)


def seed_models(owner_id: str, count: int, *, status: str = "failed") -> None:
    now = clock.now_iso()
    with ModelRecord.batch_write() as batch:
        for _ in range(count):
            model_id = str(uuid.uuid4())
            batch.save(
                ModelRecord(
                    model_key(model_id),
                    gsi1pk=model_owner_key(owner_id),
                    gsi1sk=f"{now}#{model_id}",
                    gsi2pk=everyone_shard(ALL_MODELS),
                    gsi2sk=f"{now}#{model_id}",
                    model_id=model_id,
                    owner_id=owner_id,
                    name="seed",
                    format="onnx",
                    framework="onnx",
                    version="1",
                    status=status,
                    artifact_key=f"models/{owner_id}/{model_id}/m.onnx",
                    size_bytes=1,
                    created_at=now,
                    updated_at=now,
                )
            )


def seed_agents(owner_id: str, count: int, *, live: bool) -> None:
    """Agents of a user's: live (heartbeating) or ones that stopped and TTL has not removed yet."""
    moment = clock.now()
    expires = int((moment + (timedelta(seconds=60) if live else -timedelta(hours=1))).timestamp())
    with GpuAgentRecord.batch_write() as batch:
        for _ in range(count):
            instance_id = f"i-{uuid.uuid4().hex[:17]}"
            batch.save(
                agent_liveness.set_index_keys(
                    GpuAgentRecord(
                        GpuAgentRecord.key(instance_id),
                        instance_id=instance_id,
                        url="http://127.0.0.1:9",
                        owner_id=owner_id,
                        registered_at=moment,
                        heartbeat_at=moment,
                        expires_at_epoch=expires,
                    )
                )
            )
