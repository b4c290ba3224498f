"""Run the built Lambda assets as Lambda runs them: CPython 3.12, only the function code and its
layers on sys.path, and the environment the synthesized template gives each function.

Used by `tests/packaged/` and `bench/cold_start.py`. Needs the [infra] extra (the CDK app is
synthesized to read each function's handler and environment) and Python 3.12.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / "infra" / "cdk"))

from aiplane_infra import assets  # noqa: E402
from aiplane_shared.environments import ENVIRONMENTS, Environment, get_environment  # noqa: E402
from aiplane_shared.families import base_path  # noqa: E402
from aiplane_shared.streaming import HANDLER as STREAMING_HANDLER  # noqa: E402

DRIVER = Path(__file__).with_name("isolated_invoke.py")
# Imported once by the driver before it forks a process per function (they are in every function).
PRELOAD = (
    "boto3",
    "botocore.session",
    "pydantic",
    "fastapi",
    "mangum",
    "pynamodb.models",
    "aws_lambda_powertools",
    "httpx",
)
ADAPTER_BOOTSTRAP = 'exec -- "${LAMBDA_TASK_ROOT}/${_HANDLER}"'  # the Lambda Web Adapter layer's /opt/bootstrap


@dataclass(frozen=True)
class PackagedFunction:
    """One Lambda function of the template."""

    name: str  # its folder under functions/ (the logical name), e.g. runtime_exec
    function_name: str  # the physical name
    handler: str
    environment: dict[str, str]
    memory_mb: int
    timeout_s: int
    code_key: str  # S3 key of its code asset (the asset's hash)
    layers: tuple[Any, ...]  # layer references (own layers) or ARNs (public layers)

    @property
    def behind_adapter(self) -> bool:
        return self.handler == STREAMING_HANDLER


@dataclass(frozen=True)
class Sandbox:
    python: str  # CPython 3.12
    task_root: Path  # the function code, unpacked (Lambda's /var/task)
    layer_root: Path  # the layers, unpacked and merged (Lambda's /opt)
    built: assets.BuiltAssets

    @property
    def layer_python(self) -> Path:
        return self.layer_root / "python"


def build_sandbox() -> Sandbox:
    python = assets.find_python312()  # first: without it nothing can be compiled
    built = assets.build_all()
    return Sandbox(python, assets.unpack([built.functions]), assets.unpack([built.dependencies, built.domain]), built)


def _resolved(value: object, environment: Environment) -> object:
    """What CloudFormation puts in for a pseudo parameter at deploy time (this account: moto's)."""
    pseudo = {"AWS::AccountId": ENVIRONMENTS["local"].account, "AWS::Region": environment.region}
    if isinstance(value, dict) and set(value) == {"Ref"} and value["Ref"] in pseudo:
        return pseudo[value["Ref"]]
    return value


@cache
def template_functions(environment_name: str = "dev") -> tuple[dict[str, PackagedFunction], dict[str, str]]:
    """The template's Python functions by logical name, and its layer versions' asset keys by
    logical id."""
    import aws_cdk as cdk
    from aws_cdk.assertions import Template

    from aiplane_infra.app import build_environment

    environment = get_environment(environment_name)
    functions: dict[str, PackagedFunction] = {}
    layer_keys: dict[str, str] = {}
    for stack in build_environment(cdk.App(), environment).values():
        template = Template.from_stack(stack)
        for logical_id, layer in template.find_resources("AWS::Lambda::LayerVersion").items():
            layer_keys[logical_id] = layer["Properties"]["Content"]["S3Key"]
        for resource in template.find_resources("AWS::Lambda::Function").values():
            properties = resource["Properties"]
            if not properties["Runtime"].startswith("python"):
                continue  # CDK's own helpers (e.g. bucket auto-delete)
            physical = properties["FunctionName"]
            name = physical.removeprefix(f"{environment.resource_prefix}-")
            variables = {
                key: _resolved(value, environment)
                for key, value in properties.get("Environment", {}).get("Variables", {}).items()
            }
            unresolved = {key: value for key, value in variables.items() if not isinstance(value, str)}
            if unresolved:
                raise ValueError(f"{name}: environment values known only at deploy time: {unresolved}")
            functions[name] = PackagedFunction(
                name=name,
                function_name=physical,
                handler=properties["Handler"],
                environment=variables,
                memory_mb=properties["MemorySize"],
                timeout_s=properties["Timeout"],
                code_key=properties["Code"]["S3Key"],
                layers=tuple(properties.get("Layers", ())),
            )
    return functions, layer_keys


def lambda_environment(
    function: PackagedFunction, sandbox: Sandbox, aws_endpoint: str, xray_daemon: str = "127.0.0.1:2000"
) -> dict[str, str]:
    """What a function's process sees on Lambda: the template's variables, the runtime's own
    (tracing included) and, instead of AWS, the embedded moto endpoint."""
    region = get_environment("dev").region
    return {
        "PATH": f"{sandbox_bin(sandbox)}:/usr/bin:/bin",
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "AWS_LAMBDA_FUNCTION_NAME": function.function_name,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_mb),
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{function.function_name}",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
        "LAMBDA_RUNTIME_DIR": "/var/runtime",
        "LAMBDA_TASK_ROOT": str(sandbox.task_root),
        "_HANDLER": function.handler,
        "_X_AMZN_TRACE_ID": "Root=1-67890abc-0123456789abcdef01234567;Parent=0123456789abcdef;Sampled=1",
        "AWS_XRAY_DAEMON_ADDRESS": xray_daemon,
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
        **function.environment,
        # The harness's stand-ins for AWS (see tests/conftest.py).
        "AWS_ENDPOINT_URL": aws_endpoint,
        "AWS_DISABLE_HOST_PREFIX_INJECTION": "true",
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_SESSION_TOKEN": "local",
    }


def sandbox_bin(sandbox: Sandbox) -> Path:
    """A bin/ whose python3 is the 3.12 interpreter (Lambda's PATH has /var/lang/bin/python3)."""
    directory = sandbox.task_root.parent / "bin-python312"
    directory.mkdir(exist_ok=True)
    link = directory / "python3"
    if not link.is_symlink() or os.readlink(link) != sandbox.python:
        link.unlink(missing_ok=True)
        link.symlink_to(sandbox.python)
    return directory


def invoke_isolated(
    sandbox: Sandbox, jobs: list[dict[str, Any]], parallel: int | None = None, preload: tuple[str, ...] = PRELOAD
) -> dict[str, Any]:
    """Run jobs (`name`, `handler`, `environment`, `event`, `memory_mb`, `timeout_s`,
    `function_name`, `region`) in the isolated 3.12 driver; returns its sys.path and results.
    Without `preload` each job's import is as cold as a fresh Lambda environment's."""
    common = set.intersection(*(set(job["environment"].items()) for job in jobs)) if jobs else set()
    request = {
        "task_root": str(sandbox.task_root),
        "layer_python": str(sandbox.layer_python),
        "common_environment": dict(common),
        "preload": preload,
        "jobs": jobs,
        "parallel": parallel or os.cpu_count() or 2,
    }
    completed = subprocess.run(
        [sandbox.python, "-I", "-S", str(DRIVER)],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
        timeout=600,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"isolated driver failed ({completed.returncode}):\n{completed.stderr[-4000:]}")
    output = json.loads(completed.stdout)
    output["stderr"] = completed.stderr
    return output


def job_for(
    function: PackagedFunction,
    sandbox: Sandbox,
    event: dict[str, Any],
    aws_endpoint: str,
    xray_daemon: str = "127.0.0.1:2000",
) -> dict[str, Any]:
    return {
        "name": function.name,
        "function_name": function.function_name,
        "handler": function.handler,
        "environment": lambda_environment(function, sandbox, aws_endpoint, xray_daemon),
        "event": event,
        "memory_mb": function.memory_mb,
        "timeout_s": function.timeout_s,
        "region": get_environment("dev").region,
    }


def start_behind_adapter(
    function: PackagedFunction, sandbox: Sandbox, aws_endpoint: str, extra_environment: dict[str, str]
) -> tuple[subprocess.Popen, int]:
    """Start a streaming function's web app as the adapter does: its bootstrap runs the handler
    script from the task root with the function's environment. Returns the process and its port
    once it accepts connections (the adapter's TCP readiness check)."""
    environment = {
        **lambda_environment(function, sandbox, aws_endpoint),
        **extra_environment,
        "AIPLANE_LAYER_ROOT": str(sandbox.layer_root),
    }
    process = subprocess.Popen(
        ["/bin/bash", "-c", ADAPTER_BOOTSTRAP],
        cwd=sandbox.task_root,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    port = int(environment["AWS_LWA_PORT"])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{function.name} exited before it was ready:\n{process.stdout.read()[-4000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process, port
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"{function.name} did not listen on {port} within 60 s")


def answer_behind_adapter(
    function: PackagedFunction,
    sandbox: Sandbox,
    aws_endpoint: str,
    event: dict[str, Any],
    extra_environment: dict[str, str],
) -> dict[str, Any]:
    """A streaming function's answer to an API Gateway event, as the adapter would give it: the
    event becomes an HTTP request to the app (base path removed, request context in its header)."""
    import httpx

    process, port = start_behind_adapter(function, sandbox, aws_endpoint, extra_environment)
    try:
        family = function.name.split("_", 1)[0]
        path = re.sub(f"^{re.escape(base_path(family))}(?=/)", "", event["path"])
        headers = {**(event.get("headers") or {}), "x-amzn-request-context": json.dumps(event["requestContext"])}
        response = httpx.request(
            event["httpMethod"],
            f"http://127.0.0.1:{port}{path}",
            headers=headers,
            params=event.get("queryStringParameters") or None,
            content=event.get("body") or None,
            timeout=function.timeout_s,
        )
        return {"statusCode": response.status_code, "headers": dict(response.headers), "body": response.text}
    finally:
        process.terminate()
        process.wait(timeout=10)
