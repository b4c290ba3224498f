"""A Lambda function's init runs with Python's cyclic garbage collector paused.

Importing a handler's packages allocates some 100,000 container objects that live as long as the
process, and almost none of them is garbage (about 400 in a whole init). The collector still
walks them over and over while they pile up: about an eighth of init (bench/cold_start.py). So
the function package pauses it first thing on Lambda (`pause_collector`, in functions/__init__),
and the last statement of every handler module ends init (`init_done`): what init made moves to
the collector's permanent generation, which later collections skip, and collection resumes for
what requests allocate. Elsewhere (tests, the local stack) nothing changes.

Standard library only: it runs before anything else is imported.
"""

from __future__ import annotations

import gc
import os

_paused = False


def on_lambda() -> bool:
    return bool(os.environ.get("AWS_LAMBDA_FUNCTION_NAME"))


def pause_collector() -> None:
    global _paused
    if on_lambda() and gc.isenabled():
        gc.disable()
        _paused = True


def init_done() -> None:
    global _paused
    if _paused:
        gc.freeze()
        gc.enable()
        _paused = False
