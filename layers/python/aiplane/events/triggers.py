"""Running event triggers: for each appended event (delivered by the domain bus rule), the
functions of the triggers listening for its type run in the sandbox with the event as input.

A run acts as the function's owner: each built-in checks what that owner could do through the API
(edit on `events` to send an event, on `exec` to run a task, on `chains` and view on the chain to
run a stored chain). A trigger runs a function only if the trigger's owner may view it."""

from __future__ import annotations

import os
from typing import Any

from aiplane.errors import ForbiddenError, NotFoundError
from aiplane.events import functions, sandbox, store
from aiplane.events.models import TriggerRecord
from aiplane.identity import ownership
from aiplane.identity.access import EDIT, VIEW, require_permission
from aiplane.identity.principal import Principal
from aiplane.observability import logger
from aiplane.settings import current_environment

# Events sent by functions can trigger functions again; past this depth the chain stops.
MAX_TRIGGER_DEPTH = 8
DEFAULT_FUNCTION_TIMEOUT_S = 120.0


def function_timeout_s() -> float:
    return float(os.environ.get("AIPLANE_FUNCTION_TIMEOUT_S", DEFAULT_FUNCTION_TIMEOUT_S))


def _builtins(trigger: TriggerRecord, event: dict[str, Any], depth: int, actor: Principal) -> dict[str, Any]:
    max_events = current_environment().events_per_function_run
    sent = 0

    def send_event(event_type: Any, data: Any = None) -> dict[str, Any]:
        nonlocal sent
        require_permission(actor, EDIT, "events")
        if sent >= max_events:
            raise sandbox.RunLimitExceeded(f"the function sent more than {max_events} events in one run; the run is stopped")
        sent += 1
        # A sent event belongs to the aggregate of the event that caused it.
        return store.append_event({
            "event_type": event_type, "event_source": f"function:{trigger.function}", "version": 1,
            "aggregate_type": event["aggregate_type"], "aggregate_id": event["aggregate_id"], "data": data,
            "metadata": {"trigger": trigger.name, "causation_id": event["id"]},
        }, depth=depth + 1)

    def execute_task(prompt: Any, model: Any = None, provider: Any = None) -> dict[str, Any]:
        from aiplane.gateway import inference

        require_permission(actor, EDIT, "exec")
        return inference.execute(str(prompt), str(model or ""), str(provider or ""))

    def execute_task_chain(chain_id: Any, input_value: Any = None) -> dict[str, Any]:
        from aiplane.chains import runner

        require_permission(actor, EDIT, "chains")
        output, output_type, _ = runner.run_stored(str(chain_id), input_value, "any", actor)
        return {"output": output, "outputType": output_type}

    return {"sendEvent": send_event, "executeTask": execute_task, "executeTaskChain": execute_task_chain}


def run_trigger(trigger: TriggerRecord, event: dict[str, Any], depth: int) -> sandbox.FunctionRun:
    try:
        function = functions.get_function(trigger.function)
    except NotFoundError:
        return sandbox.FunctionRun("error", error=f"function {trigger.function!r} of trigger {trigger.name!r} does not exist")
    try:
        ownership.require(ownership.acting_as(trigger.owner_id), VIEW, ownership.FUNCTIONS, function.name, function.owner_id)
    except (NotFoundError, ForbiddenError):
        return sandbox.FunctionRun("error", error=f"the owner of trigger {trigger.name!r} may not run function {trigger.function!r}")
    actor = ownership.acting_as(function.owner_id)
    return sandbox.run(function.script, event, _builtins(trigger, event, depth, actor), timeout_s=function_timeout_s())


def handle_event(event: dict[str, Any], depth: int) -> dict[str, sandbox.FunctionRun]:
    """Runs every trigger listening for the event's type; returns each trigger's run by name.

    A function's own failure (it threw, timed out, a built-in failed) is logged, not retried:
    running it again would repeat whatever it already did.
    """
    if depth >= MAX_TRIGGER_DEPTH:
        logger.warning("event trigger depth reached; triggers not run", extra={"event_id": event["id"], "depth": depth})
        return {}
    runs: dict[str, sandbox.FunctionRun] = {}
    for trigger in functions.triggers_for_event_type(event["event_type"]):
        run = run_trigger(trigger, event, depth)
        runs[trigger.name] = run
        log = logger.info if run.status == "ok" else logger.warning
        log("event trigger ran", extra={"trigger": trigger.name, "function": trigger.function, "event_id": event["id"],
                                        "status": run.status, "error": run.error, "function_logs": run.logs})
    return runs
