"""Compile a chain to Amazon States Language.

- one Task state per chain task, invoking the chain-step Lambda with the task and the state;
- after each task a Choice state: a halted run (step limit) fails, then the task's branches in
  order (`equals` → StringEquals, `contains`/`starts_with`/`ends_with` → StringMatches, `gt`/`lt`
  and `in_range` → numeric comparisons on the transition's number), `default` → Default;
- `retry_on_failure` → Retry, `timeout` → TimeoutSeconds, `on_failure` → Catch.
The chain's variables travel in the execution state (see `engine`).

Streaming (`stream_steps`): a run in stream mode stops before a final model step (`$.handoff`
names it, and its Route state ends the run); the API function runs that step itself, streaming its
tokens, then starts the machine again at the step's Route state (`$.resume_at`, read by `Start`).
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

from aiplane.chains.model import END, ChainDefinition, TaskDefinition, max_steps, parse_duration_s, parse_range

LAMBDA_INVOKE = "arn:aws:states:::lambda:invoke"
CHAIN_END = "ChainEnd"
START = "Start"
STEP_LIMIT = "StepLimitExceeded"
NO_BRANCH = "NoBranchMatched"
# The step enforces the timeout itself and records the timed-out attempt; the state's own
# TimeoutSeconds is the backstop, one second later.
TIMEOUT_GRACE_S = 1
DEFAULT_TIMEOUT_S = 250  # an attempt without a timeout still ends inside Express's five minutes


def task_state_name(task_id: str) -> str:
    return f"Task:{task_id}"[:80]


def route_state_name(task_id: str) -> str:
    return f"Route:{task_id}"[:80]


def chain_settings(chain: ChainDefinition) -> dict[str, Any]:
    settings = {"id": chain.id, "debug": chain.debug, "token_limit": chain.token_limit, "max_steps": max_steps(chain)}
    if steps := stream_steps(chain):
        settings["stream_steps"] = steps
    return settings


# Handlers that hand the answer on unchanged in content (so a streamed answer before them stays the
# answer), with the transition each reports; and the transition of a model's plain reply.
_PASS_THROUGH = {"noop": "noop", "convert_to_openai_chat_response": "converted"}
_PLAIN_REPLY = "executed"


def _exit(task: TaskDefinition, transition: str) -> str | None:
    """Where the task goes for a non-numeric transition value, as its Route state decides
    (None: nowhere, the run fails on no branch)."""
    default: str | None = END if not task.transition.branches else None
    for branch in task.transition.branches:
        operator = branch.operator or "equals"
        if operator == "default":
            default = branch.goto or END
        elif (
            (operator == "equals" and transition == branch.when)
            or (operator == "contains" and branch.when in transition)
            or (operator == "starts_with" and transition.startswith(branch.when))
            or (operator == "ends_with" and transition.endswith(branch.when))
        ):
            return branch.goto or END
    return default


def stream_steps(chain: ChainDefinition) -> list[str]:
    """The final model steps, whose tokens a streamed run sends as they arrive: `model_execution`
    tasks without retry, on_failure or compose, whose plain reply ("executed") ends the chain,
    directly or through tasks that leave the answer as it is (noop, convert_to_openai_chat_response)."""
    tasks = {task.id: task for task in chain.tasks}

    def ends_unchanged(goto: str | None, seen: frozenset[str]) -> bool:
        if goto == END:
            return True
        task = tasks.get(goto or "")
        if (
            task is None
            or task.id in seen
            or task.handler not in _PASS_THROUGH
            or task.input_var
            or task.compose
            or task.transition.on_failure
        ):
            return False
        return ends_unchanged(_exit(task, _PASS_THROUGH[task.handler]), seen | {task.id})

    return [
        task.id
        for task in chain.tasks
        if task.handler == "model_execution"
        and not (task.retry_on_failure or task.transition.on_failure or task.compose)
        and ends_unchanged(_exit(task, _PLAIN_REPLY), frozenset())
    ]


def _escape_pattern(text: str) -> str:
    return text.replace("\\", "\\\\").replace("*", "\\*")


def _target(goto: str) -> str:
    return CHAIN_END if not goto or goto == END else task_state_name(goto)


def _rule(operator: str, when: str, goto: str) -> dict[str, Any]:
    text, number = "$.transition", "$.transition_number"
    if operator == "equals":
        rule: dict[str, Any] = {"Variable": text, "StringEquals": when}
    elif operator == "contains":
        rule = {"Variable": text, "StringMatches": f"*{_escape_pattern(when)}*"}
    elif operator == "starts_with":
        rule = {"Variable": text, "StringMatches": f"{_escape_pattern(when)}*"}
    elif operator == "ends_with":
        rule = {"Variable": text, "StringMatches": f"*{_escape_pattern(when)}"}
    elif operator in ("gt", ">", "lt", "<"):
        comparison = "NumericGreaterThan" if operator in ("gt", ">") else "NumericLessThan"
        rule = {"And": [{"Variable": number, "IsNumeric": True}, {"Variable": number, comparison: float(when)}]}
    else:  # in_range, inclusive
        low, high = parse_range(when)
        rule = {
            "And": [
                {"Variable": number, "IsNumeric": True},
                {"Variable": number, "NumericGreaterThanEquals": low},
                {"Variable": number, "NumericLessThanEquals": high},
            ]
        }
    return {**rule, "Next": _target(goto)}


def _task_state(task: TaskDefinition, settings: str, function_name: str) -> dict[str, Any]:
    timeout_s = parse_duration_s(task.timeout) if task.timeout else DEFAULT_TIMEOUT_S
    state: dict[str, Any] = {
        "Type": "Task",
        "Resource": LAMBDA_INVOKE,
        "Comment": f"{task.handler}: {task.description}"[:200],
        "Parameters": {
            "FunctionName": function_name,
            # JSON strings, so that no key of the definition is read as a path (`x.$`).
            "Payload": {
                "task": json.dumps(task.model_dump(mode="json", exclude_none=True)),
                "chain": settings,
                "state.$": "$",
            },
        },
        "OutputPath": "$.Payload",
        "TimeoutSeconds": math.ceil(timeout_s) + TIMEOUT_GRACE_S,
        "Next": route_state_name(task.id),
    }
    if task.retry_on_failure:
        state["Retry"] = [
            {
                "ErrorEquals": ["States.ALL"],
                "MaxAttempts": task.retry_on_failure,
                "IntervalSeconds": 1,
                "BackoffRate": 1.0,
            }
        ]
    if task.transition.on_failure:
        state["Catch"] = [
            {
                "ErrorEquals": ["States.ALL"],
                "ResultPath": "$.failure",
                "Next": task_state_name(task.transition.on_failure),
            }
        ]
    return state


def _route_state(task: TaskDefinition, streamed: bool) -> dict[str, Any]:
    choices: list[dict[str, Any]] = [{"Variable": "$.halt", "IsString": True, "Next": STEP_LIMIT}]
    if streamed:  # handed off to the API function, which streams the step
        choices.append({"Variable": "$.handoff", "IsString": True, "Next": CHAIN_END})
    default = CHAIN_END if not task.transition.branches else NO_BRANCH
    for branch in task.transition.branches:
        operator = branch.operator or "equals"
        if operator == "default":
            default = _target(branch.goto)
        else:
            choices.append(_rule(operator, branch.when, branch.goto))
    return {"Type": "Choice", "Choices": choices, "Default": default}


def compile_chain(chain: ChainDefinition, function_name: str) -> dict[str, Any]:
    """The ASL definition of a validated chain whose steps run in `function_name`."""
    settings = chain_settings(chain)
    streamed = settings.get("stream_steps") or []
    states: dict[str, Any] = {}
    first = task_state_name(chain.tasks[0].id)
    if streamed:
        states[START] = {
            "Type": "Choice",
            "Default": first,
            "Choices": [
                {
                    "Variable": "$.resume_at",
                    "StringEquals": route_state_name(task_id),
                    "Next": route_state_name(task_id),
                }
                for task_id in streamed
            ],
        }
    for task in chain.tasks:
        states[task_state_name(task.id)] = _task_state(task, json.dumps(settings), function_name)
        states[route_state_name(task.id)] = _route_state(task, task.id in streamed)
    states[CHAIN_END] = {"Type": "Succeed"}
    states[STEP_LIMIT] = {"Type": "Fail", "Error": STEP_LIMIT, "Cause": "the run took more steps than its chain allows"}
    states[NO_BRANCH] = {"Type": "Fail", "Error": NO_BRANCH, "Cause": "no transition branch matched the task's output"}
    return {
        "Comment": f"aiplane task chain {chain.id}"[:200],
        "StartAt": START if streamed else first,
        "States": states,
    }


def definition_digest(definition: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(definition, sort_keys=True).encode()).hexdigest()[:20]
