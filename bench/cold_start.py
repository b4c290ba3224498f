"""Cold start of each function from the built Lambda assets: init (importing the handler module)
plus the first response, in an isolated CPython 3.12 over the unpacked assets with the dev
template's environment (tracing on), against moto. Next to it the floor: a minimal FastAPI +
Mangum + boto3 handler answering one route that does one DynamoDB GetItem, from the same
dependencies layer, compiled the same way.

Each sample is a process forked from a bare interpreter (nothing imported), one at a time, and
every function's sample is taken right after one of the floor, so that load from other processes
weighs on both alike; the ratio is the median of those paired ratios. API functions get their
sample event as it arrives past the authorizer.

aiplane's functions run init with the garbage collector paused (aiplane.cold_start); the plain
floor does not. So the last column compares each function with the floor given the same pause:
what aiplane's own code weighs, like for like.

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
# The same floor with init's garbage collection paused as aiplane.cold_start pauses it.
PAUSED_FLOOR_HANDLER = "import gc\n\ngc.disable()\n" + FLOOR_HANDLER + "\ngc.freeze()\ngc.enable()\n"
FLOOR = "floor (fastapi + mangum + boto3, one GetItem)"
PAUSED_FLOOR = "floor, collector paused in init"


def authorized(name: str, event: dict) -> dict:
    from aiplane_shared.routes import access_for

    family = name.split("_", 1)[0]
    kind = {"appproxy": "appproxy_manager"}.get(family, "admin")
    if family == "appproxy" and access_for(family, event["httpMethod"], event["resource"]) == "worker":
        kind = "appproxy_worker"
    event["requestContext"]["authorizer"] = {"principalId": "p-1", "kind": kind, "credential": "api_key"}
    return event


def ratio(value: float | None) -> str:
    return f"{value:8.2f}" if value is not None else f"{'':8}"


def total(sample: dict[str, float], kind: str = "") -> float:
    """Init plus first response of one sample: wall time, or with kind "_cpu" the CPU time."""
    return sample[f"import{kind}_ms"] + sample.get(f"invoke{kind}_ms", 0.0)


def floor_sandbox(sandbox, table: str) -> Path:
    from aiplane_infra.assets import BUILD_DIR

    task_root = BUILD_DIR / "floor"
    shutil.rmtree(task_root, ignore_errors=True)
    task_root.mkdir(parents=True)
    (task_root / "floor_handler.py").write_text(FLOOR_HANDLER.format(table=table))
    (task_root / "paused_floor_handler.py").write_text(PAUSED_FLOOR_HANDLER.format(table=table))
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
    paused_floor_job = floor_job | {"handler": "paused_floor_handler.handler"}
    jobs = []
    for name in names:
        event = json.loads((EVENTS_DIR / f"{name}.json").read_text())
        if "httpMethod" in event and not name.endswith("_authorizer"):
            event = authorized(name, event)
        job = packaged.job_for(functions[name], sandbox, event, stack.aws_endpoint)
        if args.tracing == "off":
            job["environment"]["POWERTOOLS_TRACE_DISABLED"] = "true"
        jobs += [
            floor_job | {"name": f"floor-before-{name}"},
            paused_floor_job | {"name": f"paused-before-{name}"},
            job,
        ]

    wall_ratios: dict[str, list[float]] = {}
    cpu_ratios: dict[str, list[float]] = {}
    paused_ratios: dict[str, list[float]] = {}
    samples: dict[str, list[dict[str, float]]] = {}
    for _ in range(args.runs):
        results = packaged.invoke_isolated(sandbox, jobs, parallel=1, preload=())["results"]
        for floor_result, paused_result, result in zip(results[::3], results[1::3], results[2::3]):
            for sample in (floor_result, paused_result, result):
                if "import_ms" not in sample:
                    raise SystemExit(f"{sample['name']} failed to import: {sample.get('traceback')}")
            samples.setdefault("floor", []).append(floor_result)
            samples.setdefault("paused floor", []).append(paused_result)
            samples.setdefault(result["name"], []).append(result)
            wall_ratios.setdefault(result["name"], []).append(total(result) / total(floor_result))
            cpu_ratios.setdefault(result["name"], []).append(total(result, "_cpu") / total(floor_result, "_cpu"))
            paused_ratios.setdefault(result["name"], []).append(total(result, "_cpu") / total(paused_result, "_cpu"))

    def row(
        label: str, name: str, wall_ratio: float | None, cpu_ratio: float | None, paused_ratio: float | None
    ) -> str:
        def median(key: str) -> float:
            return statistics.median(sample.get(key, 0.0) for sample in samples[name])

        wall = statistics.median(total(sample) for sample in samples[name])
        cpu = statistics.median(total(sample, "_cpu") for sample in samples[name])
        return (
            f"{label:<48} {median('import_ms'):8.1f} {median('invoke_ms'):8.1f} {wall:8.1f} {ratio(wall_ratio)}"
            f" {cpu:8.1f} {ratio(cpu_ratio)} {ratio(paused_ratio)}"
        )

    print(
        f"cold start from the built assets, CPython 3.12 isolated, tracing {args.tracing}, median of {args.runs} runs (ms)"
    )
    print("wall: init, first response and their total; cpu: the process's CPU time for both (steady under load);")
    print("x paused: cpu against the floor with init's garbage collection paused as aiplane pauses it")
    print(
        f"{'function':<48} {'init':>8} {'first':>8} {'total':>8} {'x floor':>8} {'cpu':>8} {'x floor':>8}"
        f" {'x paused':>8}"
    )
    print(row(FLOOR, "floor", 1.0, 1.0, None))
    print(row(PAUSED_FLOOR, "paused floor", None, None, 1.0))
    wall = {name: statistics.median(wall_ratios[name]) for name in names}
    cpu = {name: statistics.median(cpu_ratios[name]) for name in names}
    paused = {name: statistics.median(paused_ratios[name]) for name in names}
    for name in names:
        print(row(name, name, wall[name], cpu[name], paused[name]))
    print(
        f"{'median over functions':<48} {'':>8} {'':>8} {'':>8} {statistics.median(wall.values()):8.2f}"
        f" {'':>8} {statistics.median(cpu.values()):8.2f} {statistics.median(paused.values()):8.2f}"
    )
    print(
        f"functions at or under 1.2x the floor: {sum(ratio <= 1.2 for ratio in wall.values())} of {len(names)} (wall),"
        f" {sum(ratio <= 1.2 for ratio in cpu.values())} of {len(names)} (cpu),"
        f" {sum(ratio <= 1.2 for ratio in paused.values())} of {len(names)} (cpu, paused floor)"
    )
    if adapted:
        print(f"not measured (started by the Lambda Web Adapter, no handler to import): {', '.join(adapted)}")


if __name__ == "__main__":
    main()
