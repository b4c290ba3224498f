"""The packaged-artifact tier: the built Lambda assets, run as Lambda runs them (see
aiplane_local.packaged), against the session's moto server.

The functions get the dev template's environment, so the dev resources are provisioned in moto
next to the local ones.
"""

from __future__ import annotations

import json
import socket
import threading

import pytest

from tests.local_stack import admin_api_key, local_stack  # this tier runs against moto

pytest.importorskip("aws_cdk", reason="the [infra] extra is not installed")

from aiplane_infra.assets import MissingPython312
from aiplane_local import packaged
from aiplane_local.stack import free_port
from events.generate import EVENTS_DIR

ENVIRONMENT = "dev"


@pytest.fixture(scope="session")
def sandbox() -> packaged.Sandbox:
    try:
        return packaged.build_sandbox()
    except MissingPython312 as missing:
        pytest.fail(str(missing), pytrace=False)


@pytest.fixture(scope="session")
def template_functions() -> dict[str, packaged.PackagedFunction]:
    return packaged.template_functions(ENVIRONMENT)[0]


@pytest.fixture(scope="session")
def dev_resources(local_stack):
    local_stack.provision(ENVIRONMENT)
    return local_stack


@pytest.fixture(scope="session")
def xray_daemon():
    """A UDP socket standing in for the X-Ray daemon: it keeps the segments it receives."""
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    segments: list[dict] = []

    def receive() -> None:
        while True:
            try:
                datagram = receiver.recv(65536)
            except OSError:
                return
            header, _, body = datagram.partition(b"\n")  # {"format":"json","version":1}\n<segment>
            if json.loads(header).get("format") == "json":
                segments.append(json.loads(body))

    threading.Thread(target=receive, daemon=True).start()
    yield f"127.0.0.1:{receiver.getsockname()[1]}", segments
    receiver.close()


def sample_event(name: str) -> dict:
    return json.loads((EVENTS_DIR / f"{name}.json").read_text())


@pytest.fixture(scope="session")
def invocations(sandbox, template_functions, dev_resources, xray_daemon):
    """Every function behind a plain handler, imported cold and invoked once with its sample event."""
    address, _ = xray_daemon
    jobs = [
        packaged.job_for(function, sandbox, sample_event(function.name), dev_resources.aws_endpoint, address)
        for function in template_functions.values()
        if not function.behind_adapter
    ]
    output = packaged.invoke_isolated(sandbox, jobs)
    results = {result["name"]: result for result in output["results"]}
    for function in template_functions.values():
        if function.behind_adapter:  # a streaming function: its web app answers, as the adapter asks
            response = packaged.answer_behind_adapter(
                function,
                sandbox,
                dev_resources.aws_endpoint,
                sample_event(function.name),
                {"AWS_LWA_PORT": str(free_port())},
            )
            results[function.name] = {"name": function.name, "response": response}
    return output["sys_path"], results, output["stderr"]
