"""Running event triggers: for each appended event (delivered by the domain bus rule), the
functions of the triggers listening for its type run in the sandbox with the event as input.

A run acts as the function's owner: each built-in checks what that owner could do through the API
(edit on `events` to send an event, on `exec` to run a task, on `chains` and view on the chain to
run a stored chain). A trigger runs a function only if the trigger's owner may view it.

Bounds: one run sends at most `events_per_function_run` events; all the runs caused by one appended
event (its origin), at every depth up to MAX_TRIGGER_DEPTH, send at most `events_per_event_chain`
together (a counter per origin); a run past either fails with RunLimitExceeded's message.

The worker (functions/runtime_event_triggers, SQS batch size 1) runs one function per message: an
event with several triggers is fanned out as one message per trigger, so one function's timeout
never makes SQS deliver a finished sibling again."""

from __future__ import annotations

from typing import Any

from pynamodb.exceptions import UpdateError

from aiplane.clock import now
from aiplane.data.conditions import refused_by_condition
from aiplane.data.publish import send_messages
from aiplane.errors import ForbiddenError, NotFoundError
from aiplane.events import functions, sandbox, store
from aiplane.events.models import TriggerChainRecord, TriggerRecord
from aiplane.identity import ownership
from aiplane.identity.access import EDIT, VIEW, require_permission
from aiplane.identity.principal import Principal
from aiplane.observability import logger
from aiplane.settings import current_environment, get_settings
from aiplane_shared import resources

# Events sent by functions can trigger functions again; past this depth the chain stops.
MAX_TRIGGER_DEPTH = 8
# What the worker needs besides the function's run (reading the trigger, storing sent events).
WORKER_MARGIN_S = 30
CHAIN_RECORD_TTL_S = 24 * 3600


def function_timeout_s() -> float:
    """AIPLANE_FUNCTION_TIMEOUT_S, at most what one worker invocation leaves for the run."""
    ceiling = resources.EVENT_TRIGGERS_QUEUE.consumer_timeout_s - WORKER_MARGIN_S
    return min(get_settings().function_timeout_s, ceiling)


def _spend_chain_budget(origin: str) -> None:
    """Counts one more event sent in the chain of `origin`; RunLimitExceeded once its budget is spent."""
    budget = current_environment().events_per_event_chain
    record = TriggerChainRecord(f"TRIGGERCHAIN#{origin}", "BUDGET")
    T = TriggerChainRecord
    try:
        record.update(
            actions=[T.sent.add(1), T.expires_at_epoch.set(int(now().timestamp()) + CHAIN_RECORD_TTL_S)],
            condition=T.sent.does_not_exist() | (T.sent < budget),
        )
    except UpdateError as error:
        if refused_by_condition(error):
            raise sandbox.RunLimitExceeded(
                f"the events caused by event {origin} reached their budget of {budget} "
                "(events_per_event_chain); the run is stopped"
            ) from None
        raise


def _builtins(
    trigger: TriggerRecord, event: dict[str, Any], depth: int, actor: Principal, origin: str
) -> dict[str, Any]:
    max_events = current_environment().events_per_function_run
    sent = 0

    def send_event(event_type: Any, data: Any = None) -> dict[str, Any]:
        nonlocal sent
        require_permission(actor, EDIT, "events")
        if sent >= max_events:
            raise sandbox.RunLimitExceeded(
                f"the function sent more than {max_events} events in one run; the run is stopped"
            )
        _spend_chain_budget(origin)
        sent += 1
        # A sent event belongs to the aggregate of the event that caused it.
        return store.append_event(
            {
                "event_type": event_type,
                "event_source": f"function:{trigger.function}",
                "version": 1,
                "aggregate_type": event["aggregate_type"],
                "aggregate_id": event["aggregate_id"],
                "data": data,
                "metadata": {"trigger": trigger.name, "causation_id": event["id"]},
            },
            depth=depth + 1,
            origin=origin,
        )

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


def run_trigger(
    trigger: TriggerRecord, event: dict[str, Any], depth: int, origin: str | None = None
) -> sandbox.FunctionRun:
    try:
        function = functions.get_function(trigger.function)
    except NotFoundError:
        return sandbox.FunctionRun(
            "error", error=f"function {trigger.function!r} of trigger {trigger.name!r} does not exist"
        )
    try:
        ownership.require(
            ownership.acting_as(trigger.owner_id), VIEW, ownership.FUNCTIONS, function.name, function.owner_id
        )
    except (NotFoundError, ForbiddenError):
        return sandbox.FunctionRun(
            "error", error=f"the owner of trigger {trigger.name!r} may not run function {trigger.function!r}"
        )
    actor = ownership.acting_as(function.owner_id)
    builtins = _builtins(trigger, event, depth, actor, origin or event["id"])
    return sandbox.run(function.script, event, builtins, timeout_s=function_timeout_s())


def _run_logged(trigger: TriggerRecord, event: dict[str, Any], depth: int, origin: str | None) -> sandbox.FunctionRun:
    run = run_trigger(trigger, event, depth, origin)
    log = logger.info if run.status == "ok" else logger.warning
    log(
        "event trigger ran",
        extra={
            "trigger": trigger.name,
            "function": trigger.function,
            "event_id": event["id"],
            "status": run.status,
            "error": run.error,
            "function_logs": run.logs,
        },
    )
    return run


def _listening(event: dict[str, Any], depth: int) -> list[TriggerRecord]:
    if depth >= MAX_TRIGGER_DEPTH:
        logger.warning("event trigger depth reached; triggers not run", extra={"event_id": event["id"], "depth": depth})
        return []
    return functions.triggers_for_event_type(event["event_type"])


def handle_event(event: dict[str, Any], depth: int, origin: str | None = None) -> dict[str, sandbox.FunctionRun]:
    """Runs every trigger listening for the event's type, here and one after another; returns each
    trigger's run by name.

    A function's own failure (it threw, timed out, a built-in failed) is logged, not retried:
    running it again would repeat whatever it already did.
    """
    return {trigger.name: _run_logged(trigger, event, depth, origin) for trigger in _listening(event, depth)}


def deliver(detail: dict[str, Any]) -> int:
    """The worker's part for one message (a bus event, or one trigger fanned out): runs at most one
    function, and fans an event with several triggers out to one message each; returns the runs."""
    event, depth, origin = detail["event"], int(detail.get("depth", 0)), detail.get("origin")
    if detail.get("trigger"):
        try:
            trigger = functions.get_trigger(detail["trigger"])
        except NotFoundError:
            return 0  # deleted since the event was fanned out
        _run_logged(trigger, event, depth, origin)
        return 1
    listening = _listening(event, depth)
    if len(listening) == 1:
        _run_logged(listening[0], event, depth, origin)
        return 1
    _fan_out(detail, [trigger.name for trigger in listening])
    return 0


def _fan_out(detail: dict[str, Any], trigger_names: list[str]) -> None:
    """One message per trigger; a refused one raises, so the event's own message is retried."""
    send_messages(resources.EVENT_TRIGGERS_QUEUE, [{"detail": {**detail, "trigger": name}} for name in trigger_names])
