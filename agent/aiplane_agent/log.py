"""One JSON line per event on stderr (journald keeps it under systemd)."""

from __future__ import annotations

import json
import sys
import time
from typing import Any


def log(message: str, **fields: Any) -> None:
    print(
        json.dumps({"at": round(time.time(), 3), "message": message, **fields}, default=str),
        file=sys.stderr,
        flush=True,
    )
