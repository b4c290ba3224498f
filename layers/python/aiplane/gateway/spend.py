"""Spend of the LLM gateway: the price table, the cost of a request from its real token usage, the
settlement the spend-log worker writes, and the spend logs.

Prices are the environment's `gateway_prices` or `AIPLANE_GATEWAY_PRICES` (LiteLLM's `input_cost_per_token`,
`output_cost_per_token` per model name as requested). A model without a price costs 0 and its logs say `unpriced: true`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from functools import cache
from typing import Any

from pynamodb.exceptions import UpdateError
from pynamodb.expressions.condition import Condition

from aiplane.data.conditions import ITEM_CONDITION_FAILED, refused_by_condition
from aiplane.data.models import get_or_none
from aiplane.data.pagination import parse_limit
from aiplane.gateway.limits import Admission, with_transaction
from aiplane.identity.models import GatewayLimitRecord, SpendLogRecord
from aiplane.identity.users import parse_rfc3339, rfc3339
from aiplane.observability import logger
from aiplane.settings import get_settings

COST_DIGITS = 12  # costs are rounded so that float noise never reaches the budget's comparisons


@dataclass(frozen=True)
class Price:
    input_cost_per_token: Decimal
    output_cost_per_token: Decimal


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@cache
def _prices(raw: str) -> dict[str, Price]:
    return {
        model: Price(
            Decimal(str(price.get("input_cost_per_token", 0))), Decimal(str(price.get("output_cost_per_token", 0)))
        )
        for model, price in json.loads(raw).items()
    }


def price_of(model: str) -> Price | None:
    return _prices(get_settings().gateway_prices).get(model)


def cost(model: str, prompt_tokens: int, completion_tokens: int) -> float:
    price = price_of(model)
    if price is None:
        return 0.0
    total = price.input_cost_per_token * prompt_tokens + price.output_cost_per_token * completion_tokens
    return round(float(total), COST_DIGITS)


def usage_of_completion(completion: dict[str, Any]) -> Usage | None:
    """The backend's usage in a `chat.completion` body."""
    return _usage(completion.get("usage"))


def _usage(raw: Any) -> Usage | None:
    if not isinstance(raw, dict):
        return None
    return Usage(int(raw.get("prompt_tokens") or 0), int(raw.get("completion_tokens") or 0))


def spend_message(admission: Admission, usage: Usage | None, *, succeeded: bool, ended_at: float) -> dict[str, Any]:
    """The spend-log queue's message: everything the worker needs to settle the request, alone."""
    usage = usage or Usage(0, 0)
    return {
        "request_id": admission.request_id,
        "user_id": admission.user_id,
        "model": admission.model,
        "key_id": admission.key_id,
        "key_hash": admission.key_hash,
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "spend": cost(admission.model, usage.prompt_tokens, usage.completion_tokens),
        "unpriced": price_of(admission.model) is None,
        "status": "success" if succeeded else "failure",
        "started_at": admission.started_at,
        "ended_at": ended_at,
        "minute": admission.minute,
        "budgets": admission.budget_sks,
        "reserved": admission.reserved,
        "tpm": admission.tpm,
    }


def settle(message: dict[str, Any]) -> bool:
    """Write one request's spend log and add its cost and tokens to every scope, in one transaction,
    once: a redelivered message finds its log written and changes nothing. False when it was already settled."""
    spent, tokens = message["spend"], message["prompt_tokens"] + message["completion_tokens"]
    started, ended = (datetime.fromtimestamp(message[name], UTC) for name in ("started_at", "ended_at"))
    log = SpendLogRecord(
        f"SPENDLOG#{message['request_id']}",
        "META",
        gsi1pk=f"SPENDLOG#USER#{message['user_id']}",
        gsi1sk=f"{rfc3339(started)}#{message['request_id']}",
        gsi2sk=f"{rfc3339(started)}#{message['request_id']}",
        request_id=message["request_id"],
        key_id=message.get("key_id"),
        key_hash=message.get("key_hash"),
        user_id=message["user_id"],
        model=message["model"],
        prompt_tokens=message["prompt_tokens"],
        completion_tokens=message["completion_tokens"],
        spend=spent,
        unpriced=message["unpriced"],
        status=message["status"],
        started_at=started,
        ended_at=ended,
    )

    def build(transaction: Any) -> None:
        transaction.save(log, condition=SpendLogRecord.pk.does_not_exist())
        for scope, budget_sk in message["budgets"].items():
            actions = [
                GatewayLimitRecord.spend.add(spent),
                GatewayLimitRecord.tokens.add(tokens),
                GatewayLimitRecord.requests.add(1),
            ]
            if scope in message["reserved"]:
                actions.append(GatewayLimitRecord.headroom.add(round(message["reserved"][scope] - spent, COST_DIGITS)))
            transaction.update(GatewayLimitRecord(f"LIMIT#{scope}", budget_sk), actions=actions)
        for scope in message["tpm"]:
            transaction.update(
                GatewayLimitRecord(f"LIMIT#{scope}", message["minute"]), actions=[GatewayLimitRecord.tokens.add(tokens)]
            )

    def already_settled(codes: list[str | None]) -> None:
        if codes[:1] == [ITEM_CONDITION_FAILED]:  # the log's own put: settled before
            raise _AlreadySettled

    try:
        with_transaction(build, already_settled)
    except _AlreadySettled:
        logger.info("spend log already settled", extra={"request_id": message["request_id"]})
        return False
    if message["unpriced"] and spent == 0 and tokens:
        logger.warning("model has no price: its requests cost 0", extra={"model": message["model"]})
    return True


class _AlreadySettled(Exception):
    pass


def scope_spend(scope: str, budget_sk: str) -> float:
    """The spend recorded for a scope in one budget period (0 before its first settled request)."""
    record = get_or_none(GatewayLimitRecord, f"LIMIT#{scope}", budget_sk, consistent_read=True)
    return float(record.spend or 0) if record is not None else 0.0


def adjust_headroom(scope: str, budget_sk: str, delta: float) -> None:
    """A changed max_budget moves the current period's headroom by the difference (an untouched period
    starts from the new budget anyway)."""
    try:
        GatewayLimitRecord(f"LIMIT#{scope}", budget_sk).update(
            actions=[GatewayLimitRecord.headroom.add(delta)], condition=GatewayLimitRecord.headroom.exists()
        )
    except UpdateError as error:
        if not refused_by_condition(error):
            raise


def spend_logs(
    *,
    user_id: str | None,
    key_hash: str | None = None,
    request_id: str | None = None,
    start_date: str | None = None,
    end_date: str | None = None,
    limit: str | None = None,
) -> list[SpendLogRecord]:
    """Spend logs, newest first: one user's (a GSI query) or everyone's (user_id None, admins only)."""
    if request_id:
        found = get_or_none(SpendLogRecord, f"SPENDLOG#{request_id}", "META")
        records = [found] if found is not None and (user_id is None or found.user_id == user_id) else []
    else:
        condition: Condition | None = None
        sort_key = SpendLogRecord.gsi1sk if user_id else SpendLogRecord.gsi2sk
        start = rfc3339(parse_rfc3339(start_date, param="start_date")) if start_date else None
        end = rfc3339(parse_rfc3339(end_date, param="end_date")) + "~" if end_date else None
        if start and end:
            condition = sort_key.between(start, end)
        elif start:
            condition = sort_key >= start
        elif end:
            condition = sort_key <= end
        filter_condition = SpendLogRecord.key_hash == key_hash if key_hash else None
        index, partition = (
            (SpendLogRecord.by_user, f"SPENDLOG#USER#{user_id}") if user_id else (SpendLogRecord.by_time, "SPENDLOG")
        )
        records = list(
            index.query(
                partition,
                condition,
                filter_condition=filter_condition,
                scan_index_forward=False,
                limit=parse_limit(limit),
            )
        )
    return records
