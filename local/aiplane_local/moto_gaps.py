"""Fill the gaps of moto that aiplane meets, for the local stack only:

- Lambda invoke needs docker: dispatch invocations to the in-process handlers instead;
- StartSyncExecution is not implemented: run the execution on moto's ASL interpreter and wait;
- DynamoDB writes are not atomic across the server's request threads (a conditional put can
  pass its check while another thread writes the item; a cancelled transaction restores a
  copy of the table that drops concurrent writes): serialize them, as DynamoDB guarantees;
- a DynamoDB transaction backs up every table it touches by deep-copying it, once per item: on the
  identity table (users, keys, spend logs) that is tens of ms per transaction, under the GIL, growing
  with the table. Back up only the items the transaction names, and restore them if it is cancelled;
- S3 stores a presigned POST without checking its policy: enforce the conditions (content-length-range,
  exact and starts-with fields, expiry) and a declared `x-amz-checksum-sha256` as S3 does, so size
  limits and checksums are tested for real; and apply its `tagging` field, which moto drops;
- the interpreter's StringMatches is fnmatch (`?`, `[...]` are wildcards, `\\*` is no escape):
  match the way Step Functions does (only `*` is a wildcard; `\\*` and `\\\\` are escapes);
- RunInstances ignores ClientToken: repeat the first launch for a known token, and answer
  IdempotentParameterMismatch when the repeat asks for another instance type, as EC2 does;
- scheduled rules never fire and TTL never deletes: see `dispatchers.py`.
"""

from __future__ import annotations

import base64
import copy
import functools
import hashlib
import json
import re
import threading
import time
import traceback
import uuid
from datetime import UTC, datetime
from typing import Any

import xmltodict
from moto.awslambda_simple.models import LambdaSimpleBackend
from moto.core.responses import ActionResult
from moto.dynamodb import models as moto_dynamodb_models
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.models.table import Table
from moto.ec2.exceptions import EC2ClientError
from moto.ec2.models.instances import InstanceBackend
from moto.s3.responses import S3Response
from moto.stepfunctions.parser.api import ExecutionStatus
from moto.stepfunctions.parser.asl.component.state.choice.comparison.operator.implementations.string_operators import (
    StringMatches,
)
from moto.stepfunctions.responses import StepFunctionResponse

from aiplane_local.lambda_runtime import invoke, logical_function_name

SYNC_EXECUTION_LIMIT_S = 300  # Express workflows run at most five minutes

MOTO_CONFIG = {
    "stepfunctions": {"execute_state_machine": True},
    "lambda": {"use_docker": False},
}


def install(resource_prefix: str) -> None:
    def invoke_in_process(
        self: Any, function_name: str, qualifier: Any, body: Any, headers: Any, response_headers: dict
    ) -> bytes:
        event = json.loads(body or "{}")
        try:
            result = invoke(logical_function_name(function_name, resource_prefix), event)
        except Exception as error:  # reported the way Lambda does, so Retry/Catch see it
            response_headers["x-amz-function-error"] = "Unhandled"
            return json.dumps(
                {
                    "errorMessage": str(error),
                    "errorType": type(error).__name__,
                    "stackTrace": traceback.format_tb(error.__traceback__),
                }
            ).encode()
        return json.dumps(result).encode()

    LambdaSimpleBackend.invoke = invoke_in_process
    StepFunctionResponse.start_sync_execution = _start_sync_execution
    _back_up_transaction_items()
    _serialize_dynamodb_writes()
    _enforce_post_policies()
    StringMatches._compare = staticmethod(_string_matches)
    _honour_client_tokens()


DYNAMODB_WRITES = ("put_item", "update_item", "delete_item", "transact_write_items")
_dynamodb_write_lock = threading.RLock()  # reentrant: a transaction calls the single-item writes


def _serialize_dynamodb_writes() -> None:
    for name in DYNAMODB_WRITES:
        original = getattr(DynamoDBBackend, name)
        if getattr(original, "serialized", False):
            continue

        @functools.wraps(original)
        def serialized(self: Any, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            with _dynamodb_write_lock:
                return _original(self, *args, **kwargs)

        serialized.serialized = True  # type: ignore[attr-defined]
        setattr(DynamoDBBackend, name, serialized)


_in_transaction = threading.local()


class _TableCopyInTransaction:
    """moto's `copy` module as `moto.dynamodb.models` sees it: a table "copied" by a transaction is the
    table itself (its named items are backed up instead), every other copy is a real one."""

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)

    @staticmethod
    def deepcopy(value: Any, memo: Any = None) -> Any:
        if getattr(_in_transaction, "active", False) and isinstance(value, Table):
            return value
        return copy.deepcopy(value, memo)


def _item_key(table: Table, key: dict[str, Any]) -> tuple[DynamoType, DynamoType | None]:
    range_value = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
    return DynamoType(key[table.hash_key_attr]), range_value


def _restore_item(table: Table, hash_value: DynamoType, range_value: DynamoType | None, item: Any) -> None:
    if range_value is None:
        if item is None:
            table.items.pop(hash_value, None)
        else:
            table.items[hash_value] = item
    elif item is None:
        table.items.get(hash_value, {}).pop(range_value, None)
    else:
        table.items[hash_value][range_value] = item


def _back_up_transaction_items() -> None:
    original = DynamoDBBackend.transact_write_items
    if getattr(original, "backs_up_items", False):
        return
    moto_dynamodb_models.copy = _TableCopyInTransaction()  # type: ignore[attr-defined, assignment]

    @functools.wraps(original)
    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        backups = []
        for entry in transact_items:
            operation = next(iter(entry.values()))
            table = self.tables.get(operation.get("TableName"))
            key = operation.get("Key") or operation.get("Item")
            if (
                table is None
                or not key
                or any(name and name not in key for name in (table.hash_key_attr, table.range_key_attr))
            ):
                continue  # moto refuses it before writing anything
            hash_value, range_value = _item_key(table, key)
            current = table.get_item(hash_value, range_value)
            backups.append((table, hash_value, range_value, copy.deepcopy(current)))
        _in_transaction.active = True
        try:
            original(self, transact_items)
        except Exception:
            for table, hash_value, range_value, item in reversed(backups):
                _restore_item(table, hash_value, range_value, item)
            raise
        finally:
            _in_transaction.active = False

    transact_write_items.backs_up_items = True  # type: ignore[attr-defined]
    DynamoDBBackend.transact_write_items = transact_write_items


MOTO_DEFAULT_CLIENT_TOKEN = "ABCDE"  # what moto records when a request carries no token
_client_token_lock = threading.Lock()


def _honour_client_tokens() -> None:
    original = InstanceBackend.run_instances
    if getattr(original, "honours_client_tokens", False):
        return

    @functools.wraps(original)
    def run_instances(
        self: Any, image_id: str, count: int, user_data: Any, security_group_names: Any, **kwargs: Any
    ) -> Any:
        token = kwargs.get("client_token")
        if token and token != MOTO_DEFAULT_CLIENT_TOKEN:
            with _client_token_lock:  # one launch per token, also across the server's request threads
                for reservation in self.reservations.values():
                    if any(instance.client_token == token for instance in reservation.instances):
                        # EC2 ignores a different zone; another instance type is a mismatch.
                        if kwargs.get("instance_type") not in (None, reservation.instances[0].instance_type):
                            raise EC2ClientError(
                                "IdempotentParameterMismatch", f"client token {token} was used for a different request"
                            )
                        return reservation
                return original(self, image_id, count, user_data, security_group_names, **kwargs)
        return original(self, image_id, count, user_data, security_group_names, **kwargs)

    run_instances.honours_client_tokens = True  # type: ignore[attr-defined]
    InstanceBackend.run_instances = run_instances


def _s3_error(status: int, code: str, message: str) -> tuple[int, dict[str, str], str]:
    body = f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code><Message>{message}</Message></Error>'
    return status, {"Content-Type": "application/xml"}, body


def _post_policy_refusal(form: dict[str, str], bucket_name: str, size: int) -> tuple[int, dict[str, str], str] | None:
    policy = json.loads(base64.b64decode(form["policy"]))
    if datetime.fromisoformat(policy["expiration"].replace("Z", "+00:00")) < datetime.now(UTC):
        return _s3_error(403, "AccessDenied", "Invalid according to Policy: Policy expired.")
    fields = {name.lower(): value for name, value in {**form, "bucket": bucket_name}.items()}
    for condition in policy.get("conditions", []):
        if isinstance(condition, dict):
            checks = [("eq", f"${name}", value) for name, value in condition.items()]
        elif condition[0] == "content-length-range":
            if size < int(condition[1]):
                return _s3_error(400, "EntityTooSmall", "Your proposed upload is smaller than the minimum allowed size")
            if size > int(condition[2]):
                return _s3_error(400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size")
            continue
        else:
            checks = [tuple(condition)]
        for operator, name, value in checks:
            actual = fields.get(name.lstrip("$").lower(), "")
            if not (actual == value if operator == "eq" else actual.startswith(value)):
                return _s3_error(
                    403, "AccessDenied", f"Invalid according to Policy: Policy Condition failed: {condition}"
                )
    return None


def _checksum_refusal(form: dict[str, str], body: bytes) -> tuple[int, dict[str, str], str] | None:
    declared = next((value for name, value in form.items() if name.lower() == "x-amz-checksum-sha256"), None)
    if declared is not None and declared != base64.b64encode(hashlib.sha256(body).digest()).decode():
        return _s3_error(400, "BadDigest", "The SHA256 you specified did not match the calculated checksum.")
    return None


def _enforce_post_policies() -> None:
    original = S3Response._bucket_response_post
    if getattr(original, "enforces_policy", False):
        return

    @functools.wraps(original)
    def post(self: S3Response, request: Any, bucket_name: str) -> Any:
        form = {name: values[0] for name, values in self.querystring.items()}
        if "policy" in form and "key" in form:
            body = self.raw_body if isinstance(self.raw_body, bytes) else str(self.raw_body or "").encode()
            refusal = _post_policy_refusal(form, bucket_name, len(body)) or _checksum_refusal(form, body)
            if refusal is not None:
                return refusal
        answer = original(self, request, bucket_name)
        if "tagging" in form and "key" in form and int(answer[0]) < 300:  # moto drops the POST's `tagging` field
            tags = xmltodict.parse(form["tagging"], force_list={"Tag": True})["Tagging"]["TagSet"]["Tag"]
            self.backend.put_object_tagging(
                self.backend.get_object(bucket_name, form["key"]), {tag["Key"]: tag["Value"] or "" for tag in tags}
            )
        return answer

    post.enforces_policy = True  # type: ignore[attr-defined]
    S3Response._bucket_response_post = post


def _string_matches(variable: Any, pattern: Any) -> bool:
    if not isinstance(variable, str) or not isinstance(pattern, str):
        return False
    expression, position = [], 0
    while position < len(pattern):
        character = pattern[position]
        if character == "\\" and position + 1 < len(pattern):
            expression.append(re.escape(pattern[position + 1]))
            position += 2
            continue
        expression.append(".*" if character == "*" else re.escape(character))
        position += 1
    return re.fullmatch("".join(expression), variable, flags=re.DOTALL) is not None


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
        status, error, cause = (
            str(getattr(execution.status, "value", execution.status)),
            execution.error,
            execution.cause,
        )
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
