"""Inline `POST /tasks` runs leave no state machine behind: each run's machine is deleted after it,
and one a killed process left is collected by a later run."""

from __future__ import annotations

import boto3

from aiplane.chains import runner
from aiplane.chains.model import parse_chain
from tests.integration.chains.test_tasks_route import end, run


def machine_names() -> list[str]:
    pages = boto3.client("stepfunctions").get_paginator("list_state_machines").paginate()
    return [machine["name"] for page in pages for machine in page["stateMachines"]]


def test_distinct_inline_runs_leave_the_state_machine_count_flat(runtime, llm):
    before = len(machine_names())
    for number in range(12):  # twelve distinct chains: each would have had a machine of its own
        tasks = [
            {
                "id": f"step{number}",
                "handler": "raw_string",
                "prompt_template": f"#{number} {{{{.input}}}}",
                "transition": end(),
            }
        ]
        response = run(runtime, tasks, "hi")
        assert response.status_code == 200 and response.json()["output"] == f"echo: #{number} hi"
    assert len(machine_names()) == before


def test_a_failed_inline_run_is_collected_too(runtime, llm):
    before = len(machine_names())
    response = run(runtime, [{"id": "boom", "handler": "raise_error", "prompt_template": "no"}])
    assert response.status_code == 400 and response.json()["error"]["code"] == "chain_failed"
    assert len(machine_names()) == before


def test_an_inline_machine_a_killed_process_left_is_collected():
    leaked = runner.deploy(
        parse_chain({"id": "left", "tasks": [{"id": "a", "handler": "noop"}]}),
        key=runner.INLINE_KEY_PREFIX + "killed-mid-run",
    )
    stored = runner.deploy(parse_chain({"id": "kept", "tasks": [{"id": "a", "handler": "noop"}]}), key="stored-kept")
    assert runner.collect_stale_inline_machines(older_than_s=0) >= 1
    names = machine_names()
    assert leaked.rsplit(":", 1)[1] not in names and stored.rsplit(":", 1)[1] in names
    runner.remove(stored)
