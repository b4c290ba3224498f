"""Run chains on Step Functions: one Express state machine per chain, StartSyncExecution per run."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

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
from aiplane.outbound import OutboundRefused
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
    return {"level": "ERROR", "includeExecutionData": False, "destinations": [{"cloudWatchLogsLogGroup": {
        "logGroupArn": f"arn:aws:logs:{settings.region}:{_account_id()}:log-group:{log_group}:*"}}]}


def state_machine_name(key: str) -> str:
    return get_settings().resource(resources.CHAIN_STATE_MACHINE_PREFIX + key)


def deploy(chain: ChainDefinition, *, key: str | None = None) -> str:
    """Create or update the chain's state machine; returns its ARN.

    A stored chain's machine is keyed by its id (updated on save); an inline chain's by the digest
    of its definition, so running the same inline chain again reuses its machine.
    """
    definition = compile_chain(chain, step_function_name())
    name = state_machine_name(key or definition_digest(definition))
    sfn = client("stepfunctions")
    arn = _state_machine_arn(name)
    if key is not None:
        try:
            sfn.update_state_machine(stateMachineArn=arn, definition=json.dumps(definition), roleArn=_role_arn(),
                                     loggingConfiguration=logging_configuration(),
                                     tracingConfiguration={"enabled": get_settings().tracing_enabled})
            return arn
        except sfn.exceptions.StateMachineDoesNotExist:
            pass
    try:
        return sfn.create_state_machine(name=name, definition=json.dumps(definition), roleArn=_role_arn(),
                                        type="EXPRESS", loggingConfiguration=logging_configuration(),
                                        tracingConfiguration={"enabled": get_settings().tracing_enabled})["stateMachineArn"]
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


def run(state_machine_arn: str, input_value: Any, input_type: str,
        principal: Principal | None = None) -> tuple[Any, str, list[dict[str, Any]]]:
    """Run a deployed chain synchronously as `principal` (None: the system): (output, output type, captured state units)."""
    run_id = new_run_id()
    state = pack_state(initial_state(run_id, input_value, input_type, principal))
    result = client("stepfunctions").start_sync_execution(stateMachineArn=state_machine_arn, name=run_id, input=json.dumps(state))
    if result["status"] == "SUCCEEDED":
        state = json.loads(result.get("output") or "{}")
        return resolve(state.get("current")), state.get("current_type", "any"), store.captured_units(run_id)
    raise _failure(result.get("error") or "", result.get("cause") or "")


def _failure(error: str, cause: str) -> AiplaneError:
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


def run_keyed(chain: ChainDefinition, key: str, input_value: Any, input_type: str,
              principal: Principal | None = None) -> tuple[Any, str, list[dict[str, Any]]]:
    """Run a chain whose state machine is deployed under `key` (by the CDK app), deploying it if missing."""
    arn = _state_machine_arn(state_machine_name(key))
    sfn = client("stepfunctions")
    try:
        return run(arn, input_value, input_type, principal)
    except sfn.exceptions.StateMachineDoesNotExist:
        return run(deploy(chain, key=key), input_value, input_type, principal)


def run_inline(chain: ChainDefinition, input_value: Any, input_type: str,
               principal: Principal | None = None) -> tuple[Any, str, list[dict[str, Any]]]:
    return run(deploy(chain), input_value, input_type, principal)


def run_stored(chain_id: str, input_value: Any, input_type: str,
               principal: Principal | None = None) -> tuple[Any, str, list[dict[str, Any]]]:
    """Running a stored chain needs view on it (the route group's edit is checked by its router)."""
    record = store.get_task_chain_record(chain_id, principal)
    return run(record.state_machine_arn, input_value, input_type, principal)


def require_chain(chain_id: str, principal: Principal | None = None) -> None:
    try:
        store.get_task_chain_record(chain_id, principal)
    except NotFoundError:
        raise NotFoundError(f"task chain {chain_id!r} not found", param="chainID") from None
