"""gpufarm pages cost a page: items of the gpufarm table each route reads, at each number of stored
items (issue 18).

    python -m bench.gpufarm_pages [--sizes 100,10000]

At each size it seeds that many of each kind of history (other users' ended and running contracts
of the same offer, the caller's own ended ones, unserved models, agents that stopped heartbeating,
payments) plus a fiftieth as many live agents of other users, then counts the items each request
reads (a botocore hook: ScannedCount of Query/Scan, items of GetItem/BatchGetItem). Flat columns
are the point; moto is far slower than DynamoDB, so no times are printed.
"""

from __future__ import annotations

import argparse
import os

# moto Queries scan its whole table: at 10,000 items a request outlasts the 25 s budget, and a
# 504'd request's reads would spill into the next count.
os.environ.setdefault("AIPLANE_REQUEST_BUDGET_S", "600")

from aiplane_local.stack import start_local_stack


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="100,10000", help="items of each kind of history")
    args = parser.parse_args()
    stack = start_local_stack(start_dispatchers=False)
    try:
        run([int(size) for size in args.sizes.split(",")], stack)
    finally:
        stack.stop()


def seed_transactions(user_id: str, count: int) -> None:
    """Payments as `billing.create_payment` keys them (a random everyone-shard), batch-written."""
    import uuid

    from aiplane.clock import now_iso
    from aiplane.commerce.records import ALL_TRANSACTIONS, TransactionRecord, billing_key, everyone_shard

    with TransactionRecord.batch_write() as batch:
        for _ in range(count):
            created, transaction_id = now_iso(), f"txn_{uuid.uuid4().hex}"
            batch.save(
                TransactionRecord(
                    billing_key(user_id),
                    f"TXN#{created}#{transaction_id}",
                    gsi1pk=everyone_shard(ALL_TRANSACTIONS),
                    gsi1sk=f"{created}#{transaction_id}",
                    transaction_id=transaction_id,
                    user_id=user_id,
                    amount_cents=100,
                    currency="USD",
                    status="succeeded",
                    provider="invoice",
                    created_at=created,
                )
            )


def run(sizes: list[int], stack) -> None:
    # Imported after the stack is up: the models bind to the embedded AWS endpoint.
    from fastapi.testclient import TestClient

    from aiplane.commerce import billing
    from aiplane.gpufarm import contract_states
    from aiplane.identity.api_keys import issue_api_key
    from aiplane.identity.users import create_user
    from aiplane_shared.resources import ADMIN_API_KEY_SECRET
    from functions.family_app import build_family_app
    from tests.integration.gpufarm.pages import counting_reads, seed_agents, seed_contracts, seed_models

    gpufarm = TestClient(build_family_app("gpufarm"))
    admin = {"Authorization": f"Bearer {stack.bootstrap[ADMIN_API_KEY_SECRET.name]}"}

    def user(name: str) -> tuple[str, dict[str, str]]:
        record = create_user(f"{name}@bench.example", "correct horse battery 9", families=["gpufarm"])
        return record.user_id, {"Authorization": f"Bearer {issue_api_key(record.user_id, name).api_key}"}

    me, mine = user("caller")
    someone, _ = user("someone")
    billing.create_payment(me, billing.validate_payment(10, "USD", "invoice", None), None)
    seed_agents(me, 2, live=True)

    def reads(method: str, path: str, headers: dict[str, str] | None = None, **options) -> int:
        with counting_reads() as counter:
            gpufarm.request(method, path, headers=headers, **options)
        return counter.items

    def delete(headers: dict[str, str]) -> int:
        seed_contracts(me, 1, status=contract_states.PROVISIONING)
        return reads("DELETE", "/api/v1/gpu/instances/aws/g5.xlarge", headers)

    routes = {
        "DELETE /gpu/instances/aws/{offer}": lambda: delete(mine),
        "  (an admin)": lambda: delete(admin),
        "GET /stats": lambda: reads("GET", "/stats"),
        "GET /metrics": lambda: reads("GET", "/metrics"),
        "POST /gpu/proxy": lambda: reads("POST", "/api/v1/gpu/proxy", mine, json={"path": "/v1/x", "payload": {}}),
        "GET /loadbalancer/loads": lambda: reads("GET", "/api/v1/loadbalancer/loads", mine),
        "  (an admin, limit=50)": lambda: reads("GET", "/api/v1/loadbalancer/loads", admin, params={"limit": 50}),
        "GET /user/export (gpu_usage)": lambda: reads("GET", "/api/v1/user/export", mine),
        "GET /models (an admin, limit=50)": lambda: reads("GET", "/api/v1/models", admin, params={"limit": 50}),
        "GET /billing/transactions (admin, 50)": lambda: reads(
            "GET", "/api/v1/billing/transactions", admin, params={"limit": 50}
        ),
    }
    for route in routes.values():
        route()  # warm
    results: dict[int, dict[str, int]] = {}
    seeded = 0
    for size in sizes:
        grow = size - seeded
        seed_contracts(someone, grow)
        seed_contracts(someone, grow, status=contract_states.RUNNING)
        seed_contracts(me, grow)
        seed_models(someone, grow)
        seed_agents(someone, grow, live=False)
        seed_agents(someone, max(grow // 50, 1), live=True)
        seed_transactions(someone, grow)
        seeded = size
        results[size] = {name: route() for name, route in routes.items()}
    print("items read per request (gpufarm table; DynamoDB items scanned or returned)")
    print(f"{'route':<40}" + "".join(f"{size:>10}" for size in sizes))
    for name in routes:
        print(f"{name:<40}" + "".join(f"{results[size][name]:>10}" for size in sizes))
    print("  (the export reads the caller's own contracts, which grow with the caller's history; nobody else's)")


if __name__ == "__main__":
    main()
