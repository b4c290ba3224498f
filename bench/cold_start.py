"""Cold import time of each function's handler module, in a fresh process, median of N runs,
next to the floor: a module that imports only fastapi, mangum and boto3.

Run: .venv/bin/python bench/cold_start.py [--runs 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO_ROOT / "shared")]

from aiplane_shared.routes import all_function_names  # noqa: E402

FLOOR = "import fastapi, mangum, boto3"
TIMER = "import time; t = time.perf_counter(); {statement}; print((time.perf_counter() - t) * 1000)"
# What a deployed function sees: tracing off unless enabled, no AWS endpoint needed to import.
ENVIRONMENT = {**os.environ, "POWERTOOLS_TRACE_DISABLED": "true", "AWS_DEFAULT_REGION": "us-east-1",
               "PYTHONDONTWRITEBYTECODE": "0"}


def time_import(statement: str) -> float:
    output = subprocess.run(
        [sys.executable, "-c", TIMER.format(statement=statement)],
        cwd=REPO_ROOT, env=ENVIRONMENT, capture_output=True, text=True, check=True,
    ).stdout
    return float(output.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    targets = {"floor (fastapi + mangum + boto3)": FLOOR}
    targets.update({name: f"import functions.{name}.handler" for name in (*all_function_names(), "authorizer")})
    samples: dict[str, list[float]] = {label: [] for label in targets}
    # Interleave the runs so that load from other processes spreads over every target alike.
    for _ in range(args.runs):
        for label, statement in targets.items():
            samples[label].append(time_import(statement))
    medians = {label: statistics.median(values) for label, values in samples.items()}
    floor = medians.pop("floor (fastapi + mangum + boto3)")
    print(f"cold import, median of {args.runs} fresh processes (ms)")
    print(f"{'floor (fastapi + mangum + boto3)':<40} {floor:8.1f}")
    for label, median in medians.items():
        print(f"{label:<40} {median:8.1f}   {median - floor:+8.1f} over floor")
    print(f"{'median over functions':<40} {statistics.median(medians.values()):8.1f}")


if __name__ == "__main__":
    main()
