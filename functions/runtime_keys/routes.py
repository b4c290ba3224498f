"""runtime keys routes: LiteLLM's key management and spend logs (extra routes, outside the contract).

- POST /key/generate, POST /key/update, GET /key/info?key=, POST /key/delete {"keys": [...]}
- POST /user/update (a user's gateway limits; administrators only)
- GET /spend/logs
"""

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from aiplane.api.auth import current_principal
from aiplane.gateway import key_views, spend, virtual_keys
from aiplane.identity.api_keys import hash_key

router = APIRouter()


class _LiteLLMBody(BaseModel):
    # LiteLLM's tooling sends fields aiplane has no use for (team_id, aliases...): they are ignored.
    model_config = ConfigDict(extra="ignore")

    key_alias: str | None = Field(default=None, max_length=200)
    duration: str | None = None
    models: list[str] | None = None
    max_budget: float | None = None
    budget_duration: str | None = None
    tpm_limit: int | None = None
    rpm_limit: int | None = None
    max_parallel_requests: int | None = None
    user_id: str | None = None
    metadata: dict[str, Any] | None = None


class KeyUpdateBody(_LiteLLMBody):
    key: str


class KeyDeleteBody(BaseModel):
    keys: list[str] = Field(min_length=1, max_length=100)


class UserUpdateBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    user_id: str
    max_budget: float | None = None
    budget_duration: str | None = None
    tpm_limit: int | None = None
    rpm_limit: int | None = None
    max_parallel_requests: int | None = None


def _given(body: BaseModel) -> dict[str, Any]:
    return body.model_dump(include=body.model_fields_set)


@router.post("/key/generate", include_in_schema=False)
def generate(body: _LiteLLMBody, request: Request) -> dict[str, Any]:
    return key_views.generated_key_view(virtual_keys.generate(current_principal(request), _given(body)))


@router.post("/key/update", include_in_schema=False)
def update(body: KeyUpdateBody, request: Request) -> dict[str, Any]:
    return key_views.key_view(virtual_keys.update(current_principal(request), _given(body)))


@router.get("/key/info", include_in_schema=False)
def info(request: Request, key: str | None = None) -> dict[str, Any]:
    return key_views.key_info_view(virtual_keys.info(current_principal(request), key))


@router.post("/key/delete", include_in_schema=False)
def delete(body: KeyDeleteBody, request: Request) -> dict[str, Any]:
    return virtual_keys.delete(current_principal(request), body.keys)


@router.post("/user/update", include_in_schema=False)
def update_user(body: UserUpdateBody, request: Request) -> dict[str, Any]:
    return key_views.user_limits_view(virtual_keys.update_user_limits(current_principal(request), _given(body)))


@router.get("/spend/logs", include_in_schema=False)
def spend_logs(
    request: Request,
    api_key: str | None = None,
    user_id: str | None = None,
    request_id: str | None = None,
    start_date: str | None = None,
    end_date: str | None = None,
    limit: str | None = None,
) -> list[dict[str, Any]]:
    """A user sees their own logs; an admin anyone's (everyone's without user_id)."""
    principal = current_principal(request)
    if not principal.is_admin:
        user_id = principal.id
    key_hash = (api_key if len(api_key) == 64 else hash_key(api_key)) if api_key else None
    logs = spend.spend_logs(
        user_id=user_id, key_hash=key_hash, request_id=request_id, start_date=start_date, end_date=end_date, limit=limit
    )
    return [key_views.log_view(log) for log in logs]
