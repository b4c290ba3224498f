"""Per-API-key request rate limits (mlworker: "Rate limiting is enforced per API key").

Counted in DynamoDB (`counters`), so the limit holds across Lambda instances. The bootstrap admin
key is exempt: it is the operator's credential, used by automation and by the contract sweep,
and the API Gateway stage throttle still bounds it.
"""

from __future__ import annotations

from aiplane.identity import counters
from aiplane.identity.principal import Principal
from aiplane_shared.families import MLWORKER

RATE_LIMITED_FAMILIES = frozenset({MLWORKER})
DEFAULT_REQUESTS_PER_MINUTE = 600
WINDOW_S = 60


def limit_request_rate(family: str, principal: Principal) -> None:
    """RateLimitedError (429 with Retry-After) when the key has used up its window."""
    key_id = principal.claims.get("keyId")
    if family not in RATE_LIMITED_FAMILIES or principal.credential != "api_key" or not key_id:
        return
    limit = int(principal.claims.get("rateLimit") or DEFAULT_REQUESTS_PER_MINUTE)
    counters.take(
        f"apikey#{key_id}",
        limit=limit,
        window_s=WINDOW_S,
        message=f"rate limit of {limit} requests per minute exceeded",
    )
