from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import NamedTuple

ADMIN = "admin"
# The bootstrap admin has no user record; keys issued on its behalf (e.g. GPU agent keys) are owned by this id.
BOOTSTRAP_ADMIN_ID = "admin"
USER = "user"
APPPROXY_MANAGER = "appproxy_manager"
APPPROXY_WORKER = "appproxy_worker"
APPPROXY_SHARED = "appproxy_shared"  # the manager and worker tokens are one secret (as upstream deploys it): both roles
GPU_AGENT = "gpu_agent"  # a GPU contract's agent credential: claims carry the contract id


class Principal(NamedTuple):
    """An authenticated caller."""

    id: str
    kind: str  # ADMIN, USER, APPPROXY_MANAGER, APPPROXY_WORKER, APPPROXY_SHARED or GPU_AGENT
    credential: str  # "api_key", "jwt", "cookie", "token", "agent_key": how it authenticated
    claims: Mapping[str, str] = MappingProxyType({})

    @property
    def is_admin(self) -> bool:
        return self.kind == ADMIN

    def as_context(self) -> dict[str, str]:
        """Flat string map, as an API Gateway authorizer context must be."""
        return {"principalId": self.id, "kind": self.kind, "credential": self.credential, **self.claims}

    @classmethod
    def from_context(cls, context: dict[str, str]) -> Principal:
        reserved = {"principalId", "kind", "credential", "integrationLatency"}
        return cls(
            id=context["principalId"],
            kind=context["kind"],
            credential=context["credential"],
            claims={k: v for k, v in context.items() if k not in reserved},
        )


def agent_worker_id(contract_id: str) -> str:
    """The one mlworker worker id a GPU contract's agent may speak for (the provisioner sets it)."""
    return f"gpu-{contract_id}"
