"""The chain-step Lambda: every Task state of a compiled chain invokes it for one attempt.

Event: {"task": <task JSON string>, "chain": <chain settings JSON string>, "state": <execution state>}.
It returns the next execution state, or raises (the exception's class is the error name that
the state's Retry and Catch see).
"""

from __future__ import annotations

import json
from typing import Any

from aiplane.chains.engine import run_step
from aiplane.chains.model import TaskDefinition
from aiplane.cold_start import init_done


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    task = TaskDefinition.model_validate(json.loads(event["task"]))
    return run_step(task, json.loads(event["chain"]), event["state"])


init_done()  # the end of init (aiplane.cold_start)
