"""The provisioner worker's logic: launch contracts, follow EC2 state changes, sweep leases,
reconcile EC2 with the contracts.

EC2 launches fail over SkyPilot-style: a zone-level capacity error moves to the next zone that
offers the type, a type-level error (quota, unknown type) to the next acceptable instance type
(same GPU model and count, within the contract's price limit); spot contracts fall back to
On-Demand only when the request allowed it. Every attempt is recorded on the contract; when all
fail the contract is `failed` with the reasons.

Launches are idempotent: RunInstances carries a ClientToken derived from the contract id, and a
redelivered message first adopts an instance already tagged with its contract. The reconciliation
schedule terminates tagged instances that no contract tracks.
"""

from __future__ import annotations

import json
from datetime import timedelta
from functools import cache
from typing import Any

from aws_lambda_powertools.utilities import parameters
from botocore.exceptions import ClientError
from pynamodb.exceptions import UpdateError

from aiplane import clock
from aiplane.data.aws import client
from aiplane.gpufarm import agent_credentials, catalog, contracts, loadbalancer, user_data
from aiplane.gpufarm.catalog import AWS
from aiplane.gpufarm.contracts import (
    FAILED,
    FINISHED,
    ON_DEMAND,
    PROVISIONING,
    RUNNING,
    SPOT,
    STOPPED,
    TERMINATED,
    TERMINATING,
)
from aiplane.gpufarm.marketplaces import MARKETPLACES, MarketplaceError
from aiplane.gpufarm.records import GpuContractRecord
from aiplane.identity.api_keys import hash_key, revoke_api_key
from aiplane.identity.principal import agent_worker_id
from aiplane.observability import logger
from aiplane.settings import get_settings
from aiplane_shared.families import GPUFARM, MLWORKER
from aiplane_shared.resources import (
    GPU_LAUNCH_TEMPLATE,
    GPU_RECONCILE,
    PROVISIONING_QUEUE,
    agent_artifact_parameter,
    agent_network_parameter,
    api_url_parameter,
)

# No capacity for the type in this zone: another zone may have it.
NO_FLEET_SUBNET = "NoFleetSubnet"  # the fleet VPC has no subnet in that zone (_fleet_network)
ZONE_ERRORS = frozenset(
    {
        "InsufficientInstanceCapacity",
        "InsufficientCapacity",
        "Unsupported",
        "InsufficientHostCapacity",
        "SpotMaxPriceTooLow",
        "InsufficientFreeAddressesInSubnet",
        NO_FLEET_SUBNET,
    }
)
# The type cannot launch anywhere for us (quota, unknown type): try the next type.
TYPE_ERRORS = frozenset(
    {
        "InstanceLimitExceeded",
        "VcpuLimitExceeded",
        "MaxSpotInstanceCountExceeded",
        "InvalidParameterValue",
        "InvalidInstanceType",
        "InsufficientReservedInstanceCapacity",
    }
)
# Not allowed to launch at all: neither another zone nor another type can help.
UNAUTHORIZED_ERRORS = frozenset(
    {"UnauthorizedOperation", "AuthFailure", "OptInRequired", "Blocked", "PendingVerification"}
)
QUOTA_ERRORS = frozenset({"InstanceLimitExceeded", "VcpuLimitExceeded", "MaxSpotInstanceCountExceeded"})
PRICE_CAP = "PriceCap"  # a candidate skipped because it costs more than the contract's price limit
API_URL_CACHE_S = 300
CONTRACT_TAG = "aiplane:contract"
ENVIRONMENT_TAG = "aiplane:environment"
LIVE_EC2_STATES = ["pending", "running", "stopping", "stopped"]
# A contract still `provisioning` without an instance after every delivery of its message could
# have run (and its last visibility timeout) has lost its message: it is failed.
PROVISIONING_HORIZON = timedelta(
    seconds=PROVISIONING_QUEUE.visibility_timeout_s * (PROVISIONING_QUEUE.max_receive_count + 1)
)

EC2_STATE_DETAIL_TYPE = "EC2 Instance State-change Notification"
_STATUS_OF_EC2_STATE = {
    "pending": PROVISIONING,
    "running": RUNNING,
    "shutting-down": TERMINATING,
    "stopping": TERMINATING,
    "stopped": STOPPED,
    "terminated": TERMINATED,
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
        if _fired_by(message, GPU_RECONCILE.name):
            logger.info("GPU reconciliation", extra=reconcile())
        else:
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
    return clock.now() + timedelta(hours=record.duration_hours) if record.duration_hours else None


def _fired_by(message: dict[str, Any], schedule_name: str) -> bool:
    """A Scheduled Event names the rule that fired it in `resources`."""
    rule = f"rule/{get_settings().resource(schedule_name)}"
    return any(str(arn).endswith(rule) for arn in message.get("resources") or [])


def _rent_from_marketplace(record: GpuContractRecord) -> None:
    try:
        rental_id = MARKETPLACES[record.provider].rent(record.offer_id, record.duration_hours)
    except MarketplaceError as error:
        contracts.set_status(
            record,
            FAILED,
            GpuContractRecord.failure_reasons.set([f"unavailable: {error}"]),
            GpuContractRecord.attempts.set([{"offer": record.offer_id, "error": str(error)}]),
        )
        return
    _record_launch(
        record, rental_id, RUNNING, [{"offer": record.offer_id, "result": "rented"}], {}, None, record.price_limit
    )


def _ordered_zones(zones: list[str], preferred: str | None) -> list[str]:
    return sorted(zones, key=lambda zone: (zone != preferred, zone))


def failure_kind(code: str) -> str:
    if code in (PRICE_CAP, "SpotMaxPriceTooLow"):
        return "price cap"
    if code in QUOTA_ERRORS:
        return "quota"
    if code in UNAUTHORIZED_ERRORS:
        return "unauthorized"
    if code in ZONE_ERRORS or code == "InsufficientReservedInstanceCapacity":
        return "capacity"
    return "unavailable"


def _reason(attempt: dict[str, str]) -> str:
    return (
        f"{failure_kind(attempt['error'])}: {attempt['instance_type']} in {attempt['zone']} "
        f"({attempt['market']}): {attempt['error']}"
    )


class _AlreadyLaunched(Exception):
    """EC2 answered IdempotentParameterMismatch: the contract's token launched an instance already."""


def _launch_on_ec2(record: GpuContractRecord) -> None:
    agent_key = agent_credentials.issue(record.user_id, record.contract_id)
    launched = False
    try:
        # An earlier delivery may have launched the instance and not got to record it: adopt it.
        instance = _instance_tagged_with(record.contract_id)
        attempts: list[dict[str, str]] = list(record.attempts) if instance else []
        skipped: list[dict[str, str]] = []
        if instance is None:
            script = user_data.build(
                user_data.agent_environment(
                    _api_url(GPUFARM),
                    agent_credentials.parameter_name(record.contract_id),
                    mlworker_url=_api_url(MLWORKER),
                    worker_id=agent_worker_id(record.contract_id),
                ),
                _published(agent_artifact_parameter(get_settings().resource_prefix)),
                get_settings().region,
            )
            try:
                instance = _first_launch(record, script, attempts, skipped)
            except _AlreadyLaunched:  # a concurrent delivery launched it under the same token
                instance = _instance_tagged_with(record.contract_id)
                if instance is None:
                    raise
        if instance is not None:
            # Fresh or adopted, the instance reads this delivery's credential from its parameter.
            agent_credentials.publish(record.contract_id, agent_key.api_key, instance["InstanceId"])
            placement = _placement(instance)
            if not attempts or attempts[-1].get("ec2_instance_id") != instance["InstanceId"]:
                attempts.append({**placement, "result": "adopted", "ec2_instance_id": instance["InstanceId"]})
            launched = True
            _record_launch(
                record,
                instance["InstanceId"],
                PROVISIONING,
                attempts,
                placement,
                hash_key(agent_key.api_key),
                _hourly_price(placement, _limit(record)),
            )
            return
        reasons = sorted({_reason(attempt) for attempt in attempts + skipped})
        contracts.set_status(
            record,
            FAILED,
            GpuContractRecord.attempts.set(attempts),
            GpuContractRecord.failure_reasons.set(
                reasons or ["unavailable: no zone offers an acceptable instance type"]
            ),
        )
    finally:
        if not launched:
            revoke_api_key(hash_key(agent_key.api_key))


def _limit(record: GpuContractRecord) -> float:
    """The contract's price limit (USD an hour); contracts from before holds: the requested type's list price."""
    if record.price_limit is not None:
        return float(record.price_limit)
    requested_type, _ = catalog.parse_ec2_offer_id(record.offer_id)
    return catalog.ec2_gpu_types()[requested_type].on_demand_price or 0.0


def _first_launch(
    record: GpuContractRecord, script: str, attempts: list[dict[str, str]], skipped: list[dict[str, str]]
) -> dict[str, Any] | None:
    """Try the candidates in order (each attempt recorded); the launched instance, or None."""
    requested_type, preferred_zone = catalog.parse_ec2_offer_id(record.offer_id)
    gpu_types = catalog.ec2_gpu_types()
    limit = _limit(record)
    instance_types = catalog.acceptable_instance_types(requested_type)
    zones_of = catalog.ec2_zones_offering(instance_types)
    markets = [SPOT, ON_DEMAND] if record.market == SPOT and record.on_demand_fallback else [record.market]
    for market in markets:
        for instance_type in instance_types:
            list_price = gpu_types[instance_type].on_demand_price if instance_type in gpu_types else None
            if market == ON_DEMAND and (list_price is None or list_price > limit):
                skipped.append(
                    {
                        "market": market,
                        "instance_type": instance_type,
                        "zone": "any zone",
                        "error": PRICE_CAP,
                        "message": f"{list_price}/h is above the contract's limit of {limit}/h",
                    }
                )
                continue
            for zone in _ordered_zones(zones_of.get(instance_type, []), preferred_zone):
                attempt = {"market": market, "instance_type": instance_type, "zone": zone}
                try:
                    instance = _run_instance(record, instance_type, zone, market, script, limit)
                except ClientError as error:
                    code = error.response.get("Error", {}).get("Code", "")
                    if code == "IdempotentParameterMismatch":
                        raise _AlreadyLaunched from error
                    attempts.append({**attempt, "error": code, "message": str(error)[:300]})
                    if code in ZONE_ERRORS:
                        continue
                    if code in TYPE_ERRORS:
                        break
                    if code in UNAUTHORIZED_ERRORS:
                        return None
                    raise  # throttling, outage: let the queue retry the whole contract
                attempts.append({**attempt, "result": "launched", "ec2_instance_id": instance["InstanceId"]})
                return instance
    return None


def _hourly_price(placement: dict[str, str], limit: float) -> float:
    """What the instance is charged at: its list price On-Demand; spot, the zone's spot price
    (EC2 never charges more than the MaxPrice, the limit)."""
    instance_type = placement["instance_type"]
    if placement["market"] == ON_DEMAND:
        return catalog.ec2_gpu_types()[instance_type].on_demand_price or limit
    spot = catalog.ec2_spot_prices([instance_type]).get((instance_type, placement["zone"]))
    return min(limit, spot) if spot is not None else limit


def _instance_tagged_with(contract_id: str) -> dict[str, Any] | None:
    reservations = client("ec2").describe_instances(
        Filters=[
            {"Name": f"tag:{CONTRACT_TAG}", "Values": [contract_id]},
            {"Name": "instance-state-name", "Values": ["pending", "running"]},
        ]
    )["Reservations"]
    instances = [instance for reservation in reservations for instance in reservation["Instances"]]
    return min(instances, key=lambda instance: instance["LaunchTime"]) if instances else None


def _placement(instance: dict[str, Any]) -> dict[str, str]:
    return {
        "instance_type": instance["InstanceType"],
        "zone": instance["Placement"]["AvailabilityZone"],
        "market": SPOT if instance.get("InstanceLifecycle") == "spot" else ON_DEMAND,
    }


def _api_url(family: str) -> str:
    """Where agents register: each API stack publishes its URL in SSM."""
    return _published(api_url_parameter(get_settings().resource_prefix, family))


def _published(name: str) -> str:
    """A value a stack publishes in SSM (API URLs, the agent artifact's S3 URI)."""
    return parameters.get_parameter(name, max_age=API_URL_CACHE_S)


def client_token(contract_id: str) -> str:
    """RunInstances' idempotency token: one per contract, so a redelivered or concurrent message
    gets the instance back instead of a second one (EC2 allows 64 ASCII characters)."""
    return contract_id[:64]


def _run_instance(
    record: GpuContractRecord, instance_type: str, zone: str, market: str, script: str, limit: float
) -> dict[str, Any]:
    tags = [
        {"Key": "Name", "Value": f"aiplane-gpu-{record.contract_id}"},
        {"Key": CONTRACT_TAG, "Value": record.contract_id},
        {"Key": ENVIRONMENT_TAG, "Value": get_settings().environment},
    ]
    market_options = (
        {"InstanceMarketOptions": {"MarketType": "spot", "SpotOptions": {"MaxPrice": f"{limit:.4f}"}}}
        if market == SPOT
        else {}
    )
    answer = client("ec2").run_instances(
        **_fleet_network(zone),
        LaunchTemplate={"LaunchTemplateName": get_settings().resource(GPU_LAUNCH_TEMPLATE.name), "Version": "$Latest"},
        InstanceType=instance_type,
        Placement={"AvailabilityZone": zone},
        MinCount=1,
        MaxCount=1,
        ClientToken=client_token(record.contract_id),
        UserData=script,  # boto3 base64-encodes it
        TagSpecifications=[{"ResourceType": "instance", "Tags": tags}, {"ResourceType": "volume", "Tags": tags}],
        **market_options,
    )
    return answer["Instances"][0]


def _fleet_network(zone: str) -> dict[str, Any]:
    """The fleet VPC's agent subnet in that zone and the agents' security group, which admits only
    the functions that call agents (infra/cdk FleetNetwork). None published (the local stack):
    EC2's default network."""
    try:
        network = json.loads(_published(agent_network_parameter(get_settings().resource_prefix)))
    except parameters.exceptions.GetParameterError:
        return {}
    subnet = next((entry["subnet"] for entry in network["subnets"] if entry["zone"] == zone), None)
    if subnet is None:  # as EC2 answers a zone it cannot serve: the next zone is tried
        raise ClientError(
            {"Error": {"Code": NO_FLEET_SUBNET, "Message": f"the GPU fleet VPC has no subnet in {zone}"}},
            "RunInstances",
        )
    return {"SubnetId": subnet, "SecurityGroupIds": [network["security_group"]]}


def _record_launch(
    record: GpuContractRecord,
    provider_instance_id: str,
    status: str,
    attempts: list[dict[str, str]],
    placement: dict[str, str],
    agent_key_hash: str | None,
    price_per_hour: float | None,
) -> None:
    actions = [
        GpuContractRecord.provider_instance_id.set(provider_instance_id),
        GpuContractRecord.attempts.set(attempts),
        GpuContractRecord.launched_at.set(clock.now()),
    ]
    if price_per_hour is not None:
        actions.append(GpuContractRecord.price_per_hour.set(price_per_hour))
    if record.duration_hours:
        actions.append(GpuContractRecord.ends_at.set(_ends_at(record)))
    if placement:
        actions += [
            GpuContractRecord.instance_type.set(placement["instance_type"]),
            GpuContractRecord.zone.set(placement["zone"]),
            GpuContractRecord.market.set(placement["market"]),
        ]
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


def give_up(message: Any, error: Exception) -> None:
    """The message's last delivery failed (next stop: the DLQ): a contract it was launching fails
    visibly, and its hold is given back."""
    if not (
        isinstance(message, dict) and message.get("kind") == "provision" and isinstance(message.get("contract_id"), str)
    ):
        return
    record = contracts.get_contract(message["contract_id"])
    if record is None:
        return
    reason = f"retries exhausted: {type(error).__name__}: {str(error)[:200]}"
    try:
        contracts.fail_unlaunched(record, reason)
    except UpdateError:
        return  # launched or ended meanwhile: nothing to fail
    logger.warning(
        "GPU contract failed after its last delivery", extra={"contract_id": record.contract_id, "reason": reason}
    )


@cache
def max_receive_count(queue_arn: str) -> int:
    """How often the queue delivers a message before moving it to its DLQ (its redrive policy)."""
    _, _, _, region, account, name = queue_arn.split(":", 5)
    sqs = client("sqs")
    url = sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
    policy = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["RedrivePolicy"])["Attributes"].get("RedrivePolicy")
    return int(json.loads(policy)["maxReceiveCount"]) if policy else PROVISIONING_QUEUE.max_receive_count


def reconcile() -> dict[str, int]:
    """Terminate this environment's tagged instances that no live contract tracks (each one
    logged), and fail contracts whose provisioning message was lost."""
    ec2 = client("ec2")
    untracked: list[tuple[str, str]] = []
    pages = ec2.get_paginator("describe_instances").paginate(
        Filters=[
            {"Name": "tag-key", "Values": [CONTRACT_TAG]},
            {"Name": f"tag:{ENVIRONMENT_TAG}", "Values": [get_settings().environment]},
            {"Name": "instance-state-name", "Values": LIVE_EC2_STATES},
        ]
    )
    for page in pages:
        for reservation in page["Reservations"]:
            for instance in reservation["Instances"]:
                contract_id = next(tag["Value"] for tag in instance.get("Tags", []) if tag["Key"] == CONTRACT_TAG)
                if not _tracks(contracts.get_contract(contract_id), instance["InstanceId"]):
                    untracked.append((instance["InstanceId"], contract_id))
    for instance_id, contract_id in untracked:
        logger.warning(
            "terminating a GPU instance no contract tracks",
            extra={"instance_id": instance_id, "contract_id": contract_id},
        )
        ec2.terminate_instances(InstanceIds=[instance_id])
    return {"terminated": len(untracked), "failed": _fail_lost_contracts(), "finished": _finish_terminated_contracts()}


def _tracks(record: GpuContractRecord | None, instance_id: str) -> bool:
    if record is None or record.status in FINISHED:
        return False
    # A contract still provisioning without an instance adopts a tagged one on its redelivery.
    return record.provider_instance_id == instance_id or (
        record.status == PROVISIONING and record.provider_instance_id is None
    )


def _fail_lost_contracts() -> int:
    cutoff = clock.now() - PROVISIONING_HORIZON
    failed = 0
    for record in GpuContractRecord.by_status.query(
        GpuContractRecord.status_key(PROVISIONING),
        filter_condition=(GpuContractRecord.created_at < cutoff)
        & GpuContractRecord.provider_instance_id.does_not_exist(),
    ):
        give_up({"kind": "provision", "contract_id": record.contract_id}, TimeoutError("provisioning never completed"))
        failed += 1
    return failed


def _finish_terminated_contracts() -> int:
    """Contracts `terminating` whose instance EC2 reports terminated: finished (and settled) as
    their lost state-change event would have."""
    waiting = {
        record.provider_instance_id: record
        for record in GpuContractRecord.by_status.query(GpuContractRecord.status_key(TERMINATING))
        if record.provider_instance_id
    }
    finished = 0
    ids = sorted(waiting)
    for start in range(0, len(ids), 100):
        reservations = client("ec2").describe_instances(
            Filters=[
                {"Name": "instance-id", "Values": ids[start : start + 100]},
                {"Name": "instance-state-name", "Values": ["terminated"]},
            ]
        )["Reservations"]
        for instance in (instance for reservation in reservations for instance in reservation["Instances"]):
            on_ec2_state_change(instance["InstanceId"], "terminated")
            finished += 1
    return finished
