"""gpufarm stream routes.

Contract rows of this group:
- GET /ws

The WebSocket itself is served by the family's API Gateway WebSocket API (functions/websocket,
aiplane.live; docs/gpufarm-commerce.md) and by the local server under `make run`; an ordinary HTTP
request reaching this route is told to upgrade.
"""

from fastapi import APIRouter

from aiplane.errors import UpgradeRequiredError

router = APIRouter()


@router.get("/ws")
def websocket_over_http() -> None:
    raise UpgradeRequiredError(
        "GET /ws is a WebSocket endpoint: connect with Upgrade: websocket",
        headers={"Upgrade": "websocket", "Connection": "Upgrade"},
    )
