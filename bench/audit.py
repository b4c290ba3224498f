"""Audit chain appends on the embedded stack: the write rate with concurrent writers, sharded
(the mlworker chain's shards) against one single chain (one head every append races on), and
the cost of a digest and of a verification.

    python -m bench.audit [--writers 8] [--events 400]

Prints numbers; asserts only that every chain verifies afterwards. moto serialises DynamoDB
writes in one process, so absolute rates are far below DynamoDB's; the comparison is the point:
with one head, concurrent writers mostly lose the conditional write and retry.
"""

from __future__ import annotations

import argparse
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

from aiplane import clock
from aiplane_local.stack import start_local_stack


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--writers", type=int, default=8, help="concurrent writers")
    parser.add_argument("--events", type=int, default=400, help="events appended per run")
    args = parser.parse_args()

    stack = start_local_stack(start_dispatchers=False)
    try:
        run(args.writers, args.events)
    finally:
        stack.stop()


def run(writer_count: int, event_count: int) -> None:
    # Imported after the stack is up: the models bind to the embedded AWS endpoint.
    from aiplane import audit_anchor, audit_chain
    from aiplane.errors import ConflictError
    from aiplane.mlworker import audit

    print(f"{writer_count} concurrent writers, {event_count} events per run")
    for shards in (audit.SHARDS, 1):
        chain = audit.CHAIN._replace(shards=shards, partition_prefix=f"BENCH{shards}#", digest_prefix=f"bench-{shards}")
        latencies: list[float] = []
        gave_up: list[int] = []

        def append(index: int, chain=chain, latencies=latencies, gave_up=gave_up) -> None:
            started = time.perf_counter()
            try:
                audit_chain.append(
                    chain,
                    lambda _sequence: audit.AuditEventRecord(
                        gsi1pk=f"BENCH{shards}",
                        gsi1sk=f"{index:012d}",
                        timestamp=clock.now_iso(),
                        event_type="file_access",
                        user_id=f"u{index % writer_count}",
                        resource=f"file/{index}",
                        action="bench",
                        success=True,
                        metadata={},
                    ),
                )
            except ConflictError:  # lost the head race APPEND_ATTEMPTS times
                gave_up.append(index)
                return
            latencies.append((time.perf_counter() - started) * 1000)

        started = time.perf_counter()
        with ThreadPoolExecutor(writer_count) as pool:
            list(pool.map(append, range(event_count)))
        elapsed = time.perf_counter() - started
        ordered = sorted(latencies)
        print(
            f"  {shards} shard(s): {len(ordered) / elapsed:7.1f} appends/s   append latency median "
            f"{statistics.median(ordered):6.1f} ms, p95 {ordered[int(len(ordered) * 0.95) - 1]:6.1f} ms, "
            f"{len(gave_up)} of {event_count} gave up (chain too busy)"
        )

        anchor_started = time.perf_counter()
        audit_anchor.anchor(chain)
        anchor_ms = (time.perf_counter() - anchor_started) * 1000
        verify_started = time.perf_counter()
        checked = audit_anchor.verify(chain)
        verify_ms = (time.perf_counter() - verify_started) * 1000
        assert checked.valid, checked.problem
        print(f"             digest of {event_count} events {anchor_ms:6.1f} ms, verify {verify_ms:6.1f} ms")


if __name__ == "__main__":
    main()
