"""GPU contracts: a request to run one instance of an offer, carried out by the provisioner.

The API validates everything first, holds the estimated cost (price limit × duration × count)
against the caller's credits, spending windows and caps in one transaction (`commerce.holds`),
then writes the contracts (`provisioning`) and enqueues them on the provisioning queue. Nothing
is enqueued for a request that fails validation or whose hold is refused. A contract's hold
settles against its actual runtime when it ends (`set_status` to a final status).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError
from pynamodb.exceptions import DoesNotExist, TransactWriteError, UpdateError
from pynamodb.transactions import TransactWrite

from aiplane.clock import now, rfc3339_seconds
from aiplane.commerce import holds
from aiplane.commerce.records import atomic_write, write_with_retries
from aiplane.commerce.windows import cost_cents
from aiplane.data import publish
from aiplane.data.aws import client
from aiplane.data.conditions import refused_by_condition
from aiplane.errors import BadGatewayError, NotFoundError, PaymentRequiredError, RateLimitedError, ValidationError
from aiplane.gpufarm import agent_credentials, catalog, status_updates
from aiplane.gpufarm.catalog import AWS
from aiplane.gpufarm.contract_states import (  # noqa: F401  (re-exported: the lifecycle's callers name them here)
    FAILED,
    FINISHED,
    LIVE,
    PROVISIONING,
    RUNNING,
    STOPPED,
    TERMINATED,
    TERMINATING,
    actual_cost_cents,
    get_contract,
    running_shard,
    set_index_keys,
)
from aiplane.gpufarm.marketplaces import MARKETPLACES, MarketplaceError
from aiplane.gpufarm.offers import Filters, Offer
from aiplane.gpufarm.records import GpuContractRecord, RunningCountRecord
from aiplane.identity.principal import Principal
from aiplane.observability import logger
from aiplane.settings import current_environment
from aiplane_shared.resources import PROVISIONING_QUEUE

SPOT, ON_DEMAND = "spot", "on-demand"
STATUS_WRITE_ATTEMPTS = 4  # a status write retries when the status changed under it


@dataclass(frozen=True)
class ContractConfig:
    duration_hours: float | None = None
    auto_renew: bool = False
    market: str = ON_DEMAND
    on_demand_fallback: bool = False  # a spot contract may run On-Demand only when the request says so
    max_price: float | None = None  # USD an hour; failover stays within it (default: the offer's price)

    def __post_init__(self) -> None:
        if self.duration_hours is not None and self.duration_hours <= 0:
            raise ValidationError("duration_hours must be positive", param="duration_hours")
        if self.market not in (SPOT, ON_DEMAND):
            raise ValidationError("market must be 'spot' or 'on-demand'", param="market")
        if self.max_price is not None and self.max_price <= 0:
            raise ValidationError("max_price must be positive", param="max_price")


def resolve_offer(provider: str, offer_id: str) -> Offer:
    """The catalog's offer, or NotFound. An aws offer may name just the instance type."""
    catalog.check_provider(provider, allow_all=False)
    if provider == AWS:
        instance_type, zone = catalog.parse_ec2_offer_id(offer_id)
        if instance_type not in catalog.ec2_gpu_types():
            raise NotFoundError(f"no GPU instance type {instance_type!r} in the aws catalog", param="instanceId")
        if zone and zone not in catalog.ec2_zones_offering([instance_type]).get(instance_type, []):
            raise NotFoundError(f"{instance_type} is not offered in {zone}", param="instanceId")
        found = catalog.ec2_offer(offer_id)
        if found is None:
            raise ValidationError(
                f"{instance_type} has no list price, so its cost cannot be authorised", param="instanceId"
            )
        return found
    try:
        found = catalog.find_offer(provider, offer_id)
    except MarketplaceError as error:
        raise BadGatewayError(str(error)) from error
    if found is None:
        raise NotFoundError(f"no offer {offer_id!r} at {provider}", param="instanceId")
    return found


def price_limit(offer: Offer, config: ContractConfig) -> float:
    """The most an hour of the contract may cost. EC2 may fail over to other types up to
    `max_price`; a marketplace rents exactly the offer, at its price."""
    spot_may_cost_less = offer.provider == AWS and config.market == SPOT
    if config.max_price is not None and offer.price_per_hour > config.max_price and not spot_may_cost_less:
        raise ValidationError(
            f"{offer.id} costs {offer.price_per_hour}/h, above max_price {config.max_price}", param="max_price"
        )
    if offer.provider == AWS and config.max_price is not None:
        return config.max_price
    return offer.price_per_hour


def _new_record(principal: Principal, offer: Offer, config: ContractConfig, duration_hours: float) -> GpuContractRecord:
    contract_id = f"contract_{uuid.uuid4().hex[:16]}"
    created = now()
    provider, offer_id = offer.provider, offer.id
    return set_index_keys(
        GpuContractRecord(
            GpuContractRecord.key(contract_id),
            contract_id=contract_id,
            user_id=principal.id,
            provider=provider,
            offer_id=offer_id,
            status=PROVISIONING,
            created_at=created,
            updated_at=created,
            duration_hours=duration_hours,
            auto_renew=config.auto_renew,
            market=config.market,
            on_demand_fallback=config.on_demand_fallback,
            price_limit=price_limit(offer, config),
            gpu_count=offer.gpu_count,
        )
    )


def create_contracts(principal: Principal, offers: list[Offer], config: ContractConfig) -> list[GpuContractRecord]:
    """Hold the cost of one contract per offer, write them and enqueue them all for the provisioner.
    A refused hold (402 credits or spending limit, 429 caps) writes and enqueues nothing."""
    duration = config.duration_hours or current_environment().gpu_limits.default_lease_hours
    records = [_new_record(principal, offer, config, duration) for offer in offers]
    hold_id = f"hold_{uuid.uuid4().hex[:16]}"
    for record in records:
        record.hold_ids, record.held_cents = [hold_id], cost_cents(record.price_limit, duration)
    holds.place(
        principal.id,
        hold_id,
        [holds.Share(r.contract_id, int(r.held_cents), int(r.gpu_count)) for r in records],
        count_against_caps=not principal.is_admin,
    )
    try:
        with GpuContractRecord.batch_write() as batch:  # fresh random ids: nothing to overwrite
            for record in records:
                batch.save(record)
        enqueue([{"kind": "provision", "contract_id": record.contract_id} for record in records])
    except Exception:
        _abandon(records, "could not be queued for provisioning")
        raise
    for record in records:
        status_updates.contract_changed(record)
    return records


def _abandon(records: list[GpuContractRecord], reason: str) -> None:
    """Contracts that may not run: failed where written (a worker skips them), holds given back."""
    for record in records:
        try:
            fail_unlaunched(record, reason)
        except UpdateError:
            # Never written (only the hold exists), or a worker took it first and settles it when it ends.
            if get_contract(record.contract_id) is None:
                holds.settle(record.hold_ids, record.contract_id, 0)


def fail_unlaunched(record: GpuContractRecord, reason: str) -> None:
    """Fail a contract no worker launched (still provisioning, no instance); `UpdateError` when one did."""
    set_status(
        record,
        FAILED,
        GpuContractRecord.failure_reasons.set([reason]),
        condition=(GpuContractRecord.status == PROVISIONING) & GpuContractRecord.provider_instance_id.does_not_exist(),
    )


def enqueue(messages: list[dict[str, Any]]) -> None:
    publish.send_messages(PROVISIONING_QUEUE, messages)


def pick_offers(provider: str, count: int, filters: Filters) -> tuple[list[Offer], list[dict[str, str]]]:
    """`count` offers, cheapest first and spread over distinct offers: a marketplace offer is one
    machine (used once); an EC2 offer can launch many instances, so those are cycled."""
    offers, errors = catalog.list_offers(provider, filters)
    offers = [offer for offer in offers if offer.available]
    picked = offers[:count]
    reusable = [offer for offer in offers if offer.provider == AWS]
    index = 0
    while len(picked) < count and reusable:
        picked.append(reusable[index % len(reusable)])
        index += 1
    if len(picked) < count:
        errors.append(
            {"provider": provider, "error": f"only {len(picked)} of {count} requested instances are available"}
        )
    return picked, errors


def find_for_destroy(principal: Principal, provider: str, instance_id: str) -> GpuContractRecord:
    """The contract named by its contract id, its EC2 instance id, or the offer id it was created
    with (the newest live one of the caller's)."""
    catalog.check_provider(provider, allow_all=False)
    candidates: list[GpuContractRecord] = []
    if instance_id.startswith("contract_"):
        found = get_contract(instance_id)
        candidates = [found] if found else []
    elif provider == AWS and instance_id.startswith("i-"):
        found = contract_of_ec2_instance(instance_id)
        candidates = [found] if found else []
    else:
        candidates = newest_live_for_offer(principal, provider, instance_id)
    mine = [
        record
        for record in candidates
        if record.provider == provider
        and (principal.is_admin or record.user_id == principal.id)
        and record.status not in FINISHED
    ]
    if not mine:
        raise NotFoundError(f"no live {provider} instance {instance_id!r}", param="instanceId")
    return mine[0]


def newest_live_for_offer(principal: Principal, provider: str, offer_id: str) -> list[GpuContractRecord]:
    """The newest live contract of the offer: the caller's (one item of their LIVE keys), or for
    an admin anyone's (the newest of each live status: at most four items)."""
    if not principal.is_admin:
        prefix = GpuContractRecord.user_sort_key(True, provider, offer_id, "")
        return list(
            GpuContractRecord.by_user.query(
                GpuContractRecord.user_key(principal.id),
                GpuContractRecord.gsi1sk.startswith(prefix),
                scan_index_forward=False,
                limit=1,
            )
        )
    prefix = GpuContractRecord.offer_prefix(provider, offer_id)
    newest = [
        record
        for status in LIVE
        for record in GpuContractRecord.by_status.query(
            GpuContractRecord.status_key(status),
            GpuContractRecord.gsi2sk.startswith(prefix),
            scan_index_forward=False,
            limit=1,
        )
    ]
    return sorted(newest, key=lambda record: record.gsi2sk, reverse=True)


def contract_of_ec2_instance(ec2_instance_id: str) -> GpuContractRecord | None:
    try:
        reservations = client("ec2").describe_instances(InstanceIds=[ec2_instance_id])["Reservations"]
    except ClientError:  # unknown or malformed instance id
        return None
    for reservation in reservations:
        for instance in reservation["Instances"]:
            tags = {tag["Key"]: tag["Value"] for tag in instance.get("Tags", [])}
            if "aiplane:contract" in tags:
                return get_contract(tags["aiplane:contract"])
    return None


def set_status(record: GpuContractRecord, status: str, *extra_actions: Any, condition: Any = None) -> None:
    """Write the status (and `extra_actions`) if `condition` holds, conditional on the status the
    record has; into or out of `running`, a running count shard moves in the same transaction, so
    /stats reads the count, never the contracts. A status changed meanwhile is read again and the
    write retried; `UpdateError` when `condition` fails."""
    for attempt in range(1, STATUS_WRITE_ATTEMPTS + 1):
        before = record.status
        actions = [
            GpuContractRecord.status.set(status),
            GpuContractRecord.gsi2pk.set(GpuContractRecord.status_key(status)),
            GpuContractRecord.updated_at.set(now()),
            *extra_actions,
        ]
        if status in FINISHED:
            actions.append(
                GpuContractRecord.gsi1sk.set(
                    GpuContractRecord.user_sort_key(
                        False, record.provider, record.offer_id, rfc3339_seconds(record.created_at) + record.contract_id
                    )
                )
            )
        guard = GpuContractRecord.status == before
        try:
            _write_status(
                record,
                actions,
                guard if condition is None else condition & guard,
                int(status == RUNNING) - int(before == RUNNING),
            )
            break
        except UpdateError:
            if attempt == STATUS_WRITE_ATTEMPTS or not _status_changed(record, before):
                raise
    status_updates.contract_changed(record)
    if status in FINISHED:
        settle_spend(record)


def _write_status(record: GpuContractRecord, actions: list[Any], condition: Any, running_delta: int) -> None:
    if not running_delta:
        record.update(actions=actions, condition=condition)
        return

    def write() -> None:
        with atomic_write() as transaction:
            transaction.update(record, actions=actions, condition=condition)
            transaction.update(running_shard(), actions=[RunningCountRecord.value.add(running_delta)])

    try:
        write_with_retries(write)
    except TransactWriteError as error:
        if refused_by_condition(error):
            raise UpdateError("the contract's condition failed", cause=error.cause) from error
        raise
    record.refresh(consistent_read=True)


def _status_changed(record: GpuContractRecord, before: str) -> bool:
    """Read the contract again: whether its status is no longer `before` (a retry may succeed)."""
    try:
        record.refresh(consistent_read=True)
    except DoesNotExist:
        return False
    return record.status != before


def settle_spend(record: GpuContractRecord) -> None:
    """Charge the actual runtime (at most what was held) and give the rest of the holds back."""
    if record.hold_ids:
        charged = holds.settle(list(record.hold_ids), record.contract_id, actual_cost_cents(record))
        logger.info("GPU contract settled", extra={"contract_id": record.contract_id, "charged_cents": charged})


def destroy(record: GpuContractRecord) -> None:
    """Terminate the contract's instance (or cancel it before launch)."""
    if record.provider_instance_id:
        if record.provider == AWS:
            client("ec2").terminate_instances(InstanceIds=[record.provider_instance_id])
        else:
            try:
                MARKETPLACES[record.provider].release(record.provider_instance_id)
            except MarketplaceError as error:
                raise BadGatewayError(str(error)) from error
    # EC2 reports `terminated` through its state-change event (the agent credential stays valid
    # until then, so the agent can deregister while shutting down); the rest is final now.
    if record.provider == AWS and record.provider_instance_id:
        set_status(record, TERMINATING)
        return
    set_status(record, TERMINATED)
    agent_credentials.revoke(record)


def sweep_leases(moment: datetime | None = None) -> dict[str, int]:
    """Renew (auto_renew, when a new hold for the next period is granted) or terminate running
    contracts whose duration has run out."""
    moment = moment or now()
    renewed = terminated = 0
    for record in GpuContractRecord.by_status.query(
        GpuContractRecord.status_key(RUNNING), filter_condition=GpuContractRecord.ends_at <= moment
    ):
        outcome = renew(record) if record.auto_renew and record.duration_hours else False
        if outcome is None:
            continue  # changed meanwhile (another sweep renewed it, or it ended)
        if outcome:
            renewed += 1
        else:
            destroy(record)
            terminated += 1
    return {"renewed": renewed, "terminated": terminated}


def renew(record: GpuContractRecord) -> bool | None:
    """Extend the lease by `duration_hours` if the next period's cost can be held: the hold and
    the extension are one transaction. False: refused (the caller terminates); None: conflict."""
    if record.price_limit is None:
        return False  # nothing to price the next period by
    hold_id = f"{record.contract_id}-renewal-{len(record.hold_ids or [])}"
    cents = cost_cents(record.price_limit, record.duration_hours)

    def extend(transaction: TransactWrite) -> None:
        transaction.update(
            record,
            actions=[
                GpuContractRecord.ends_at.set(record.ends_at + timedelta(hours=record.duration_hours)),
                GpuContractRecord.hold_ids.set(GpuContractRecord.hold_ids.append([hold_id])),
                GpuContractRecord.held_cents.add(cents),
            ],
            condition=(GpuContractRecord.status == RUNNING) & (GpuContractRecord.ends_at == record.ends_at),
        )

    try:
        holds.place(
            record.user_id, hold_id, [holds.Share(record.contract_id, cents, 0)], count_against_caps=False, also=extend
        )
    except (PaymentRequiredError, RateLimitedError) as refusal:
        logger.info("GPU lease not renewed", extra={"contract_id": record.contract_id, "code": refusal.code})
        return False
    except holds.HoldConflict:
        return None
    record.refresh()
    return True
