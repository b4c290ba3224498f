"""Per-step overhead of a task chain on the local stack, and state transitions per step.

Runs a 10-task chain of `noop` tasks (no LLM, so only the machinery is timed: StartSyncExecution,
moto's ASL interpreter, one chain-step Lambda invocation and one DynamoDB write per task) and a
1-task chain; the per-step overhead is the difference divided by nine. The transitions per step
come from the execution history of the same chain run as a standard execution.

Run: .venv/bin/python bench/chains.py [--runs 30]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO_ROOT)]

from aiplane_local.stack import start_local_stack  # noqa: E402  (before any boto3 client)


def chain_of(length: int) -> dict:
    tasks = []
    for number in range(length):
        goto = f"t{number + 1}" if number + 1 < length else "end"
        tasks.append(
            {"id": f"t{number}", "handler": "noop", "transition": {"branches": [{"operator": "default", "goto": goto}]}}
        )
    return {"id": f"bench-{length}", "tasks": tasks}


def median_run_ms(arn: str, runs: int) -> float:
    from aiplane.chains import runner

    for _ in range(3):  # warm-up
        runner.run(arn, "x", "string")
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        runner.run(arn, "x", "string")
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def transitions_per_step(arn: str, tasks: int) -> float:
    from aiplane.chains.engine import initial_state, new_run_id
    from aiplane.data.aws import client

    sfn = client("stepfunctions")
    run_id = new_run_id()
    execution = sfn.start_execution(
        stateMachineArn=arn, name=run_id, input=json.dumps(initial_state(run_id, "x", "string"))
    )
    while sfn.describe_execution(executionArn=execution["executionArn"])["status"] == "RUNNING":
        time.sleep(0.01)
    events = sfn.get_execution_history(executionArn=execution["executionArn"], maxResults=1000)["events"]
    entered = [event for event in events if event["type"].endswith("StateEntered")]
    return len(entered) / tasks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    stack = start_local_stack(start_dispatchers=False)
    try:
        from aiplane.chains import runner
        from aiplane.chains.model import parse_chain

        one = runner.deploy(parse_chain(chain_of(1)))
        ten = runner.deploy(parse_chain(chain_of(10)))
        one_ms, ten_ms = median_run_ms(one, args.runs), median_run_ms(ten, args.runs)
        print(f"1-task chain:  {one_ms:7.1f} ms (median of {args.runs})")
        print(f"10-task chain: {ten_ms:7.1f} ms (median of {args.runs})")
        print(
            f"per-step overhead: {(ten_ms - one_ms) / 9:.1f} ms per task; whole 10-task run {ten_ms / 10:.1f} ms per task"
        )
        print(
            f"state transitions per step: {transitions_per_step(ten, 10):.1f} (Task + Choice; plus one Succeed per run)"
        )
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
