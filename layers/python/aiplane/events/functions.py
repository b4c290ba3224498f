"""Stored functions and event triggers, each owned by its creator (`aiplane.identity.ownership`)."""

from __future__ import annotations

import json
import re
from typing import Any

from pynamodb.exceptions import DeleteError, PutError, UpdateError

from aiplane.clock import now, rfc3339
from aiplane.data.conditions import refused_by_condition
from aiplane.data.models import Gsi1, get_or_404
from aiplane.errors import ConflictError, NotFoundError, ValidationError
from aiplane.events import sandbox
from aiplane.events.models import FunctionRecord, TriggerRecord, trigger_function_key
from aiplane.events.views import function_view, trigger_view
from aiplane.identity import ownership
from aiplane.identity.access import EDIT, MANAGE, VIEW
from aiplane.identity.principal import Principal

SCRIPT_TYPES = ("goja", "javascript")  # "goja" is the contract's name for its JavaScript sandbox
TRIGGER_TYPES = ("function",)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")


def _valid_name(name: Any, param: str = "name") -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValidationError(f"{param} must be 1-128 letters, digits, '_', '.', ':' or '-'", param=param)
    return name


def _text(body: dict[str, Any], field: str, *, required: bool = True) -> str:
    value = body.get(field)
    if value is None or value == "":
        if required:
            raise ValidationError(f"{field} is required", param=field)
        return ""
    if not isinstance(value, str):
        raise ValidationError(f"{field} must be a string", param=field)
    return value


# ---- functions ---------------------------------------------------------------------------------


def _function_fields(body: dict[str, Any]) -> tuple[str, str, str]:
    script_type = _text(body, "scriptType", required=False) or "goja"
    if script_type not in SCRIPT_TYPES:
        raise ValidationError(f"scriptType must be one of {', '.join(SCRIPT_TYPES)}", param="scriptType")
    script = _text(body, "script")
    problem = sandbox.syntax_error(script)
    if problem:
        raise ValidationError(f"script does not compile: {problem}", param="script")
    return _text(body, "description", required=False), script_type, script


def create_function(body: dict[str, Any], owner_id: str | None = None) -> dict[str, Any]:
    name = _valid_name(body.get("name"))
    description, script_type, script = _function_fields(body)
    created = rfc3339(now())
    record = FunctionRecord(
        f"FUNCTION#{name}",
        "META",
        gsi1sk=f"{created}#{name}",
        name=name,
        description=description,
        script_type=script_type,
        script=script,
        created_at=created,
        updated_at=created,
        owner_id=owner_id,
    )
    try:
        record.save(condition=FunctionRecord.pk.does_not_exist())
    except PutError as error:
        if refused_by_condition(error):
            raise ConflictError(f"function {name!r} already exists", param="name") from None
        raise
    return function_view(record)


def get_function(name: str, principal: Principal | None = None, needed: str = VIEW) -> FunctionRecord:
    record = get_or_404(
        FunctionRecord, f"FUNCTION#{name}", "META", missing=f"function {name!r} not found", param="name"
    )
    ownership.require(principal, needed, ownership.FUNCTIONS, name, record.owner_id)
    return record


def function_owner(name: str) -> str | None:
    return get_function(name).owner_id


def update_function(name: str, body: dict[str, Any], principal: Principal | None = None) -> dict[str, Any]:
    description, script_type, script = _function_fields(body)
    record = get_function(name, principal, EDIT)
    try:
        record.update(
            actions=[
                FunctionRecord.description.set(description),
                FunctionRecord.script_type.set(script_type),
                FunctionRecord.script.set(script),
                FunctionRecord.updated_at.set(rfc3339(now())),
            ],
            condition=FunctionRecord.pk.exists(),
        )
    except UpdateError as error:
        if refused_by_condition(error):
            raise NotFoundError(f"function {name!r} not found", param="name") from None
        raise
    return function_view(record)


def delete_function(name: str, principal: Principal | None = None) -> None:
    get_function(name, principal, MANAGE)
    try:
        FunctionRecord(f"FUNCTION#{name}", "META").delete(condition=FunctionRecord.pk.exists())
    except DeleteError as error:
        if refused_by_condition(error):
            raise NotFoundError(f"function {name!r} not found", param="name") from None
        raise


def list_functions(limit: int, cursor: str | None, principal: Principal | None = None) -> list[dict[str, Any]]:
    condition = Gsi1.gsi1sk > f"{cursor}#\uffff" if cursor else None
    records = FunctionRecord.by_created.query("FUNCTIONS", range_key_condition=condition)
    return [
        function_view(record)
        for record in ownership.visible_page(
            principal, ownership.FUNCTIONS, records, lambda r: (r.name, r.owner_id), limit
        )
    ]


# ---- event triggers ----------------------------------------------------------------------------


def _trigger_fields(body: dict[str, Any]) -> tuple[str, dict[str, Any], str, str]:
    listen_for = body.get("listenFor")
    if not isinstance(listen_for, dict) or not isinstance(listen_for.get("type"), str) or not listen_for["type"]:
        raise ValidationError("listenFor.type (the event type to listen for) is required", param="listenFor")
    trigger_type = _text(body, "type", required=False) or "function"
    if trigger_type not in TRIGGER_TYPES:
        raise ValidationError(f"type must be one of {', '.join(TRIGGER_TYPES)}", param="type")
    function = _valid_name(body.get("function"), "function")
    return _text(body, "description", required=False), {"type": listen_for["type"]}, trigger_type, function


def create_trigger(body: dict[str, Any], owner_id: str | None = None) -> dict[str, Any]:
    name = _valid_name(body.get("name"))
    description, listen_for, trigger_type, function = _trigger_fields(body)
    created = rfc3339(now())
    record = TriggerRecord(
        f"TRIGGER#{name}",
        "META",
        gsi1sk=f"{created}#{name}",
        gsi2pk=f"TRIGGERTYPE#{listen_for['type']}",
        gsi2sk=name,
        gsi3pk=trigger_function_key(function),
        gsi3sk=f"{created}#{name}",
        name=name,
        description=description,
        listen_for=json.dumps(listen_for),
        trigger_type=trigger_type,
        function=function,
        created_at=created,
        updated_at=created,
        owner_id=owner_id,
    )
    try:
        record.save(condition=TriggerRecord.pk.does_not_exist())
    except PutError as error:
        if refused_by_condition(error):
            raise ConflictError(f"event trigger {name!r} already exists", param="name") from None
        raise
    return trigger_view(record)


def get_trigger(name: str, principal: Principal | None = None, needed: str = VIEW) -> TriggerRecord:
    record = get_or_404(
        TriggerRecord, f"TRIGGER#{name}", "META", missing=f"event trigger {name!r} not found", param="name"
    )
    ownership.require(principal, needed, ownership.TRIGGERS, name, record.owner_id)
    return record


def trigger_owner(name: str) -> str | None:
    return get_trigger(name).owner_id


def update_trigger(name: str, body: dict[str, Any], principal: Principal | None = None) -> dict[str, Any]:
    description, listen_for, trigger_type, function = _trigger_fields(body)
    record = get_trigger(name, principal, EDIT)
    try:
        record.update(
            actions=[
                TriggerRecord.description.set(description),
                TriggerRecord.listen_for.set(json.dumps(listen_for)),
                TriggerRecord.gsi2pk.set(f"TRIGGERTYPE#{listen_for['type']}"),
                TriggerRecord.trigger_type.set(trigger_type),
                TriggerRecord.function.set(function),
                TriggerRecord.updated_at.set(rfc3339(now())),
                TriggerRecord.gsi3pk.set(trigger_function_key(function)),
                TriggerRecord.gsi3sk.set(record.gsi1sk),
            ],
            condition=TriggerRecord.pk.exists(),
        )
    except UpdateError as error:
        if refused_by_condition(error):
            raise NotFoundError(f"event trigger {name!r} not found", param="name") from None
        raise
    return trigger_view(record)


def delete_trigger(name: str, principal: Principal | None = None) -> None:
    get_trigger(name, principal, MANAGE)
    try:
        TriggerRecord(f"TRIGGER#{name}", "META").delete(condition=TriggerRecord.pk.exists())
    except DeleteError as error:
        if refused_by_condition(error):
            raise NotFoundError(f"event trigger {name!r} not found", param="name") from None
        raise


def _visible_triggers(records: Any, principal: Principal | None, limit: int | None = None) -> list[TriggerRecord]:
    return ownership.visible_page(principal, ownership.TRIGGERS, records, lambda r: (r.name, r.owner_id), limit)


def list_triggers(limit: int, cursor: str | None, principal: Principal | None = None) -> list[dict[str, Any]]:
    condition = Gsi1.gsi1sk > f"{cursor}#\uffff" if cursor else None
    records = TriggerRecord.by_created.query("TRIGGERS", range_key_condition=condition)
    return [trigger_view(record) for record in _visible_triggers(records, principal, limit)]


def triggers_for_event_type(event_type: str, principal: Principal | None = None) -> list[TriggerRecord]:
    return _visible_triggers(TriggerRecord.by_event_type.query(f"TRIGGERTYPE#{event_type}"), principal)


def triggers_for_function(
    function: str, limit: int, cursor: str | None, principal: Principal | None = None
) -> list[dict[str, Any]]:
    """Oldest first, from the function's own index partition."""
    condition = TriggerRecord.gsi3sk > f"{cursor}#\uffff" if cursor else None
    records = TriggerRecord.by_function.query(
        trigger_function_key(function), range_key_condition=condition, page_size=limit
    )
    return [trigger_view(record) for record in _visible_triggers(records, principal, limit)]
