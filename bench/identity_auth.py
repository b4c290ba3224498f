"""Cost of the identity checks against the embedded stack (moto): the per-request credential
check for each kind of credential, a password login, and one rate-limit slot.

    .venv/bin/python -m bench.identity_auth [rounds]

Absolute numbers are moto's (each DynamoDB call is a local HTTP round trip); the useful reading
is how many store calls each path makes relative to the others.
"""

from __future__ import annotations

import statistics
import sys
import time
import uuid
from collections.abc import Callable

from aiplane_local.stack import start_local_stack


def measure(label: str, action: Callable[[], object], rounds: int) -> None:
    action()  # warm caches (secrets, connections)
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        action()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    p95 = samples[min(len(samples) - 1, int(len(samples) * 0.95))]
    print(f"{label:<38} median {statistics.median(samples):7.2f} ms   p95 {p95:7.2f} ms   (n={rounds})")


def main(rounds: int) -> None:
    stack = start_local_stack(start_dispatchers=False)
    try:
        from aiplane.identity import counters
        from aiplane.identity.api_keys import issue_api_key
        from aiplane.identity.authenticate import Credentials, authenticate
        from aiplane.identity.sessions import issue_session, login
        from aiplane.identity.users import create_user

        email = f"bench-{uuid.uuid4().hex[:8]}@example.com"
        user = create_user(email, "correct-horse-42", families=["runtime"])
        key = issue_api_key(user.user_id, "bench").api_key
        token = issue_session(user).token
        admin = stack.bootstrap["admin-api-key"]

        measure("bootstrap admin key", lambda: authenticate("runtime", Credentials(api_key=admin)), rounds)
        measure("user API key (key + user lookups)", lambda: authenticate("runtime", Credentials(api_key=key)), rounds)
        measure(
            "user JWT (verify + user and session lookups)",
            lambda: authenticate("gpufarm", Credentials(bearer=token)),
            rounds,
        )
        measure(
            "rate-limit slot (one conditional ADD)",
            lambda: counters.take(f"bench#{uuid.uuid4()}", limit=10, window_s=60),
            rounds,
        )
        measure(
            "password login (argon2id + audit)",
            lambda: login(email, "correct-horse-42", family="runtime", source_ip=f"bench-{uuid.uuid4()}"),
            max(5, rounds // 10),
        )
    finally:
        stack.stop()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200)
