"""Tokens the AppProxy workers verify, signed with the secret the coordinator shares with them
(`appproxy-jwt-secret`, the workers' `secrets.jwt_secret`), never with a user-token key.

- Endpoint API tokens: HS256, the circuit's fields with `id` = circuit id (what the worker compares),
  plus `user`, `app_url`, `config` and `exp`, as upstream's coordinator issues them.
- The `/setup?token=` permit of an interactive app: HS256 `{id, version: "v2", redirect, circuit}`;
  the worker reads `circuit` and `redirect`, sets its permit cookie and redirects to the app.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from aiplane.data.secrets import get_string_secret
from aiplane.errors import UnavailableError
from aiplane_shared.resources import APPPROXY_JWT_SECRET

ALGORITHM = "HS256"
SETUP_PERMIT_TTL = timedelta(hours=1)


def worker_jwt_secret() -> str:
    secret = get_string_secret(APPPROXY_JWT_SECRET.name)
    if not secret:
        raise UnavailableError("the appproxy worker secret is not set", code="APPPROXY_SECRET_MISSING")
    return secret


def endpoint_token(circuit: dict[str, Any], app_url: str, user_uuid: str, expires_at: datetime) -> str:
    import jwt  # on first use (aiplane.identity.tokens.load_jwt)

    payload = {**circuit, "config": {}, "app_url": app_url, "user": user_uuid, "exp": expires_at}
    return jwt.encode(payload, worker_jwt_secret(), algorithm=ALGORITHM)


def setup_url(worker_api_endpoint: str, circuit_id: str, redirect: str) -> str:
    """The worker's /setup step with its permit: the worker checks it, sets the permit cookie
    and redirects to the app."""
    import jwt  # on first use (aiplane.identity.tokens.load_jwt)

    payload = {
        "id": str(uuid.uuid4()),
        "version": "v2",
        "redirect": redirect,
        "circuit": circuit_id,
        "exp": datetime.now(UTC) + SETUP_PERMIT_TTL,
    }
    return f"{worker_api_endpoint}/setup?{urlencode({'token': jwt.encode(payload, worker_jwt_secret(), algorithm=ALGORITHM)})}"
