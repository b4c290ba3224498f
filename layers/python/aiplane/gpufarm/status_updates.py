"""gpufarm's live updates: what a subscribed `/ws` connection of the owner is pushed.

- `contract_status`: a GPU contract changed status (provisioning, running, failed, terminating, terminated);
- `instance_status`: a contract's GPU agent came `online` (registered) or went `offline` (deregistered);
- `model_status`: a served model changed status (loading, ready, failed).
"""

from __future__ import annotations

from aiplane.clock import now_iso
from aiplane.live.updates import publish
from aiplane_shared.families import GPUFARM


def contract_changed(record) -> None:
    publish(
        GPUFARM,
        record.user_id,
        [
            {
                "type": "contract_status",
                "contract_id": record.contract_id,
                "provider": record.provider,
                "instance_id": record.provider_instance_id,
                "offer_id": record.offer_id,
                "status": record.status,
                "timestamp": now_iso(),
            }
        ],
        subscribers_only=True,
    )


def instance_changed(user_id: str, instance_id: str, contract_id: str | None, status: str) -> None:
    publish(
        GPUFARM,
        user_id,
        [
            {
                "type": "instance_status",
                "instance_id": instance_id,
                "contract_id": contract_id,
                "status": status,
                "timestamp": now_iso(),
            }
        ],
        subscribers_only=True,
    )


def model_changed(record) -> None:
    publish(
        GPUFARM,
        record.owner_id,
        [
            {
                "type": "model_status",
                "model_id": record.model_id,
                "name": record.name,
                "status": record.status,
                "timestamp": now_iso(),
            }
        ],
        subscribers_only=True,
    )
