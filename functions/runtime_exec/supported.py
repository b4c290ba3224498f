"""GET /supported: the hook names task chains can use (kept apart from the exec routes)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from aiplane.api.auth import current_principal
from aiplane.chains import hooks

router = APIRouter()


@router.get("/supported")
def supported_hooks(request: Request) -> list[str]:
    return hooks.supported(current_principal(request))
