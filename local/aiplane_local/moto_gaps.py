"""Fill the gaps of moto that aiplane meets, for the local stack only:

- Lambda invoke needs docker: dispatch invocations to the in-process handlers instead;
- StartSyncExecution is not implemented: run the execution on moto's ASL interpreter and wait;
- DynamoDB writes are not atomic under concurrent requests (a conditional update is a
  read-check-write without a lock): serialize them, as DynamoDB's per-item atomicity does;
- scheduled rules never fire and TTL never deletes: see `dispatchers.py`.
"""

from __future__ import annotations

import functools
import json
import threading
import time
import traceback
import uuid
from typing import Any

from moto.awslambda_simple.models import LambdaSimpleBackend
from moto.core.responses import ActionResult
from moto.dynamodb.models import DynamoDBBackend
from moto.stepfunctions.parser.api import ExecutionStatus
from moto.stepfunctions.responses import StepFunctionResponse

from aiplane_local.lambda_runtime import invoke, logical_function_name

SYNC_EXECUTION_LIMIT_S = 300  # Express workflows run at most five minutes

MOTO_CONFIG = {
    "stepfunctions": {"execute_state_machine": True},
    "lambda": {"use_docker": False},
}


def install(resource_prefix: str) -> None:
    def invoke_in_process(self: Any, function_name: str, qualifier: Any, body: Any, headers: Any, response_headers: dict) -> bytes:
        event = json.loads(body or "{}")
        try:
            result = invoke(logical_function_name(function_name, resource_prefix), event)
        except Exception as error:  # reported the way Lambda does, so Retry/Catch see it
            response_headers["x-amz-function-error"] = "Unhandled"
            return json.dumps({
                "errorMessage": str(error),
                "errorType": type(error).__name__,
                "stackTrace": traceback.format_tb(error.__traceback__),
            }).encode()
        return json.dumps(result).encode()

    LambdaSimpleBackend.invoke = invoke_in_process
    StepFunctionResponse.start_sync_execution = _start_sync_execution
    _serialize_dynamodb_writes()


_DYNAMODB_WRITES = ("put_item", "update_item", "delete_item", "transact_write_items")
_dynamodb_write_lock = threading.RLock()


def _serialize_dynamodb_writes() -> None:
    for name in _DYNAMODB_WRITES:
        original = getattr(DynamoDBBackend, name)
        if getattr(original, "serialized", False):
            continue

        def serialized(*args: Any, __original: Any = original, **kwargs: Any) -> Any:
            with _dynamodb_write_lock:
                return __original(*args, **kwargs)

        serialized.serialized = True  # type: ignore[attr-defined]
        setattr(DynamoDBBackend, name, functools.wraps(original)(serialized))


def _start_sync_execution(self: StepFunctionResponse) -> ActionResult:
    backend = self.stepfunction_backend
    execution = backend.start_execution(
        self._get_param("stateMachineArn"),
        self._get_param("name") or str(uuid.uuid4()),
        self._get_param("input", if_none="{}"),
    )
    deadline = time.monotonic() + SYNC_EXECUTION_LIMIT_S
    while execution.status == ExecutionStatus.RUNNING and time.monotonic() < deadline:
        time.sleep(0.005)
        execution = backend.describe_execution(execution.execution_arn)
    if execution.status == ExecutionStatus.RUNNING:
        backend.stop_execution(execution.execution_arn)
        execution = backend.describe_execution(execution.execution_arn)
        status, error, cause = "TIMED_OUT", "States.Timeout", "sync execution exceeded its limit"
    else:
        status, error, cause = str(getattr(execution.status, "value", execution.status)), execution.error, execution.cause
    response: dict[str, Any] = {
        "executionArn": execution.execution_arn,
        "stateMachineArn": execution.state_machine_arn,
        "name": execution.name,
        "startDate": execution.start_date,
        "stopDate": execution.stop_date,
        "status": status,
        "input": execution.execution_input,
    }
    if execution.output is not None:
        response["output"] = execution.output if isinstance(execution.output, str) else json.dumps(execution.output)
    if error is not None:
        response["error"] = error
    if cause is not None:
        response["cause"] = cause
    return ActionResult(response)
