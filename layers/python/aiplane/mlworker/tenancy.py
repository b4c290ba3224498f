"""Whose work a worker may take: the one rule every path that hands out work applies.

A worker records its owner when it first registers: the caller that registered it (a GPU
contract's owner, through the contract's agent credential; the admin, for workers registered with
an admin key). It takes only its owner's tasks, gang ranks, reservations and Jupyter services,
unless an admin shared it (`shared`, which only an admin sets): then it takes everyone's. So one
user's task never runs on another user's rented host, on that renter's bill. A worker with no
recorded owner (registered before owners were recorded) takes nothing until it registers again.
"""

from __future__ import annotations


def admits(owner_id: str | None, shared: bool, user_id: str | None) -> bool:
    """Whether a worker owned by `owner_id` (shared or not) may run work owned by `user_id`."""
    return shared or (owner_id is not None and owner_id == user_id)
