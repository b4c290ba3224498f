"""The DynamoDB items a piece of code reads, counted with botocore hooks on the models' clients
(the tests and benchmarks of "pages cost a page"): Query and Scan count ScannedCount, GetItem
its item, BatchGetItem the items returned. Only calls on the named models' tables count, so
authentication's reads (the identity table) stay out of a runtime table's count."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class ItemsRead:
    def __init__(self, tables: set[str]) -> None:
        self.tables = tables
        self.items = 0

    @staticmethod
    def note_table(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["aiplane_table"] = params.get("TableName") or next(iter(params.get("RequestItems") or {}), None)

    def __call__(self, parsed: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        if context.get("aiplane_table") not in self.tables:
            return
        if model.name in ("Query", "Scan"):
            self.items += int(parsed.get("ScannedCount", parsed.get("Count", 0)))
        elif model.name == "GetItem":
            self.items += 1 if parsed.get("Item") else 0
        elif model.name == "BatchGetItem":
            self.items += sum(len(items) for items in parsed.get("Responses", {}).values())


@contextmanager
def counting_reads(*models: Any, clients: tuple[Any, ...] = ()) -> Iterator[ItemsRead]:
    """Counts the reads on the tables of these PynamoDB models while the block runs, made through
    their client or the boto3 `clients` given."""
    counter = ItemsRead({model.Meta.table_name for model in models})
    clients = (*{model._get_connection().connection.client for model in models} | set(clients),)
    for client in clients:
        client.meta.events.register("before-parameter-build.dynamodb", ItemsRead.note_table)
        client.meta.events.register("after-call.dynamodb", counter)
    try:
        yield counter
    finally:
        for client in clients:
            client.meta.events.unregister("before-parameter-build.dynamodb", ItemsRead.note_table)
            client.meta.events.unregister("after-call.dynamodb", counter)
