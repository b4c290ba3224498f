"""`python -m aiplane_local.invoke FUNCTION [EVENT_FILE]`: run one function's handler against the
embedded AWS with a sample event (default: events/FUNCTION.json) and print its response."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from aiplane_local.stack import start_local_stack

REPO_ROOT = Path(__file__).resolve().parents[2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("function", help="a folder under functions/, e.g. gpufarm_health, or <family>_authorizer")
    parser.add_argument("event", nargs="?", help="event JSON file (default: events/<function>.json)")
    args = parser.parse_args()
    event = json.loads(Path(args.event or REPO_ROOT / "events" / f"{args.function}.json").read_text())

    stack = start_local_stack(start_dispatchers=False)
    try:
        from aiplane_local.lambda_runtime import invoke

        function = args.function
        if function.endswith("_authorizer"):  # one authorizer code, deployed per family
            os.environ["AIPLANE_FAMILY"] = function.removesuffix("_authorizer")
            function = "authorizer"
        print(json.dumps(invoke(function, event), indent=2, default=str))
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
