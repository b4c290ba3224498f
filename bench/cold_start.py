"""Cold start of each function from the built Lambda assets: init (importing the handler module)
plus the first response, in an isolated CPython 3.12 over the unpacked assets with the dev
template's environment (tracing on), against moto. Next to it the floor: a minimal FastAPI +
Mangum + boto3 handler answering one route that does one DynamoDB GetItem, from the same
dependencies layer, compiled the same way.

Each sample is a process forked from a bare interpreter (nothing imported), one at a time, and
every function's sample is taken right after one of the floor, so that load from other processes
weighs on both alike; the ratio is the median of those paired ratios. API functions get their
sample event as it arrives past the authorizer.

Run: .venv/bin/python bench/cold_start.py [--runs 3] [--only runtime_chats,gpufarm_health] [--tracing off]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [
    str(REPO_ROOT),
    str(REPO_ROOT / "layers" / "python"),
    str(REPO_ROOT / "shared"),
    str(REPO_ROOT / "local"),
]

from aiplane_local.stack import start_local_stack  # noqa: E402  (before any boto3 client)

FLOOR_HANDLER = """
import boto3
from fastapi import FastAPI
from mangum import Mangum

app = FastAPI()
dynamodb = boto3.client("dynamodb")


@app.get("/item")
def item():
    found = dynamodb.get_item(TableName="{table}", Key={{"pk": {{"S": "floor"}}, "sk": {{"S": "floor"}}}})
    return found.get("Item", {{}})


handler = Mangum(app, lifespan="off")
"""
FLOOR = "floor (fastapi + mangum + boto3, one GetItem)"


def authorized(name: str, event: dict) -> dict:
    from aiplane_shared.routes import access_for

    family = name.split("_", 1)[0]
    kind = {"appproxy": "appproxy_manager"}.get(family, "admin")
    if family == "appproxy" and access_for(family, event["httpMethod"], event["resource"]) == "worker":
        kind = "appproxy_worker"
    event["requestContext"]["authorizer"] = {"principalId": "p-1", "kind": kind, "credential": "api_key"}
    return event


def floor_sandbox(sandbox, table: str) -> Path:
    from aiplane_infra.assets import BUILD_DIR

    task_root = BUILD_DIR / "floor"
    shutil.rmtree(task_root, ignore_errors=True)
    task_root.mkdir(parents=True)
    (task_root / "floor_handler.py").write_text(FLOOR_HANDLER.format(table=table))
    subprocess.run(
        [sandbox.python, "-m", "compileall", "-q", "--invalidation-mode", "unchecked-hash", str(task_root)], check=True
    )
    return task_root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", help="comma-separated function names")
    parser.add_argument("--tracing", choices=("on", "off"), default="on", help="on: as deployed in dev and prod")
    args = parser.parse_args()

    stack = start_local_stack(start_dispatchers=False)
    try:
        run(stack, args)
    finally:
        stack.stop()


def run(stack, args) -> None:
    import boto3

    from aiplane_local import packaged
    from aiplane_shared.environments import get_environment
    from aiplane_shared.resources import IDENTITY_TABLE, physical_name
    from events.generate import EVENTS_DIR, api_gateway_event

    environment = get_environment("dev")
    stack.provision(environment.name)
    sandbox = packaged.build_sandbox()
    functions, _ = packaged.template_functions("dev")
    names = args.only.split(",") if args.only else sorted(functions)
    # The Lambda Web Adapter starts those as a server (tests/packaged starts them so), not through a handler.
    adapted = [name for name in names if functions[name].behind_adapter]
    names = [name for name in names if name not in adapted]
    table = physical_name(environment.resource_prefix, IDENTITY_TABLE.name)
    boto3.client("dynamodb", region_name=environment.region).put_item(
        TableName=table, Item={"pk": {"S": "floor"}, "sk": {"S": "floor"}, "value": {"S": "x"}}
    )

    floor = floor_sandbox(sandbox, table)
    floor_function = replace(functions[names[0]], name="floor", handler="floor_handler.handler", environment={})
    floor_job = packaged.job_for(
        floor_function, sandbox, api_gateway_event("runtime", "GET", "/item") | {"path": "/item"}, stack.aws_endpoint
    ) | {"task_root": str(floor)}
    jobs = []
    for name in names:
        event = json.loads((EVENTS_DIR / f"{name}.json").read_text())
        if "httpMethod" in event and not name.endswith("_authorizer"):
            event = authorized(name, event)
        job = packaged.job_for(functions[name], sandbox, event, stack.aws_endpoint)
        if args.tracing == "off":
            job["environment"]["POWERTOOLS_TRACE_DISABLED"] = "true"
        jobs += [floor_job | {"name": f"floor-before-{name}"}, job]

    totals: dict[str, list[float]] = {}
    samples: dict[str, list[tuple[float, float]]] = {}
    for _ in range(args.runs):
        results = packaged.invoke_isolated(sandbox, jobs, parallel=1, preload=())["results"]
        for floor_result, result in zip(results[::2], results[1::2]):
            for sample in (floor_result, result):
                if "import_ms" not in sample:
                    raise SystemExit(f"{sample['name']} failed to import: {sample.get('traceback')}")
            floor_total = floor_result["import_ms"] + floor_result["invoke_ms"]
            samples.setdefault("floor", []).append((floor_result["import_ms"], floor_result["invoke_ms"]))
            samples.setdefault(result["name"], []).append((result["import_ms"], result.get("invoke_ms", 0.0)))
            totals.setdefault(result["name"], []).append(
                (result["import_ms"] + result.get("invoke_ms", 0.0)) / floor_total
            )

    def row(label: str, name: str, ratio: float) -> str:
        init = statistics.median(sample[0] for sample in samples[name])
        first = statistics.median(sample[1] for sample in samples[name])
        total = statistics.median(sum(sample) for sample in samples[name])
        return f"{label:<48} {init:8.1f} {first:8.1f} {total:8.1f} {ratio:8.2f}"

    print(
        f"cold start from the built assets, CPython 3.12 isolated, tracing {args.tracing}, median of {args.runs} runs (ms)"
    )
    print(f"{'function':<48} {'init':>8} {'first':>8} {'total':>8} {'x floor':>8}")
    print(row(FLOOR, "floor", 1.0))
    ratios = {name: statistics.median(totals[name]) for name in names}
    for name in names:
        print(row(name, name, ratios[name]))
    print(f"{'median over functions':<48} {'':>8} {'':>8} {'':>8} {statistics.median(ratios.values()):8.2f}")
    if adapted:
        print(f"not measured (started by the Lambda Web Adapter, no handler to import): {', '.join(adapted)}")


if __name__ == "__main__":
    main()
