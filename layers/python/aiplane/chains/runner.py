"""Run chains on Step Functions: one Express state machine per chain, StartSyncExecution per run.

Stored chains (and the built-in chat chain) keep their machine. An inline `POST /tasks` chain gets a
machine of its own for its one run, deleted when the run ends; a machine left by a process killed
mid-run is collected by a later inline run (`collect_stale_inline_machines`).
"""

from __future__ import annotations

import json
import time
from datetime import timedelta
from functools import cache
from typing import Any

from aiplane import clock
from aiplane.chains import store
from aiplane.chains.compiler import compile_chain, definition_digest
from aiplane.chains.engine import initial_state, new_run_id, pack_state
from aiplane.chains.model import ChainDefinition
from aiplane.data.aws import client
from aiplane.data.offload import resolve
from aiplane.errors import (
    AiplaneError,
    BadGatewayError,
    BadRequestError,
    GatewayTimeoutError,
    NotFoundError,
    UnavailableError,
)
from aiplane.identity.principal import Principal
from aiplane.outbound_policy import OutboundRefused
from aiplane.settings import get_settings
from aiplane_shared import resources

# The error a failed run reports (the step's exception class, or a States error) → what the API answers.
_ERRORS: dict[str, type[AiplaneError]] = {
    "BadGatewayError": BadGatewayError,
    "GatewayTimeoutError": GatewayTimeoutError,
    "TaskTimedOut": GatewayTimeoutError,
    "States.Timeout": GatewayTimeoutError,
    "UnavailableError": UnavailableError,
    "NotFoundError": BadRequestError,  # an unknown hook or tool named by the chain
    "OutboundRefused": OutboundRefused,  # a hook URL (or its redirect) the outbound-URL policy refuses
}


@cache
def _account_id() -> str:
    return client("sts").get_caller_identity()["Account"]


def step_function_name() -> str:
    return get_settings().resource(resources.CHAIN_STEP_FUNCTION)


def _role_arn() -> str:
    return f"arn:aws:iam::{_account_id()}:role/{get_settings().resource(resources.CHAIN_STATE_MACHINE_ROLE)}"


def _state_machine_arn(name: str) -> str:
    return f"arn:aws:states:{get_settings().region}:{_account_id()}:stateMachine:{name}"


def logging_configuration() -> dict[str, Any]:
    """Express executions keep no history: failures are only seen in these logs."""
    settings = get_settings()
    log_group = resources.chain_log_group(settings.resource_prefix)
    return {
        "level": "ERROR",
        "includeExecutionData": False,
        "destinations": [
            {
                "cloudWatchLogsLogGroup": {
                    "logGroupArn": f"arn:aws:logs:{settings.region}:{_account_id()}:log-group:{log_group}:*"
                }
            }
        ],
    }


def state_machine_name(key: str) -> str:
    return get_settings().resource(resources.CHAIN_STATE_MACHINE_PREFIX + key)


INLINE_KEY_PREFIX = "inline-"
# An inline machine older than this is no run's any more (Express runs end within five minutes).
STALE_INLINE_S = 900
_last_inline_sweep = [float("-inf")]  # monotonic time of this process's last sweep


def deploy(chain: ChainDefinition, *, key: str | None = None) -> str:
    """Create or update the chain's state machine; returns its ARN.

    A stored chain's machine is keyed by its id (updated on save); an inline run's by the run (made
    fresh, and deleted after the run); without a key, by the digest of its definition.
    """
    definition = compile_chain(chain, step_function_name())
    name = state_machine_name(key or definition_digest(definition))
    sfn = client("stepfunctions")
    arn = _state_machine_arn(name)
    if key is not None and not key.startswith(INLINE_KEY_PREFIX):
        try:
            sfn.update_state_machine(
                stateMachineArn=arn,
                definition=json.dumps(definition),
                roleArn=_role_arn(),
                loggingConfiguration=logging_configuration(),
                tracingConfiguration={"enabled": get_settings().tracing_enabled},
            )
            return arn
        except sfn.exceptions.StateMachineDoesNotExist:
            pass
    try:
        return sfn.create_state_machine(
            name=name,
            definition=json.dumps(definition),
            roleArn=_role_arn(),
            type="EXPRESS",
            loggingConfiguration=logging_configuration(),
            tracingConfiguration={"enabled": get_settings().tracing_enabled},
        )["stateMachineArn"]
    except sfn.exceptions.StateMachineAlreadyExists:  # same digest: the same definition
        return arn


def remove(state_machine_arn: str) -> None:
    sfn = client("stepfunctions")
    try:
        sfn.delete_state_machine(stateMachineArn=state_machine_arn)
    except sfn.exceptions.StateMachineDoesNotExist:
        pass


def stored_chain_key(chain_id: str) -> str:
    return "stored-" + definition_digest({"id": chain_id})


def run(
    state_machine_arn: str, input_value: Any, input_type: str, principal: Principal | None = None
) -> tuple[Any, str, list[dict[str, Any]]]:
    """Run a deployed chain synchronously as `principal` (None: the system): (output, output type, captured state units)."""
    run_id = new_run_id()
    state = execute(state_machine_arn, pack_state(initial_state(run_id, input_value, input_type, principal)), run_id)
    return resolve(state.get("current")), state.get("current_type", "any"), store.captured_units(run_id)


def execute(state_machine_arn: str, state: dict[str, Any], name: str) -> dict[str, Any]:
    """One synchronous execution (named `name`) from `state`: the state it ends with (still packed), or the failure."""
    result = client("stepfunctions").start_sync_execution(
        stateMachineArn=state_machine_arn, name=name, input=json.dumps(state)
    )
    if result["status"] == "SUCCEEDED":
        return json.loads(result.get("output") or "{}")
    raise failure(result.get("error") or "", result.get("cause") or "")


def failure(error: str, cause: str) -> AiplaneError:
    """What the API answers for a run that failed with `error` (the exception's class name, or a States error)."""
    message = cause
    try:
        message = json.loads(cause).get("errorMessage") or cause
    except (ValueError, AttributeError):
        pass
    kind = _ERRORS.get(error)
    if kind is not None:
        return kind(f"the chain failed: {message}")
    # The chain's own failures (raise_error, no branch matched, the step bound, token_limit...).
    return BadRequestError(f"the chain failed: {message or error}", code="chain_failed")


def run_keyed(
    chain: ChainDefinition, key: str, input_value: Any, input_type: str, principal: Principal | None = None
) -> tuple[Any, str, list[dict[str, Any]]]:
    """Run a chain whose state machine is deployed under `key` (by the CDK app), deploying it if missing."""
    arn = _state_machine_arn(state_machine_name(key))
    sfn = client("stepfunctions")
    try:
        return run(arn, input_value, input_type, principal)
    except sfn.exceptions.StateMachineDoesNotExist:
        return run(deploy(chain, key=key), input_value, input_type, principal)


def run_inline(
    chain: ChainDefinition, input_value: Any, input_type: str, principal: Principal | None = None
) -> tuple[Any, str, list[dict[str, Any]]]:
    """Run an inline chain on a machine made for this run alone, and delete the machine after it."""
    arn = deploy(chain, key=INLINE_KEY_PREFIX + new_run_id())
    try:
        return run(arn, input_value, input_type, principal)
    finally:
        remove(arn)
        if time.monotonic() - _last_inline_sweep[0] > STALE_INLINE_S:
            _last_inline_sweep[0] = time.monotonic()
            collect_stale_inline_machines()


def collect_stale_inline_machines(older_than_s: float = STALE_INLINE_S) -> int:
    """Delete inline machines older than `older_than_s` (left by a killed process); returns how many."""
    prefix, cutoff = state_machine_name(INLINE_KEY_PREFIX), clock.now() - timedelta(seconds=older_than_s)
    stale = [
        machine["stateMachineArn"]
        for page in client("stepfunctions").get_paginator("list_state_machines").paginate()
        for machine in page["stateMachines"]
        if machine["name"].startswith(prefix) and machine["creationDate"] <= cutoff
    ]
    for arn in stale:
        remove(arn)
    return len(stale)


def run_stored(
    chain_id: str, input_value: Any, input_type: str, principal: Principal | None = None
) -> tuple[Any, str, list[dict[str, Any]]]:
    """Running a stored chain needs view on it (the route group's edit is checked by its router)."""
    record = store.get_task_chain_record(chain_id, principal)
    return run(record.state_machine_arn, input_value, input_type, principal)


def require_chain(chain_id: str, principal: Principal | None = None) -> None:
    try:
        store.get_task_chain_record(chain_id, principal)
    except NotFoundError:
        raise NotFoundError(f"task chain {chain_id!r} not found", param="chainID") from None
