"""Backfill of the gpufarm keys and counts that pages read (issue 18), for data written before them.

    AIPLANE_ENV=prod AWS_REGION=<region> python -m aiplane.gpufarm.backfill

Idempotent: it rewrites each contract's and agent's index keys from the item's own fields (the
rule the writers use), puts ready models in the ready-now index, then sets the running count from
the contracts, so a second run changes nothing. It scans the table once (a migration, never a request path); run it right after the
deploy that brings the new keys (a status change during the run may leave the count off by it:
run it again). Transactions and models need none: their shard 0 is the key they had.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from pynamodb.connection import Connection
from pynamodb.exceptions import UpdateError
from pynamodb.transactions import TransactWrite

from aiplane.commerce.records import MODEL_READY, ModelRecord, ready_keys
from aiplane.data.conditions import refused_by_condition
from aiplane.gpufarm import agent_liveness, contract_states
from aiplane.gpufarm.records import RUNNING_COUNT_SHARDS, GpuAgentRecord, GpuContractRecord, RunningCountRecord
from aiplane.settings import get_settings

KEYS = ("gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk")


def _keys(record: Any) -> tuple[Any, ...]:
    return tuple(getattr(record, name) for name in KEYS)


def _rekey(record: Any, set_keys: Callable[[Any], Any], unchanged: Any) -> int:
    """1 when the keys were rewritten; 0 when they were right, or the item changed meanwhile
    (`unchanged` failed: its writer keeps it, or the next run fixes it)."""
    before = _keys(record)
    after = _keys(set_keys(record))
    if after == before:
        return 0
    model = type(record)
    try:
        record.update(
            actions=[getattr(model, name).set(value) for name, value in zip(KEYS, after, strict=True)],
            condition=unchanged,
        )
    except UpdateError as error:
        if not refused_by_condition(error):
            raise
        return 0
    return 1


def backfill() -> dict[str, int]:
    contracts = agents = running = 0
    for contract in GpuContractRecord.scan(GpuContractRecord.pk.startswith("CONTRACT#")):
        contracts += _rekey(contract, contract_states.set_index_keys, GpuContractRecord.status == contract.status)
        running += contract.status == contract_states.RUNNING
    for agent in GpuAgentRecord.scan(GpuAgentRecord.pk.startswith("GPUAGENT#") & (GpuAgentRecord.sk == "META")):
        agents += _rekey(
            agent,
            agent_liveness.set_index_keys,
            (GpuAgentRecord.expires_at_epoch == agent.expires_at_epoch) & (GpuAgentRecord.shared == agent.shared),
        )
    models = 0
    for model in ModelRecord.scan(
        ModelRecord.pk.startswith("MODEL#")
        & (ModelRecord.sk == "META")
        & (ModelRecord.status == MODEL_READY)
        & ModelRecord.gsi3pk.does_not_exist()
    ):
        try:
            model.update(actions=ready_keys(True, model.model_id), condition=ModelRecord.status == MODEL_READY)
            models += 1
        except UpdateError as error:
            if not refused_by_condition(error):
                raise
    with TransactWrite(connection=Connection(region=get_settings().region)) as transaction:
        for shard in range(RUNNING_COUNT_SHARDS):
            transaction.save(
                RunningCountRecord(RunningCountRecord.shard_key(shard), "RUNNING", value=running if shard == 0 else 0)
            )
    return {"contracts_rekeyed": contracts, "agents_rekeyed": agents, "models_indexed": models, "running": running}


if __name__ == "__main__":
    print(json.dumps(backfill()))
