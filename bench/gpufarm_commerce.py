"""gpufarm commerce on the embedded stack: spend-record latency, a concurrent race for one
spending window, and payment latency.

    python -m bench.gpufarm_commerce [--records 50] [--threads 16]

Prints numbers; asserts nothing beyond the invariant that no window passes its limit.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

from aiplane_local.stack import start_local_stack


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=50, help="sequential spend records and payments")
    parser.add_argument("--threads", type=int, default=16, help="concurrent spend records in the race")
    args = parser.parse_args()

    stack = start_local_stack(start_dispatchers=False)
    try:
        run(args.records, args.threads)
    finally:
        stack.stop()


def _summary(name: str, latencies_ms: list[float]) -> None:
    ordered = sorted(latencies_ms)
    p95 = ordered[max(0, round(0.95 * len(ordered)) - 1)]
    print(f"{name}: n={len(ordered)} median={statistics.median(ordered):.1f} ms p95={p95:.1f} ms")


def run(records: int, threads: int) -> None:
    # Imported after the stack is up: the models bind to the embedded AWS endpoint.
    from aiplane.commerce import billing, guardrails
    from aiplane.errors import PaymentRequiredError

    user_id = f"bench-{uuid.uuid4().hex[:8]}"
    latencies = []
    for _ in range(records):
        started = time.perf_counter()
        guardrails.record(user_id, 1)  # one cent: never reaches a limit
        latencies.append((time.perf_counter() - started) * 1000)
    _summary("spend record (3 windows, one transaction)", latencies)

    racer = f"bench-{uuid.uuid4().hex[:8]}"
    amount = guardrails.LIMITS_CENTS["hourly"] // 10 + 1  # 9 fit the hourly limit, the 10th does not

    def attempt(_: int) -> bool:
        try:
            guardrails.record(racer, amount)
        except PaymentRequiredError:
            return False
        return True

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        outcomes = list(pool.map(attempt, range(threads * 2)))
    elapsed = time.perf_counter() - started
    spent = guardrails.spending(racer)["hourly"].spent_cents
    assert spent <= guardrails.LIMITS_CENTS["hourly"], spent
    print(
        f"race: {len(outcomes)} records on {threads} threads in {elapsed:.2f} s, {outcomes.count(True)} accepted, "
        f"hourly window {spent}/{guardrails.LIMITS_CENTS['hourly']} cents"
    )

    latencies = []
    payment = billing.validate_payment(10, "USD", "stripe", "card")
    for number in range(records):
        started = time.perf_counter()
        billing.create_payment(user_id, payment, f"bench-{number}")
        latencies.append((time.perf_counter() - started) * 1000)
    _summary("payment with idempotency key", latencies)


if __name__ == "__main__":
    main()
