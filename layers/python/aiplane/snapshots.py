"""What only some requests need is loaded on their first use, not at init, and loaded before a
SnapStart snapshot is taken, so that a restored function does not load it on a request.

Lambda's managed Python runtime provides `snapshot_restore_py`. Where it is absent (tests, the
local stack), the warm-ups are only collected (`WARMERS`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

WARMERS: list[Callable[[], Any]] = []


def warm_before_snapshot(warm: Callable[[], Any]) -> Callable[[], Any]:
    """Run `warm` before the snapshot is taken (usable as a decorator)."""
    WARMERS.append(warm)
    try:
        from snapshot_restore_py import register_before_snapshot
    except ImportError:  # not Lambda's managed runtime
        return warm
    register_before_snapshot(warm)
    return warm
