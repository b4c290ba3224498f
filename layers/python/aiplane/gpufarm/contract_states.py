"""GPU contract statuses and the reads of a contract, without its lifecycle.

Kept apart from `contracts` (which launches, ends and revokes agent credentials) so that code
that only reads contracts, such as load balancing and health, imports nothing that touches
credentials, EC2 or the provisioning queue, and its role is derived without them.
"""

from __future__ import annotations

from pynamodb.exceptions import DoesNotExist

from aiplane.gpufarm.records import GpuContractRecord

PROVISIONING, RUNNING, FAILED, TERMINATING, TERMINATED, STOPPED = (
    "provisioning", "running", "failed", "terminating", "terminated", "stopped",
)
FINISHED = (FAILED, TERMINATED)


def get_contract(contract_id: str) -> GpuContractRecord | None:
    try:
        return GpuContractRecord.get(GpuContractRecord.key(contract_id), "META")
    except DoesNotExist:
        return None


def count_with_status(status: str) -> int:
    return GpuContractRecord.by_status.count(GpuContractRecord.status_key(status))
