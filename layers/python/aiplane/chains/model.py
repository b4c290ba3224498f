"""The task-chain definition (snake_case keys, as the contract writes them) and its validation.

Validation runs before anything is stored or compiled, and every error names the offending field
(`tasks[2].transition.on_failure`), so a bad chain is a 400 in the envelope, never a failed run.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from aiplane import outbound_policy
from aiplane.errors import ValidationError

END = "end"  # `goto: "end"` (or an empty goto) ends the chain

HANDLERS = (
    "raw_string",
    "condition_key",
    "parse_number",
    "parse_score",
    "parse_range",
    "parse_transition",
    "parse_key_value",
    "embedding",
    "raise_error",
    "model_execution",
    "execute_tool_calls",
    "convert_to_openai_chat_response",
    "hook",
    "noop",
)
OPERATORS = ("equals", "contains", "starts_with", "ends_with", "gt", ">", "lt", "<", "in_range", "default")
NUMERIC_OPERATORS = ("gt", ">", "lt", "<")
DATA_TYPES = (
    "any",
    "string",
    "bool",
    "int",
    "float",
    "vector",
    "search_results",
    "json",
    "chat_history",
    "openai_chat",
    "openai_chat_response",
    "nil",
)
COMPOSE_STRATEGIES = ("override", "merge_chat_histories", "append_string_to_chat_history")

MAX_TASKS = 100
# A run may take at most this many steps (attempts included), so gotos that loop cannot run forever.
MAX_STEPS_PER_TASK = 10
MAX_STEPS = 500

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_DURATION_UNIT_S = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_RANGE = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*-\s*(-?\d+(?:\.\d+)?)\s*$")


class _Lenient(BaseModel):
    # Unknown keys are kept (and echoed back), like the original's JSON decoding.
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class TransitionBranch(_Lenient):
    operator: str | None = None
    when: str = ""
    goto: str = ""


class TaskTransition(_Lenient):
    on_failure: str = ""
    branches: list[TransitionBranch] = Field(default_factory=list)


class LLMExecutionConfig(_Lenient):
    model: str = ""
    models: list[str] = Field(default_factory=list)
    provider: str = ""
    providers: list[str] = Field(default_factory=list)
    temperature: float | None = None
    hooks: list[str] = Field(default_factory=list)
    hide_tools: list[str] = Field(default_factory=list)
    pass_clients_tools: bool = False


class HookCall(_Lenient):
    name: str = ""
    tool_name: str = ""
    args: dict[str, Any] = Field(default_factory=dict)


class ComposeTask(_Lenient):
    with_var: str = ""
    strategy: str = ""


class TaskDefinition(_Lenient):
    id: str = ""
    description: str = ""
    handler: str = ""
    system_instruction: str = ""
    valid_conditions: dict[str, bool] | None = None
    execute_config: LLMExecutionConfig | None = None
    hook: HookCall | None = None
    print: str = ""
    prompt_template: str = ""
    output_template: str = ""
    input_var: str = ""
    compose: ComposeTask | None = None
    transition: TaskTransition = Field(default_factory=TaskTransition)
    timeout: str = ""
    retry_on_failure: int = 0


class ChainDefinition(_Lenient):
    id: str = ""
    description: str = ""
    debug: bool = False
    token_limit: int = 0
    tasks: list[TaskDefinition] = Field(default_factory=list)


def parse_duration_s(value: str) -> float:
    """A Go duration ("10s", "1m30s", "250ms") in seconds; ValueError when it is not one."""
    text = value.strip()
    position, total = 0, 0.0
    for match in _DURATION_PART.finditer(text):
        if match.start() != position:
            raise ValueError(value)
        total += float(match.group(1)) * _DURATION_UNIT_S[match.group(2)]
        position = match.end()
    if not text or position != len(text):
        raise ValueError(value)
    return total


def parse_range(value: str) -> tuple[float, float]:
    """`in_range`'s "min-max" (inclusive); ValueError when it is not one."""
    match = _RANGE.match(value)
    if not match:
        raise ValueError(value)
    low, high = float(match.group(1)), float(match.group(2))
    if low > high:
        raise ValueError(value)
    return low, high


def max_steps(chain: ChainDefinition) -> int:
    return min(MAX_STEPS, MAX_STEPS_PER_TASK * max(1, len(chain.tasks)))


def parse_chain(raw: Any, *, param: str = "chain") -> ChainDefinition:
    """Parse and validate a chain given as JSON; every error is a ValidationError naming its field."""
    if not isinstance(raw, dict):
        raise ValidationError("a chain definition must be a JSON object", param=param)
    try:
        chain = ChainDefinition.model_validate(raw)
    except Exception as error:  # pydantic's error names the location; keep the first one
        errors: list[dict[str, Any]] = getattr(error, "errors", list)()
        location = ".".join(str(part) for part in errors[0]["loc"]) if errors else param
        message = errors[0]["msg"] if errors else str(error)
        raise ValidationError(f"{location}: {message}", param=location) from None
    validate_chain(chain)
    return chain


def validate_chain(chain: ChainDefinition) -> None:
    if not chain.tasks:
        raise ValidationError("a chain needs at least one task", param="tasks")
    if len(chain.tasks) > MAX_TASKS:
        raise ValidationError(f"a chain may have at most {MAX_TASKS} tasks", param="tasks")
    if chain.token_limit < 0:
        raise ValidationError("token_limit must not be negative", param="token_limit")
    ids: set[str] = set()
    for index, task in enumerate(chain.tasks):
        where = f"tasks[{index}]"
        if not task.id:
            raise ValidationError("every task needs an id", param=f"{where}.id")
        if task.id == END:
            raise ValidationError(f'a task may not be called "{END}"', param=f"{where}.id")
        if task.id in ids:
            raise ValidationError(f"duplicate task id {task.id!r}", param=f"{where}.id")
        ids.add(task.id)
    for index, task in enumerate(chain.tasks):
        _validate_task(task, f"tasks[{index}]", ids)


def _validate_task(task: TaskDefinition, where: str, ids: set[str]) -> None:
    if task.handler not in HANDLERS:
        raise ValidationError(
            f"unknown handler {task.handler!r}; one of {', '.join(HANDLERS)}", param=f"{where}.handler"
        )
    if task.handler == "condition_key" and not task.valid_conditions:
        raise ValidationError("a condition_key task needs valid_conditions", param=f"{where}.valid_conditions")
    if task.handler == "hook" and not (task.hook and task.hook.name):
        raise ValidationError("a hook task needs hook.name", param=f"{where}.hook.name")
    webhook_url = task.hook.args.get("url") if task.hook and task.hook.name == "webhook" else None
    if isinstance(webhook_url, str) and "{{" not in webhook_url:  # a templated URL is checked when it is called
        outbound_policy.check_url(webhook_url, outbound_policy.HOOKS, param=f"{where}.hook.args.url")
    if task.timeout:
        try:
            seconds = parse_duration_s(task.timeout)
        except ValueError:
            raise ValidationError(
                f"timeout {task.timeout!r} is not a duration like 10s or 2m", param=f"{where}.timeout"
            ) from None
        if seconds <= 0:
            raise ValidationError("timeout must be positive", param=f"{where}.timeout")
    if task.retry_on_failure < 0 or task.retry_on_failure > 10:
        raise ValidationError("retry_on_failure must be between 0 and 10", param=f"{where}.retry_on_failure")
    if task.compose and task.compose.strategy and task.compose.strategy not in COMPOSE_STRATEGIES:
        raise ValidationError(f"unknown compose strategy {task.compose.strategy!r}", param=f"{where}.compose.strategy")
    on_failure = task.transition.on_failure
    if on_failure and on_failure not in ids:
        raise ValidationError(
            f"on_failure names an unknown task {on_failure!r}", param=f"{where}.transition.on_failure"
        )
    defaults = 0
    for number, branch in enumerate(task.transition.branches):
        at = f"{where}.transition.branches[{number}]"
        operator = branch.operator or "equals"
        if operator not in OPERATORS:
            raise ValidationError(
                f"unknown operator {operator!r}; one of {', '.join(OPERATORS)}", param=f"{at}.operator"
            )
        if branch.goto and branch.goto != END and branch.goto not in ids:
            raise ValidationError(f"goto names an unknown task {branch.goto!r}", param=f"{at}.goto")
        if operator == "default":
            defaults += 1
        elif operator in NUMERIC_OPERATORS:
            try:
                float(branch.when)
            except ValueError:
                raise ValidationError(f"operator {operator} needs a number in when", param=f"{at}.when") from None
        elif operator == "in_range":
            try:
                parse_range(branch.when)
            except ValueError:
                raise ValidationError('in_range needs when = "min-max"', param=f"{at}.when") from None
    if defaults > 1:
        raise ValidationError("at most one default branch", param=f"{where}.transition.branches")


def dump_chain(chain: ChainDefinition) -> dict[str, Any]:
    return chain.model_dump(mode="json", exclude_none=True)
