"""POST /tasks: a chain per handler, branches with every operator, retry, timeout, on_failure,
the step bound and validation — all compiled to ASL and run on moto's interpreter."""

from __future__ import annotations

import pytest

from tests.integration.chains.stand_ins import StandInServer


def end(goto="end"):
    return {"branches": [{"operator": "default", "goto": goto}]}


def run(runtime, tasks, input_value="hello", input_type="string", **chain):
    return runtime.post(
        "/tasks", json={"input": input_value, "inputType": input_type, "chain": {"id": "t", "tasks": tasks, **chain}}
    )


HANDLER_CASES = [
    ("raw_string", "  Paris  ", {}, "Paris", "string", "Paris"),
    ("condition_key", "yes", {"valid_conditions": {"yes": True, "no": False}}, True, "bool", "true"),
    ("parse_number", "about 42 apples", {}, 42, "int", "42"),
    ("parse_score", "0.756", {}, 0.756, "float", "0.76"),
    ("parse_range", "3", {}, "3-3", "string", "3-3"),
    (
        "parse_key_value",
        "name=Ada; age:36, admin=true",
        {},
        {"name": "Ada", "age": 36, "admin": True},
        "json",
        "parsed",
    ),
]


@pytest.mark.parametrize("handler, reply, extra, output, output_type, transition", HANDLER_CASES)
def test_llm_handlers(runtime, llm, handler, reply, extra, output, output_type, transition):
    llm.reply = lambda text, body: reply
    response = run(
        runtime, [{"id": "only", "handler": handler, "prompt_template": "Q: {{.input}}", **extra, "transition": end()}]
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["output"], body["outputType"]) == (output, output_type)
    assert body["state"][0]["transition"] == transition
    assert set(body["state"][0]) == {
        "taskID",
        "taskHandler",
        "inputType",
        "outputType",
        "transition",
        "duration",
        "error",
        "inputVar",
    }


def test_parse_transition_noop_embedding_and_debug_capture(runtime, llm):
    tasks = [
        {
            "id": "route",
            "handler": "parse_transition",
            "transition": {
                "branches": [
                    {"operator": "equals", "when": "embed", "goto": "vec"},
                    {"operator": "default", "goto": "end"},
                ]
            },
        },
        {"id": "vec", "handler": "embedding", "input_var": "input", "transition": end("same")},
        {"id": "same", "handler": "noop", "input_var": "route", "transition": end()},
    ]
    body = run(runtime, tasks, "/embed this text", debug=True).json()
    assert body["output"] == "/embed this text" and body["outputType"] == "string"
    assert [(u["taskID"], u["transition"]) for u in body["state"]] == [
        ("route", "embed"),
        ("vec", "ok"),
        ("same", "noop"),
    ]
    assert body["state"][1]["outputType"] == "vector" and body["state"][1]["inputVar"] == "input"
    assert body["state"][0]["input"] == "/embed this text" and "output" in body["state"][1]


@pytest.mark.parametrize(
    "operator, when, reply, expected",
    [
        ("equals", "blue", "blue", "hit"),
        ("contains", "lu", "blue", "hit"),
        ("starts_with", "bl", "blue", "hit"),
        ("ends_with", "ue", "blue", "hit"),
        ("ends_with", "x*", "box*", "hit"),
        ("ends_with", "x*", "boxes", "miss"),
        ("contains", "?", "why?", "hit"),
        ("contains", "?", "no", "miss"),
        ("gt", "10", "11", "hit"),
        (">", "10", "9", "miss"),
        ("lt", "10", "9", "hit"),
        ("<", "10", "10", "miss"),
        ("in_range", "5-7", "7", "hit"),
        ("in_range", "5-7", "8", "miss"),
    ],
)
def test_branch_operators(runtime, llm, operator, when, reply, expected):
    llm.reply = lambda text, body: reply
    tasks = [
        {
            "id": "ask",
            "handler": "raw_string",
            "transition": {
                "branches": [
                    {"operator": operator, "when": when, "goto": "hit"},
                    {"operator": "default", "goto": "miss"},
                ]
            },
        },
        {"id": "hit", "handler": "noop", "transition": end()},
        {"id": "miss", "handler": "noop", "transition": end()},
    ]
    body = run(runtime, tasks).json()
    assert body["state"][-1]["taskID"] == expected


def test_no_matching_branch_is_an_error(runtime, llm):
    llm.reply = lambda text, body: "green"
    tasks = [
        {
            "id": "ask",
            "handler": "raw_string",
            "transition": {"branches": [{"operator": "equals", "when": "blue", "goto": "end"}]},
        }
    ]
    response = run(runtime, tasks)
    assert response.status_code == 400 and response.json()["error"]["code"] == "chain_failed"


def test_retry_then_success_records_one_unit_per_attempt(runtime, llm):
    llm.failures_left = 1
    body = run(runtime, [{"id": "ask", "handler": "raw_string", "retry_on_failure": 1, "transition": end()}]).json()
    assert body["output"] == "echo: hello"
    assert [bool(unit["error"]) for unit in body["state"]] == [True, False]


def test_failure_without_on_failure_fails_the_chain(runtime, llm):
    llm.failures_left = 5
    response = run(runtime, [{"id": "ask", "handler": "raw_string", "transition": end()}])
    assert response.status_code == 502
    assert response.json()["error"]["type"] == "server_error"


def test_on_failure_jumps_and_raise_error_carries_the_input(runtime, llm):
    tasks = [
        {"id": "boom", "handler": "raise_error", "transition": {"on_failure": "recover", "branches": []}},
        {"id": "recover", "handler": "noop", "transition": end()},
    ]
    body = run(runtime, tasks, "bad things").json()
    assert body["state"][0]["error"] == {"error": "bad things"}
    assert [unit["taskID"] for unit in body["state"]] == ["boom", "recover"] and body["output"] == "bad things"


def test_timeout_ends_a_slow_attempt(runtime, llm):
    llm.reply = lambda text, body: ("sleep", 3, "late")
    tasks = [
        {
            "id": "slow",
            "handler": "raw_string",
            "timeout": "1s",
            "transition": {"on_failure": "fallback", "branches": []},
        },
        {"id": "fallback", "handler": "noop", "transition": end()},
    ]
    body = run(runtime, tasks).json()
    assert [unit["taskID"] for unit in body["state"]] == ["slow", "fallback"]
    assert "timeout" in body["state"][0]["error"]["error"]


def test_looping_gotos_stop_at_the_step_bound(runtime, llm):
    tasks = [
        {"id": "a", "handler": "noop", "transition": end("b")},
        {"id": "b", "handler": "noop", "transition": end("a")},
    ]
    response = run(runtime, tasks)
    assert response.status_code == 400 and "took more steps" in response.json()["error"]["message"]


def test_token_limit_is_enforced(runtime, llm):
    tasks = [{"id": "chat", "handler": "model_execution", "transition": end()}]
    response = run(
        runtime, tasks, {"messages": [{"role": "user", "content": "x" * 400}]}, "chat_history", token_limit=10
    )
    assert response.status_code == 400 and "token_limit" in response.json()["error"]["message"]


def test_model_execution_tool_calls_and_conversion(runtime, llm):
    def reply(text, body):
        if body["messages"][-1]["role"] == "tool":
            return "the echo said " + body["messages"][-1]["content"]
        assert body["tools"][0]["function"]["name"] == "echo"
        return {
            "content": None,
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "echo", "arguments": '{"message": "ping"}'}}
            ],
        }

    llm.reply = reply
    config = {"model": "stand-in", "hooks": ["echo"]}
    tasks = [
        {
            "id": "chat",
            "handler": "model_execution",
            "system_instruction": "be brief",
            "execute_config": config,
            "transition": {
                "branches": [
                    {"operator": "equals", "when": "tool-call", "goto": "tools"},
                    {"operator": "default", "goto": "reply"},
                ]
            },
        },
        {"id": "tools", "handler": "execute_tool_calls", "execute_config": config, "transition": end("chat")},
        {"id": "reply", "handler": "convert_to_openai_chat_response", "transition": end()},
    ]
    body = run(runtime, tasks, {"messages": [{"role": "user", "content": "hi"}]}, "chat_history").json()
    assert [(u["taskID"], u["transition"]) for u in body["state"]] == [
        ("chat", "tool-call"),
        ("tools", "tools_executed"),
        ("chat", "executed"),
        ("reply", "converted"),
    ]
    assert body["outputType"] == "openai_chat_response"
    assert body["output"]["choices"][0]["message"]["content"] == 'the echo said {"message": "ping"}'
    system_messages = [m for m in llm.requests[-1][2]["messages"] if m["role"] == "system"]
    assert system_messages == [{"role": "system", "content": "be brief"}]


def test_hook_task_with_output_template_and_webhook(runtime, llm):
    received = StandInServer(lambda method, path, body: (200, {"status": "accepted", "got": body}))
    try:
        tasks = [
            {
                "id": "notify",
                "handler": "hook",
                "hook": {"name": "webhook", "args": {"url": received.url, "payload": {"text": "{{.input}}"}}},
                "output_template": "status {{.status}}: {{.body.status}}",
                "transition": end(),
            }
        ]
        body = run(runtime, tasks, "hi there").json()
        assert body["output"] == "status 200: accepted"
        assert received.requests[0][2] == {"text": "hi there"}
    finally:
        received.stop()


@pytest.mark.parametrize(
    "tasks, param",
    [
        ([{"id": "a", "handler": "nope"}], "tasks[0].handler"),
        (
            [{"id": "a", "handler": "noop", "transition": {"branches": [{"goto": "ghost"}]}}],
            "tasks[0].transition.branches[0].goto",
        ),
        ([{"id": "a", "handler": "noop", "transition": {"on_failure": "ghost"}}], "tasks[0].transition.on_failure"),
        ([{"id": "a", "handler": "noop"}, {"id": "a", "handler": "noop"}], "tasks[1].id"),
        ([{"id": "end", "handler": "noop"}], "tasks[0].id"),
        ([{"id": "a", "handler": "noop", "timeout": "soon"}], "tasks[0].timeout"),
        ([{"id": "a", "handler": "condition_key"}], "tasks[0].valid_conditions"),
        (
            [{"id": "a", "handler": "noop", "transition": {"branches": [{"operator": "in_range", "when": "x"}]}}],
            "tasks[0].transition.branches[0].when",
        ),
    ],
)
def test_invalid_chains_are_rejected_naming_the_field(runtime, tasks, param):
    response = run(runtime, tasks)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param


def test_compose_appends_to_a_chat_history_and_sets_the_composed_variable(runtime, llm):
    llm.reply = lambda text, body: "follow-up question"
    history = {"messages": [{"role": "user", "content": "first"}]}
    tasks = [
        {
            "id": "ask",
            "handler": "raw_string",
            "prompt_template": "continue",
            "compose": {"with_var": "input", "strategy": "append_string_to_chat_history"},
            "transition": end("show"),
        },
        {"id": "show", "handler": "noop", "input_var": "ask_composed", "transition": end()},
    ]
    body = run(runtime, tasks, history, "chat_history").json()
    assert body["outputType"] == "chat_history"
    assert body["output"]["messages"] == [
        {"role": "user", "content": "first"},
        {"role": "user", "content": "follow-up question"},
    ]
    assert body["state"][1]["inputVar"] == "ask_composed"


def test_a_timeout_without_on_failure_is_a_504(runtime, llm):
    llm.reply = lambda text, body: ("sleep", 2, "late")
    response = run(runtime, [{"id": "slow", "handler": "raw_string", "timeout": "500ms", "transition": end()}])
    assert response.status_code == 504 and response.json()["error"]["code"] == "backend_timeout"


def test_unknown_input_type_and_missing_chain_are_400(runtime):
    assert (
        runtime.post(
            "/tasks", json={"input": "x", "inputType": "weird", "chain": {"tasks": [{"id": "a", "handler": "noop"}]}}
        ).json()["error"]["param"]
        == "inputType"
    )
    assert runtime.post("/tasks", json={"input": "x"}).status_code == 400
