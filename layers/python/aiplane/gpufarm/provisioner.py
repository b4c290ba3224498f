"""The provisioner worker's logic: launch contracts, follow EC2 state changes, sweep leases.

EC2 launches fail over SkyPilot-style: a zone-level capacity error moves to the next zone that
offers the type, a type-level error (quota, unknown type) to the next acceptable instance type;
spot contracts may fall back to On-Demand. Every attempt is recorded on the contract; when all
fail the contract is `failed` with the reasons.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aws_lambda_powertools.utilities import parameters
from botocore.exceptions import ClientError
from pynamodb.exceptions import UpdateError

from aiplane.data.aws import client
from aiplane.gpufarm import agent_credentials, catalog, contracts, loadbalancer, user_data
from aiplane.gpufarm.catalog import AWS
from aiplane.gpufarm.contracts import FAILED, FINISHED, ON_DEMAND, PROVISIONING, RUNNING, SPOT, STOPPED, TERMINATED, TERMINATING
from aiplane.gpufarm.marketplaces import MARKETPLACES, MarketplaceError
from aiplane.gpufarm.records import GpuContractRecord
from aiplane.identity.api_keys import hash_key, revoke_api_key
from aiplane.observability import logger
from aiplane.settings import get_settings
from aiplane_shared.families import GPUFARM
from aiplane_shared.resources import ARTIFACT_BUCKET, GPU_LAUNCH_TEMPLATE, api_url_parameter

# No capacity for the type in this zone: another zone may have it.
ZONE_ERRORS = frozenset({
    "InsufficientInstanceCapacity", "InsufficientCapacity", "Unsupported", "InsufficientHostCapacity",
    "SpotMaxPriceTooLow", "InsufficientFreeAddressesInSubnet",
})
# The type cannot launch anywhere for us (quota, unknown type): try the next type.
TYPE_ERRORS = frozenset({
    "InstanceLimitExceeded", "VcpuLimitExceeded", "MaxSpotInstanceCountExceeded", "InvalidParameterValue",
    "InvalidInstanceType", "InsufficientReservedInstanceCapacity",
})
API_URL_CACHE_S = 300

EC2_STATE_DETAIL_TYPE = "EC2 Instance State-change Notification"
_STATUS_OF_EC2_STATE = {
    "pending": PROVISIONING, "running": RUNNING, "shutting-down": TERMINATING, "stopping": TERMINATING,
    "stopped": STOPPED, "terminated": TERMINATED,
}
_STATUS_ORDER = {PROVISIONING: 0, RUNNING: 1, STOPPED: 2, TERMINATING: 3, TERMINATED: 4, FAILED: 4}


class PoisonMessage(ValueError):
    """A message the provisioner cannot understand: it goes to the DLQ after the retries."""


def handle_message(message: Any) -> None:
    if not isinstance(message, dict):
        raise PoisonMessage(f"message is not an object: {message!r}")
    if message.get("kind") == "provision" and isinstance(message.get("contract_id"), str):
        provision(message["contract_id"])
    elif message.get("source") == "aws.ec2" and message.get("detail-type") == EC2_STATE_DETAIL_TYPE:
        detail = message.get("detail") or {}
        on_ec2_state_change(detail.get("instance-id", ""), detail.get("state", ""))
    elif message.get("source") == "aws.events" and message.get("detail-type") == "Scheduled Event":
        logger.info("lease sweep", extra=contracts.sweep_leases())
    else:
        raise PoisonMessage(f"unknown provisioning message: {str(message)[:200]}")


def provision(contract_id: str) -> None:
    record = contracts.get_contract(contract_id)
    if record is None or record.status != PROVISIONING or record.provider_instance_id:
        return  # cancelled, or a redelivery of a contract already launched
    if record.provider == AWS:
        _launch_on_ec2(record)
    else:
        _rent_from_marketplace(record)


def _ends_at(record: GpuContractRecord) -> Any:
    return contracts.now() + timedelta(hours=record.duration_hours) if record.duration_hours else None


def _rent_from_marketplace(record: GpuContractRecord) -> None:
    try:
        rental_id = MARKETPLACES[record.provider].rent(record.offer_id, record.duration_hours)
    except MarketplaceError as error:
        contracts.set_status(record, FAILED, GpuContractRecord.failure_reasons.set([str(error)]),
                             GpuContractRecord.attempts.set([{"offer": record.offer_id, "error": str(error)}]))
        return
    _record_launch(record, rental_id, RUNNING, [{"offer": record.offer_id, "result": "rented"}], {}, None)


def _ordered_zones(zones: list[str], preferred: str | None) -> list[str]:
    return sorted(zones, key=lambda zone: (zone != preferred, zone))


def _launch_on_ec2(record: GpuContractRecord) -> None:
    requested_type, preferred_zone = catalog.parse_ec2_offer_id(record.offer_id)
    instance_types = catalog.acceptable_instance_types(requested_type)
    zones_of = catalog.ec2_zones_offering(instance_types)
    markets = [SPOT, ON_DEMAND] if record.market == SPOT and record.on_demand_fallback else [record.market]
    agent_key = agent_credentials.issue(record.user_id, record.contract_id)
    script = user_data.build(
        user_data.agent_environment(_gpufarm_api_url(), agent_credentials.parameter_name(record.contract_id)),
        get_settings().bucket(ARTIFACT_BUCKET.name), get_settings().region,
    )
    attempts: list[dict[str, str]] = []
    launched = False
    try:
        for market in markets:
            for instance_type in instance_types:
                for zone in _ordered_zones(zones_of.get(instance_type, []), preferred_zone):
                    attempt = {"market": market, "instance_type": instance_type, "zone": zone}
                    try:
                        instance = _run_instance(record, instance_type, zone, market, script)
                    except ClientError as error:
                        code = error.response.get("Error", {}).get("Code", "")
                        attempts.append({**attempt, "error": code, "message": str(error)[:300]})
                        if code in ZONE_ERRORS:
                            continue
                        if code in TYPE_ERRORS:
                            break
                        raise  # throttling, auth, outage: let the queue retry the whole contract
                    attempts.append({**attempt, "result": "launched", "ec2_instance_id": instance["InstanceId"]})
                    agent_credentials.publish(record.contract_id, agent_key.api_key, instance["InstanceId"])
                    launched = True
                    _record_launch(record, instance["InstanceId"], PROVISIONING, attempts,
                                   {"instance_type": instance_type, "zone": zone, "market": market},
                                   hash_key(agent_key.api_key))
                    return
        reasons = sorted({f"{a['instance_type']} in {a['zone']} ({a['market']}): {a['error']}" for a in attempts})
        contracts.set_status(record, FAILED, GpuContractRecord.attempts.set(attempts),
                             GpuContractRecord.failure_reasons.set(reasons or ["no zone offers an acceptable instance type"]))
    finally:
        if not launched:
            revoke_api_key(hash_key(agent_key.api_key))


def _gpufarm_api_url() -> str:
    """Where agents register: the gpufarm API stack publishes its URL in SSM."""
    name = api_url_parameter(get_settings().resource_prefix, GPUFARM)
    return parameters.get_parameter(name, max_age=API_URL_CACHE_S)


def _run_instance(record: GpuContractRecord, instance_type: str, zone: str, market: str, script: str) -> dict[str, Any]:
    tags = [
        {"Key": "Name", "Value": f"aiplane-gpu-{record.contract_id}"},
        {"Key": "aiplane:contract", "Value": record.contract_id},
        {"Key": "aiplane:environment", "Value": get_settings().environment},
    ]
    market_options = {"InstanceMarketOptions": {"MarketType": "spot"}} if market == SPOT else {}
    answer = client("ec2").run_instances(
        LaunchTemplate={"LaunchTemplateName": get_settings().resource(GPU_LAUNCH_TEMPLATE.name), "Version": "$Latest"},
        InstanceType=instance_type,
        Placement={"AvailabilityZone": zone},
        MinCount=1, MaxCount=1,
        UserData=script,  # boto3 base64-encodes it
        TagSpecifications=[{"ResourceType": "instance", "Tags": tags}, {"ResourceType": "volume", "Tags": tags}],
        **market_options,
    )
    return answer["Instances"][0]


def _record_launch(record: GpuContractRecord, provider_instance_id: str, status: str, attempts: list[dict[str, str]],
                   placement: dict[str, str], agent_key_hash: str | None) -> None:
    actions = [
        GpuContractRecord.provider_instance_id.set(provider_instance_id),
        GpuContractRecord.attempts.set(attempts),
    ]
    if record.duration_hours:
        actions.append(GpuContractRecord.ends_at.set(_ends_at(record)))
    if placement:
        actions += [GpuContractRecord.instance_type.set(placement["instance_type"]),
                    GpuContractRecord.zone.set(placement["zone"]), GpuContractRecord.market.set(placement["market"])]
    if agent_key_hash:
        actions.append(GpuContractRecord.agent_key_hash.set(agent_key_hash))
    try:
        # Only a contract still waiting may take the instance: a DELETE may have cancelled it meanwhile.
        contracts.set_status(record, status, *actions, condition=GpuContractRecord.status == PROVISIONING)
    except UpdateError:
        record.refresh()
        record.provider_instance_id = provider_instance_id
        record.agent_key_hash = agent_key_hash
        contracts.destroy(record)


def on_ec2_state_change(ec2_instance_id: str, state: str) -> None:
    status = _STATUS_OF_EC2_STATE.get(state)
    if status is None:
        raise PoisonMessage(f"unknown EC2 state {state!r}")
    record = contracts.contract_of_ec2_instance(ec2_instance_id)
    if record is None or record.status in FINISHED or record.provider_instance_id != ec2_instance_id:
        return  # not ours, or already final
    if _STATUS_ORDER[status] <= _STATUS_ORDER[record.status]:
        return  # events may arrive out of order: never move a contract backwards
    contracts.set_status(record, status)
    if status == TERMINATED:
        agent_credentials.revoke(record)
        loadbalancer.forget_agent(ec2_instance_id)  # in case the agent died before deregistering
