"""gpufarm stream routes.

Contract rows of this group:
- GET /ws

The WebSocket itself is served by API Gateway's WebSocket API (see docs/gpufarm-commerce.md);
an ordinary HTTP request reaching this route is told to upgrade.
"""

from fastapi import APIRouter

from aiplane.errors import UpgradeRequiredError

router = APIRouter()


@router.get("/ws")
def websocket_over_http() -> None:
    raise UpgradeRequiredError("GET /ws is a WebSocket endpoint: connect with Upgrade: websocket",
                               headers={"Upgrade": "websocket", "Connection": "Upgrade"})
