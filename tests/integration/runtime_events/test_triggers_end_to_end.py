"""The trigger path end to end: POST /events → domain bus → pattern rule → event-triggers queue →
consumer → the function in the QuickJS sandbox, with its built-ins, time bound and loop guard."""

from __future__ import annotations

import uuid

import pytest

from aiplane.events import sandbox, triggers


def setup_trigger(runtime, headers, unique, script, event_type=None):
    function, trigger, event_type = unique("fn"), unique("trigger"), event_type or unique("type")
    assert runtime.post("/functions", json={"name": function, "script": script}, headers=headers).status_code == 201
    assert (
        runtime.post(
            "/event-triggers",
            json={"name": trigger, "listenFor": {"type": event_type}, "type": "function", "function": function},
            headers=headers,
        ).status_code
        == 201
    )
    return function, trigger, event_type


def append(runtime, headers, event_type, data):
    response = runtime.post(
        "/events",
        json={"event_type": event_type, "aggregate_type": "order", "aggregate_id": "o-7", "version": 1, "data": data},
        headers=headers,
    )
    assert response.status_code == 201, response.text
    return response.json()


def test_appended_event_runs_the_function_through_eventbridge_and_sqs(runtime, headers, unique, drain_trigger_queue):
    done_type = unique("order.checked")
    script = f"""
        console.log('checking', event.data.total);
        var sent = sendEvent('{done_type}', {{total: event.data.total, big: event.data.total > 100}});
        sent.id;
    """
    _, _, event_type = setup_trigger(runtime, headers, unique, script)
    source = append(runtime, headers, event_type, {"total": 250})

    assert drain_trigger_queue() >= 2  # the appended event, then the one its function sent
    sent = runtime.get("/events/type", params={"event_type": done_type}, headers=headers).json()
    assert len(sent) == 1
    assert sent[0]["data"] == {"total": 250, "big": True}
    assert sent[0]["aggregate_id"] == "o-7" and sent[0]["event_source"].startswith("function:")
    assert sent[0]["metadata"]["causation_id"] == source["id"]


def test_the_consumer_reports_each_trigger_run(runtime, headers, unique):
    _, trigger, event_type = setup_trigger(runtime, headers, unique, "console.log('hi'); ({seen: event.event_type})")
    event = append(runtime, headers, event_type, {})
    runs = triggers.handle_event(event, depth=0)
    assert (
        runs[trigger].status == "ok" and runs[trigger].result == {"seen": event_type} and runs[trigger].logs == ["hi"]
    )


def test_a_trigger_of_a_missing_function_fails_clearly(runtime, headers, unique):
    event_type, trigger = unique("type"), unique("trigger")
    runtime.post(
        "/event-triggers",
        json={"name": trigger, "listenFor": {"type": event_type}, "function": "gone"},
        headers=headers,
    )
    runs = triggers.handle_event(append(runtime, headers, event_type, {}), depth=0)
    assert runs[trigger].status == "error" and "does not exist" in runs[trigger].error


def test_functions_are_bounded_in_time_and_cannot_loop_triggers(runtime, headers, unique, set_setting):
    set_setting("AIPLANE_FUNCTION_TIMEOUT_S", "1")
    _, trigger, event_type = setup_trigger(runtime, headers, unique, "while (true) {}")
    runs = triggers.handle_event(append(runtime, headers, event_type, {}), depth=0)
    assert runs[trigger].status == "timeout"
    assert triggers.handle_event(append(runtime, headers, event_type, {}), depth=triggers.MAX_TRIGGER_DEPTH) == {}


def test_execute_task_chain_runs_a_stored_chain(runtime, headers, unique):
    chain_id = f"chain-{uuid.uuid4().hex[:8]}"
    chain = {
        "id": chain_id,
        "tasks": [{"id": "a", "handler": "noop", "transition": {"branches": [{"operator": "default", "goto": "end"}]}}],
    }
    assert runtime.post("/taskchains", json=chain, headers=headers).status_code == 201
    _, trigger, event_type = setup_trigger(
        runtime, headers, unique, f"executeTaskChain('{chain_id}', event.data).output"
    )
    runs = triggers.handle_event(append(runtime, headers, event_type, {"q": 1}), depth=0)
    assert runs[trigger].status == "ok", runs[trigger].error
    assert runs[trigger].result == {"q": 1}


def test_execute_task_errors_reach_the_script(runtime, headers, unique):
    script = "try { executeTask('hi', 'no-such-model', ''); 'ran' } catch (e) { 'caught: ' + e.message }"
    _, trigger, event_type = setup_trigger(runtime, headers, unique, script)
    runs = triggers.handle_event(append(runtime, headers, event_type, {}), depth=0)
    assert runs[trigger].status == "ok" and runs[trigger].result.startswith("caught: ")


@pytest.mark.parametrize(
    "script, status, error",
    [
        ("throw new Error('boom')", "error", "Error: boom"),
        ("var a = []; while (true) { a.push(new Array(100000).fill(1)); }", "error", "out of memory"),
        ("typeof require + typeof process + typeof fetch", "ok", None),
    ],
)
def test_the_sandbox_has_no_host_access_and_bounded_memory(script, status, error):
    run = sandbox.run(script, {}, {}, timeout_s=20)
    assert run.status == status
    if error:
        assert error in run.error
    else:
        assert run.result == "undefinedundefinedundefined"


def test_each_builtin_call_is_bounded():
    import time

    run = sandbox.run(
        "executeTask('x')", {}, {"executeTask": lambda *args: time.sleep(2)}, timeout_s=10, builtin_timeout_s=0.2
    )
    assert run.status == "error" and "timed out" in run.error


def test_one_run_sends_a_bounded_number_of_events(runtime, headers, unique, monkeypatch):
    """Replays: a function could send events without end (each one stored and put on the bus)."""
    from aiplane.settings import current_environment
    from aiplane_shared.environments import ENVIRONMENTS

    environment = current_environment()
    monkeypatch.setitem(ENVIRONMENTS, environment.name, environment._replace(events_per_function_run=3))
    flood_type = unique("flood")
    # the script even tries to catch the refusal and carry on: the run still fails
    script = (
        f"for (var i = 0; i < 10; i++) {{ try {{ sendEvent('{flood_type}', {{i: i}}); }} catch (e) {{}} }} 'finished'"
    )
    _, trigger, event_type = setup_trigger(runtime, headers, unique, script)
    runs = triggers.handle_event(append(runtime, headers, event_type, {}), depth=0)
    assert runs[trigger].status == "error"
    assert runs[trigger].error == "the function sent more than 3 events in one run; the run is stopped"
    sent = runtime.get("/events/type", params={"event_type": flood_type}, headers=headers).json()
    assert sorted(event["data"]["i"] for event in sent) == [0, 1, 2]
