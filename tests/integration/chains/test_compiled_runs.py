"""Compiled chains run on moto's Step Functions interpreter, each step in the chain-step Lambda."""

from __future__ import annotations

from aiplane.chains import runner
from aiplane.chains.model import parse_chain


def run(chain: dict, input_value, input_type="string"):
    return runner.run_inline(parse_chain(chain), input_value, input_type)


def test_raw_string_then_branch_on_contains(llm):
    llm.reply = lambda text, body: "The answer is YES indeed" if "valid" in text else "fallback"
    chain = {
        "id": "c1",
        "tasks": [
            {
                "id": "ask",
                "handler": "raw_string",
                "prompt_template": "Is this valid? {{.input}}",
                "transition": {
                    "branches": [
                        {"operator": "contains", "when": "YES", "goto": "yes"},
                        {"operator": "default", "goto": "no"},
                    ]
                },
            },
            {"id": "yes", "handler": "noop", "transition": {"branches": [{"operator": "default", "goto": "end"}]}},
            {"id": "no", "handler": "raise_error"},
        ],
    }
    output, output_type, state = run(chain, "hello")
    assert output == "The answer is YES indeed" and output_type == "string"
    assert [unit["taskID"] for unit in state] == ["ask", "yes"]
    assert state[0]["transition"] == "The answer is YES indeed"
    assert llm.requests[-1][2]["messages"][-1]["content"] == "Is this valid? hello"


def test_chain_step_handler_answers_its_sample_event():
    import json
    import uuid

    from aiplane_local.lambda_runtime import invoke
    from events.generate import EVENTS_DIR

    event = json.loads((EVENTS_DIR / "runtime_chain_step.json").read_text())
    event["state"]["run_id"] = uuid.uuid4().hex
    state = invoke("runtime_chain_step", event)
    assert (state["current"], state["transition"], state["vars"]["echo"]) == ("hello", "noop", "hello")


def test_chain_state_machines_log_errors_to_cloudwatch_logs_and_trace_as_the_functions_do():
    from aiplane.data.aws import client
    from aiplane.settings import get_settings
    from aiplane_shared.resources import chain_log_group

    arn = runner.deploy(parse_chain({"id": "logged", "tasks": [{"id": "only", "handler": "noop"}]}))
    described = client("stepfunctions").describe_state_machine(stateMachineArn=arn)
    assert described["tracingConfiguration"] == {"enabled": get_settings().tracing_enabled}
    configuration = described["loggingConfiguration"]
    assert configuration["level"] == "ERROR" and configuration["includeExecutionData"] is False
    (destination,) = configuration["destinations"]
    assert chain_log_group(get_settings().resource_prefix) in destination["cloudWatchLogsLogGroup"]["logGroupArn"]
