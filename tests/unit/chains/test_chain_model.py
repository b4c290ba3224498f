"""The chain model, the safe template renderer and the ASL compiler, without AWS."""

from __future__ import annotations

import pytest

from aiplane.chains.compiler import CHAIN_END, NO_BRANCH, STEP_LIMIT, compile_chain
from aiplane.chains.model import max_steps, parse_chain, parse_duration_s
from aiplane.chains.templates import render
from aiplane.errors import ValidationError


@pytest.mark.parametrize("text, seconds", [("10s", 10), ("2m", 120), ("1h", 3600), ("1m30s", 90), ("250ms", 0.25)])
def test_go_durations(text, seconds):
    assert parse_duration_s(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "10", "s", "10 s", "1d", "-1s", "10s5"])
def test_bad_durations(text):
    with pytest.raises(ValueError):
        parse_duration_s(text)


def test_templates_look_values_up_and_never_execute():
    variables = {"input": "hi", "task": {"status": "ok", "items": [1, 2]}, "flag": True}
    assert (
        render("{{.input}} / {{ .task.status }} / {{.task.items.1}} / {{.flag}} / {{.missing}}", variables)
        == "hi / ok / 2 / true / "
    )
    assert (
        render("{{.input.__class__}} {{__import__('os')}} {{ .input | printf }}", variables)
        == " {{__import__('os')}} {{ .input | printf }}"
    )


def test_every_field_round_trips():
    raw = {
        "id": "c",
        "description": "d",
        "debug": True,
        "token_limit": 100,
        "tasks": [
            {
                "id": "t",
                "description": "x",
                "handler": "model_execution",
                "system_instruction": "s",
                "valid_conditions": {"a": True},
                "execute_config": {
                    "model": "m",
                    "models": ["n"],
                    "provider": "p",
                    "providers": ["q"],
                    "temperature": 0.2,
                    "hooks": ["echo"],
                    "hide_tools": ["x"],
                    "pass_clients_tools": True,
                },
                "hook": {"name": "echo", "tool_name": "echo", "args": {"k": "v"}},
                "print": "{{.t}}",
                "prompt_template": "p",
                "output_template": "o",
                "input_var": "input",
                "compose": {"with_var": "input", "strategy": "override"},
                "transition": {"on_failure": "t", "branches": [{"operator": "equals", "when": "x", "goto": "end"}]},
                "timeout": "10s",
                "retry_on_failure": 2,
            }
        ],
    }
    chain = parse_chain(raw)
    dumped = chain.model_dump(mode="json", exclude_none=True)
    assert dumped["tasks"][0] == raw["tasks"][0] and dumped["token_limit"] == 100
    assert max_steps(chain) == 10


def test_a_non_object_chain_is_rejected():
    with pytest.raises(ValidationError) as caught:
        parse_chain({"tasks": "nope"})
    assert caught.value.param == "tasks"


def test_compiled_states():
    chain = parse_chain(
        {
            "id": "c",
            "tasks": [
                {
                    "id": "a",
                    "handler": "parse_number",
                    "timeout": "2m",
                    "retry_on_failure": 3,
                    "transition": {
                        "on_failure": "b",
                        "branches": [
                            {"operator": "in_range", "when": "1-5", "goto": "b"},
                            {"operator": ">", "when": "5", "goto": "end"},
                        ],
                    },
                },
                {"id": "b", "handler": "noop"},
            ],
        }
    )
    asl = compile_chain(chain, "fn")
    task, route = asl["States"]["Task:a"], asl["States"]["Route:a"]
    assert asl["StartAt"] == "Task:a" and task["Next"] == "Route:a"
    assert task["Parameters"]["FunctionName"] == "fn" and task["TimeoutSeconds"] == 121
    assert task["Retry"][0]["MaxAttempts"] == 3 and task["Catch"][0]["Next"] == "Task:b"
    assert route["Choices"][0] == {"Variable": "$.halt", "IsString": True, "Next": STEP_LIMIT}
    assert route["Choices"][1]["Next"] == "Task:b" and route["Choices"][2]["Next"] == CHAIN_END
    assert route["Default"] == NO_BRANCH
    assert asl["States"]["Route:b"]["Default"] == CHAIN_END and "Retry" not in asl["States"]["Task:b"]
