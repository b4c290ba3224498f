"""Bootstrap credentials: the admin API key and the appproxy manager/worker tokens.

They live in the `bootstrap` secret (Secrets Manager) in every environment; the local stack fills
that secret from AIPLANE_ADMIN_API_KEY, AIPLANE_APPPROXY_MANAGER_TOKEN and
AIPLANE_APPPROXY_WORKER_TOKEN, or from random values it prints.
"""

from __future__ import annotations

import hmac

from aiplane.data.secrets import get_json_secret
from aiplane_shared.resources import BOOTSTRAP_SECRET

ADMIN_API_KEY = "admin_api_key"
APPPROXY_MANAGER_TOKEN = "appproxy_manager_token"
APPPROXY_WORKER_TOKEN = "appproxy_worker_token"
BOOTSTRAP_FIELDS = (ADMIN_API_KEY, APPPROXY_MANAGER_TOKEN, APPPROXY_WORKER_TOKEN)


def matches_bootstrap(field: str, presented: str) -> bool:
    """Constant-time comparison against one bootstrap credential."""
    expected = get_json_secret(BOOTSTRAP_SECRET.name).get(field)
    if not expected:
        return False
    return hmac.compare_digest(presented.encode(), expected.encode())
