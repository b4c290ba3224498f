"""Event triggers are bounded: the events one appended event causes, across every depth, share one
budget; the worker runs one function per message, so a finished function is not run again when
another one's message fails."""

from __future__ import annotations

import json
import uuid

import pytest

from aiplane.events import sandbox, triggers
from aiplane.settings import Settings, current_environment
from aiplane_local.lambda_runtime import LocalLambdaContext
from aiplane_shared import resources
from aiplane_shared.environments import ENVIRONMENTS
from functions.runtime_event_triggers.handler import handler
from tests.integration.runtime_events.test_triggers_end_to_end import append, setup_trigger


@pytest.fixture
def bounds(monkeypatch):
    def set_bounds(**values):
        monkeypatch.setitem(ENVIRONMENTS, current_environment().name, current_environment()._replace(**values))

    return set_bounds


def test_a_trigger_fan_out_is_bounded_across_depths(runtime, headers, unique, bounds, drain_trigger_queue):
    """Replays: each run sends two events its own trigger listens for. The per-run bound (3) and the
    depth bound (8) alone let 2 + 4 + ... + 256 = 510 events through; the chain budget stops it at 5."""
    bounds(events_per_function_run=3, events_per_event_chain=5)
    event_type = unique("branching")
    script = f"sendEvent('{event_type}', {{n: 1}}); sendEvent('{event_type}', {{n: 2}}); 'sent'"
    setup_trigger(runtime, headers, unique, script, event_type=event_type)
    source = append(runtime, headers, event_type, {})
    drain_trigger_queue()
    stored = runtime.get("/events/type", params={"event_type": event_type, "limit": 1000}, headers=headers).json()
    assert len(stored) == 1 + 5
    assert all(event["id"] == source["id"] or event["metadata"]["causation_id"] for event in stored)


def test_the_run_past_the_chain_budget_fails_clearly(runtime, headers, unique, bounds):
    bounds(events_per_event_chain=2)
    sent_type = unique("sent")
    _, trigger, event_type = setup_trigger(
        runtime, headers, unique, f"for (var i = 0; i < 3; i++) sendEvent('{sent_type}', {{i: i}})"
    )
    event = append(runtime, headers, event_type, {})
    runs = triggers.handle_event(event, depth=0)
    assert runs[trigger].status == "error"
    assert runs[trigger].error == (
        f"the events caused by event {event['id']} reached their budget of 2 "
        "(events_per_event_chain); the run is stopped"
    )
    # the budget belongs to the origin: a later run in the same chain gets nothing more
    again = triggers.handle_event(event, depth=1, origin=event["id"])
    assert again[trigger].status == "error"
    assert len(runtime.get("/events/type", params={"event_type": sent_type}, headers=headers).json()) == 2


def _sqs_record(detail: dict, message_id: str) -> dict:
    return {
        "messageId": message_id,
        "receiptHandle": message_id,
        "body": json.dumps({"detail": detail}),
        "attributes": {"ApproximateReceiveCount": "1"},
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:event-triggers",
        "awsRegion": "us-east-1",
    }


def test_an_event_with_two_triggers_runs_each_function_once_in_its_own_message(
    runtime, headers, unique, drain_trigger_queue
):
    event_type, ran_a, ran_b = unique("twice"), unique("ran-a"), unique("ran-b")
    setup_trigger(runtime, headers, unique, f"sendEvent('{ran_a}', {{}})", event_type=event_type)
    setup_trigger(runtime, headers, unique, f"sendEvent('{ran_b}', {{}})", event_type=event_type)
    append(runtime, headers, event_type, {})
    assert drain_trigger_queue() >= 1 + 2  # the event, then one message per trigger (others may wait there too)
    for kind in (ran_a, ran_b):
        assert len(runtime.get("/events/type", params={"event_type": kind}, headers=headers).json()) == 1


def test_a_finished_function_is_not_run_again_when_its_sibling_fails(runtime, headers, unique, monkeypatch):
    """Replays: a batch whose second function timed out was retried whole, running the first again.
    Each record is one run and only the failed record is reported back, so only it is retried."""
    event_type, ran_a = unique("sibling"), unique("ran-a")
    _, trigger_a, _ = setup_trigger(runtime, headers, unique, f"sendEvent('{ran_a}', {{}})", event_type=event_type)
    _, trigger_b, _ = setup_trigger(runtime, headers, unique, "'b'", event_type=event_type)
    event = append(runtime, headers, event_type, {})
    real_run = triggers.run_trigger

    def run_or_time_out(trigger, *args):
        if trigger.name == trigger_b:
            raise TimeoutError("the worker ran out of time")
        return real_run(trigger, *args)

    monkeypatch.setattr(triggers, "run_trigger", run_or_time_out)
    batch = {
        "Records": [
            _sqs_record({"event": event, "depth": 0, "origin": event["id"], "trigger": name}, name)
            for name in (trigger_a, trigger_b)
        ]
    }
    assert handler(batch, LocalLambdaContext("runtime_event_triggers")) == {
        "batchItemFailures": [{"itemIdentifier": trigger_b}]
    }
    retry = {"Records": [record for record in batch["Records"] if record["messageId"] == trigger_b]}
    with pytest.raises(Exception, match="All records failed"):  # a batch that failed whole is retried whole: just B
        handler(retry, LocalLambdaContext("runtime_event_triggers"))
    assert len(runtime.get("/events/type", params={"event_type": ran_a}, headers=headers).json()) == 1


def test_one_function_run_fits_one_worker_invocation(set_setting):
    queue = resources.EVENT_TRIGGERS_QUEUE
    assert queue.batch_size == 1
    assert queue.batch_size * Settings().function_timeout_s + triggers.WORKER_MARGIN_S <= queue.consumer_timeout_s
    set_setting("AIPLANE_FUNCTION_TIMEOUT_S", "1000")  # more than the worker has is cut to what it has
    assert triggers.function_timeout_s() == queue.consumer_timeout_s - triggers.WORKER_MARGIN_S
    assert issubclass(sandbox.RunLimitExceeded, Exception)


def test_a_fanned_out_trigger_deleted_meanwhile_is_skipped(runtime, headers, unique):
    event = append(runtime, headers, unique("gone"), {})
    assert triggers.deliver({"event": event, "depth": 0, "trigger": f"deleted-{uuid.uuid4().hex[:6]}"}) == 0
