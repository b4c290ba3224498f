"""Every function of the dev template imports from the built assets in an isolated Python 3.12
and answers its sample event against moto, with the template's environment (tracing on)."""

from __future__ import annotations

import json
import re

import aws_cdk as cdk
import pytest

from aiplane_shared import resources
from aiplane_shared.routes import PUBLIC, access_for, all_function_names
from aiplane_shared.streaming import STREAMING_FUNCTIONS
from events.generate import EVENTS_DIR

AUTHORIZER = re.compile(r"^[a-z]+_authorizer$")
# Workers fed by a schedule: a tick against an empty stack must succeed.
SCHEDULED_WORKERS = {
    queue.consumer
    for queue in resources.QUEUES
    if any(schedule.target_queue == queue.name for schedule in resources.SCHEDULES)
}


def test_the_template_deploys_the_assets_under_test(sandbox, template_functions):
    from aiplane_local.packaged import template_functions as functions_and_layers

    _, layer_keys = functions_and_layers("dev")
    built = sandbox.built
    asset_key = {
        path: cdk.FileSystem.fingerprint(str(path)) + ".zip"
        for path in (built.functions, built.domain, built.dependencies)
    }
    for function in template_functions.values():
        assert function.code_key == asset_key[built.functions], function.name
        # Our layers are Refs to the stack's layer versions; the Web Adapter's is a public ARN.
        own_layers = {
            layer_keys[layer["Ref"]] for layer in function.layers if isinstance(layer, dict) and "Ref" in layer
        }
        assert own_layers == {asset_key[built.domain], asset_key[built.dependencies]}, function.name


def test_the_bytecode_is_for_python_312(sandbox):
    for root in (sandbox.task_root, sandbox.layer_python):
        compiled = list(root.rglob("*.pyc"))
        assert compiled and all(".cpython-312." in path.name for path in compiled), root
        sources = [path for path in root.rglob("*.py") if path.parent.name != "__pycache__"]
        missing = [
            path for path in sources if not (path.parent / "__pycache__" / f"{path.stem}.cpython-312.pyc").exists()
        ]
        assert not missing, missing[:5]


def test_every_function_has_a_sample_event(template_functions):
    assert set(all_function_names()) <= set(template_functions)
    assert not [name for name in template_functions if not (EVENTS_DIR / f"{name}.json").exists()]


def test_imports_see_only_the_function_code_and_its_layers(sandbox, invocations):
    sys_path, _, _ = invocations
    ours = [entry for entry in sys_path if not entry.startswith(str(sandbox.python).rsplit("/bin/", 1)[0])]
    assert ours == [str(sandbox.task_root), str(sandbox.layer_python)]
    assert not [entry for entry in sys_path if "site-packages" in entry]


def test_every_function_ends_its_init_with_the_garbage_collector_running(invocations, template_functions):
    # Init runs with it paused (aiplane.cold_start); a handler module that never ended init would
    # leave it off for the life of the process.
    plain = [name for name, function in template_functions.items() if not function.behind_adapter]
    assert not [name for name in plain if not invocations[1][name].get("collector_enabled_after_init")]


def test_tracing_is_on_in_the_template(template_functions):
    assert {function.environment["POWERTOOLS_TRACE_DISABLED"] for function in template_functions.values()} == {"false"}


@pytest.mark.parametrize("name", sorted(set(all_function_names())))
def test_api_function_answers_its_sample_event(name, invocations):
    result = invocations[1][name]
    assert "error" not in result, result.get("traceback")
    response, event = result["response"], json.loads((EVENTS_DIR / f"{name}.json").read_text())
    public = access_for(name.split("_", 1)[0], event["httpMethod"], event["resource"]) == PUBLIC
    status = response["statusCode"]
    assert (status < 500 or status == 501) if public else status == 401, response
    assert json.loads(response["body"])


def test_authorizers_refuse_the_sample_without_credentials(invocations, template_functions):
    authorizers = [name for name in template_functions if AUTHORIZER.match(name)]
    assert len(authorizers) == 4
    for name in authorizers:
        assert invocations[1][name].get("error") == "Exception: Unauthorized", invocations[1][name].get("traceback")


def test_websocket_functions_refuse_the_sample_connect_without_credentials(invocations):
    for family in resources.WEBSOCKET_FAMILIES:
        result = invocations[1][resources.websocket_function_name(family)]
        assert "error" not in result, result.get("traceback")
        assert result["response"]["statusCode"] == 401, result


def test_workers_answer_their_sample_messages(invocations):
    for queue in resources.QUEUES:
        if not queue.consumer:
            continue
        result = invocations[1][queue.consumer]
        assert "error" not in result, result.get("traceback")
        assert "batchItemFailures" in result["response"], result
        if queue.consumer in SCHEDULED_WORKERS:
            assert result["response"]["batchItemFailures"] == [], (queue.consumer, invocations[2][-3000:])


def test_chain_step_runs_its_sample_task(invocations):
    result = invocations[1][resources.CHAIN_STEP_FUNCTION]
    assert "error" not in result, result.get("traceback")
    assert result["response"]["run_id"] == "sample-run"


def test_api_and_worker_functions_send_their_traces_to_the_daemon(invocations, xray_daemon):
    _, segments = xray_daemon
    handled = [segment for segment in segments if segment.get("name") == "## handle"]
    # Streaming functions answer through uvicorn behind the Web Adapter: Lambda's active tracing
    # records them, the in-app Powertools handler segment is only on the buffered ones. Every
    # queue's worker traces through the same entry point (aiplane.api.lambda_entry).
    buffered = [name for name in all_function_names() if name not in STREAMING_FUNCTIONS]
    workers = {queue.consumer for queue in resources.QUEUES}
    assert len(handled) == len(buffered) + len(workers), {segment.get("name") for segment in segments}
    assert {segment["trace_id"] for segment in handled} == {"1-67890abc-0123456789abcdef01234567"}


def test_a_second_build_reuses_the_cached_zips(sandbox):
    from aiplane_infra import assets

    before = {path: path.stat().st_mtime_ns for path in vars(sandbox.built).values()}
    rebuilt = assets.build_all()
    assert {path: path.stat().st_mtime_ns for path in vars(rebuilt).values()} == before
    assert rebuilt.dependencies.name.startswith("dependencies-") and rebuilt.dependencies.stat().st_size > 10_000_000
