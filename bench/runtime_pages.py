"""Runtime pages cost a page: DynamoDB items read per request (a botocore hook on the models'
clients, `aiplane_local.reads`) by each listing of issue 18, at each number of items in `--sizes`.

    python -m bench.runtime_pages [--sizes 100,10000]

Each route's domain call is what its router runs, as an admin. Items are seeded by batch writes
in the shape the writes leave them. The numbers should not grow with the size.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from aiplane_local.stack import start_local_stack


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="100,10000", help="item counts per route")
    args = parser.parse_args()
    stack = start_local_stack(start_dispatchers=False)
    try:
        run([int(size) for size in args.sizes.split(",")])
    finally:
        stack.stop()


def run(sizes: list[int]) -> None:
    # Imported after the stack is up: the models bind to the embedded AWS endpoint.
    from aiplane.activity import views
    from aiplane.activity.models import AlertRecord
    from aiplane.clock import rfc3339
    from aiplane.events import functions, raw
    from aiplane.events.models import RawEventRecord, TriggerRecord
    from aiplane.files import tree
    from aiplane.files.models import FileNodeRecord
    from aiplane.identity import access
    from aiplane.identity.models import AccessEntryRecord, AuthEventRecord
    from aiplane.identity.principal import Principal
    from aiplane_local.reads import counting_reads

    admin = Principal(id="bench-admin", kind="admin", credential="api_key")
    folder = tree.create_folder("bench", None, admin)
    elsewhere = tree.create_folder("elsewhere", None, admin)
    function, identity = "bench-function", "bench-user"
    since = rfc3339(datetime.now(UTC) - timedelta(hours=1))
    until = rfc3339(datetime.now(UTC) + timedelta(hours=1))
    routes: dict[str, tuple[tuple[type, ...], Callable[[], object]]] = {
        "GET /files?limit=100": ((FileNodeRecord,), lambda: tree.list_nodes(None, admin, limit=100)),
        "GET /files?path=/bench": ((FileNodeRecord,), lambda: tree.list_nodes("/bench", admin, limit=100)),
        "GET /event-triggers/function/{name}": (
            (TriggerRecord,),
            lambda: functions.triggers_for_function(function, 100, None, admin),
        ),
        "GET /activity/alerts": ((AlertRecord, AuthEventRecord), lambda: views.alerts(None)),
        "GET /access-control?identity=&from=": (
            (AccessEntryRecord,),
            lambda: access.list_entries(identity=identity, after=since, limit=100),
        ),
        "GET /raw-events": ((RawEventRecord,), lambda: raw.list_raw_events(since, until, 100)),
    }
    seeded = 0
    results: dict[int, dict[str, int]] = {}
    for size in sizes:
        seed(size - seeded, folder.node_id, elsewhere.node_id, function, identity)
        seeded = size
        results[size] = {}
        for route, (models, call) in routes.items():
            with counting_reads(*models) as counter:
                call()
            results[size][route] = counter.items
    print("items read per request (DynamoDB items scanned or returned), page size 100 (alerts 99)")
    print(f"{'route':<40}" + "".join(f"{size:>10}" for size in sizes))
    for route in routes:
        print(f"{route:<40}" + "".join(f"{results[size][route]:>10}" for size in sizes))


def seed(count: int, folder_id: str, elsewhere_id: str, function: str, identity: str) -> None:
    """`count` more items for each route: files (half in /bench), triggers (5 of them the bench
    function's), auth events (a tenth failures), access entries (half the bench user's), raw events."""
    from aiplane.identity.audit import FAILURE, SUCCESS
    from aiplane_local import seeding

    seeding.file_nodes(lambda index: folder_id if index % 2 else elsewhere_id, count)
    seeding.triggers(count, lambda index: function if index < 5 else f"other-{index % 50}", "bench")
    seeding.auth_events(count, lambda index: FAILURE if index % 10 == 0 else SUCCESS, "bench")
    seeding.access_entries(count, lambda index: identity if index % 2 else f"someone-{index % 100}")
    seeding.raw_events(count, "/bench")


if __name__ == "__main__":
    main()
