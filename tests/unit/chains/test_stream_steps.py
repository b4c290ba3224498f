"""Which steps a streamed run streams (`compiler.stream_steps`), and the states that hand them off."""

from __future__ import annotations

from aiplane.chains.compiler import CHAIN_END, START, compile_chain, route_state_name, stream_steps, task_state_name
from aiplane.chains.model import parse_chain


def default(goto="end"):
    return {"branches": [{"operator": "default", "goto": goto}]}


CHAT = {
    "id": "chat",
    "handler": "model_execution",
    "transition": {
        "branches": [
            {"operator": "equals", "when": "tool-call", "goto": "tools"},
            {"operator": "default", "goto": "end"},
        ]
    },
}
TOOLS = {"id": "tools", "handler": "execute_tool_calls", "transition": default("chat")}


def steps(*tasks):
    return stream_steps(parse_chain({"id": "c", "tasks": list(tasks)}))


def test_a_model_step_whose_plain_reply_ends_the_chain_streams():
    assert steps({"id": "m", "handler": "model_execution"}) == ["m"]
    assert steps(CHAT, TOOLS) == ["chat"]  # a tool call loops back through the tools; the plain reply ends it
    assert steps(
        {**CHAT, "transition": default("reply")},
        {"id": "reply", "handler": "convert_to_openai_chat_response", "transition": default("done")},
        {"id": "done", "handler": "noop"},
    ) == ["chat"]  # only pass-through steps after it


def test_a_model_step_followed_by_steps_that_change_the_answer_does_not_stream():
    rewrite = {"id": "rewrite", "handler": "raw_string", "prompt_template": "shorter: {{.input}}"}
    assert steps({**CHAT, "transition": default("rewrite")}, rewrite) == []  # the answer is the rewrite's
    assert (
        steps({**CHAT, "transition": default("other")}, {"id": "other", "handler": "noop", "input_var": "input"}) == []
    )
    assert (
        steps({**CHAT, "transition": {"branches": [{"operator": "equals", "when": "tool-call", "goto": "end"}]}}) == []
    )  # no branch


def test_retry_on_failure_and_compose_keep_a_step_in_the_state_machine():
    assert steps({**CHAT, "retry_on_failure": 2}, TOOLS) == []
    assert steps({**CHAT, "transition": {**CHAT["transition"], "on_failure": "tools"}}, TOOLS) == []
    assert steps({**CHAT, "compose": {"with_var": "input"}}, TOOLS) == []


def test_a_streamed_chain_starts_at_the_resume_point_and_hands_off_at_its_route():
    definition = compile_chain(parse_chain({"id": "c", "tasks": [CHAT, TOOLS]}), "step-fn")
    assert definition["StartAt"] == START
    start = definition["States"][START]
    assert start["Default"] == task_state_name("chat")
    assert start["Choices"] == [
        {"Variable": "$.resume_at", "StringEquals": route_state_name("chat"), "Next": route_state_name("chat")}
    ]
    assert {"Variable": "$.handoff", "IsString": True, "Next": CHAIN_END} in definition["States"][
        route_state_name("chat")
    ]["Choices"]
    assert (
        '"stream_steps": ["chat"]' in definition["States"][task_state_name("tools")]["Parameters"]["Payload"]["chain"]
    )
    plain = compile_chain(parse_chain({"id": "p", "tasks": [{"id": "a", "handler": "noop"}]}), "step-fn")
    assert plain["StartAt"] == task_state_name("a") and START not in plain["States"]


def test_a_streamed_reply_is_assembled_as_it_arrives():
    import json

    from aiplane.chains.llm_port import assembled

    def line(delta=None, **extra):
        choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": None}]
        return "data: " + json.dumps({"model": "served", "choices": choices, **extra})

    lines = [
        line({"role": "assistant", "content": ""}),
        line({"content": "Hel"}),
        line({"content": "lo"}),
        line(
            {
                "tool_calls": [
                    {"index": 0, "id": "call_1", "type": "function", "function": {"name": "f", "arguments": ""}}
                ]
            }
        ),
        line({"tool_calls": [{"index": 0, "function": {"arguments": '{"a": '}}]}),
        line({"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]}),
        line(usage={"prompt_tokens": 2, "completion_tokens": 3}),
        "",
        "data: [DONE]",
    ]
    stream = assembled(iter(lines), "asked")
    deltas = []
    while True:
        try:
            deltas.append(next(stream))
        except StopIteration as done:
            answer = done.value
            break
    assert [delta.get("content") for delta in deltas[:2]] == ["Hel", "lo"] and len(deltas) == 5
    assert answer == {
        "model": "served",
        "usage": {"prompt_tokens": 2, "completion_tokens": 3},
        "message": {
            "role": "assistant",
            "content": "Hello",
            "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}],
        },
    }
