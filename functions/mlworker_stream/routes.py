"""mlworker stream routes.

Contract rows of this group:
- GET /ws

The contract's /ws is a WebSocket, served by the family's API Gateway WebSocket API in the cloud
(functions/websocket, aiplane.live) and by the local server under `make run`; over plain HTTP this
route answers 426 Upgrade Required in the family's envelope (code BAD_REQUEST). Task updates are
also served as server-sent events: GET /v1/scheduler/status/stream and GET /v1/scheduler/jobs/{jobId}/stream.
"""

from fastapi import APIRouter

from aiplane.errors import BadRequestError

router = APIRouter()


class UpgradeRequiredError(BadRequestError):
    """A WebSocket handshake is needed; rendered as a BAD_REQUEST envelope with status 426."""

    @property
    def status(self) -> int:
        return 426


@router.get("/ws")
def websocket_over_http() -> None:
    raise UpgradeRequiredError(
        "/ws is a WebSocket endpoint: connect with a WebSocket client (task updates are also served as "
        "server-sent events at /v1/scheduler/status/stream and /v1/scheduler/jobs/{jobId}/stream)",
        headers={"Upgrade": "websocket", "Connection": "Upgrade"},
    )
