"""GET /supported: the hook names task chains can use (kept apart from the exec routes)."""

from __future__ import annotations

from fastapi import APIRouter

from aiplane.chains import hooks

router = APIRouter()


@router.get("/supported")
def supported_hooks() -> list[str]:
    return hooks.supported()
