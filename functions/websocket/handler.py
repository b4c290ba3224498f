"""A family's WebSocket API (`/ws`): `$connect`, `$disconnect` and `$default`, one deployment per
family (AIPLANE_FAMILY), as the authorizers. See aiplane.live."""

from __future__ import annotations

import os
from typing import Any

from aiplane.cold_start import init_done
from aiplane.live.websocket import handle


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return handle(os.environ["AIPLANE_FAMILY"], event)


init_done()  # the end of init (aiplane.cold_start)
