"""The outbound-URL policy as dev and prod configure it, with a fake DNS: tests check refusals of
non-loopback addresses without ever connecting to one."""

from __future__ import annotations

from aiplane import outbound_policy
from aiplane.outbound_policy import OutboundPolicy
from aiplane_shared.environments import get_environment


def use_deployed_policy(monkeypatch, names: dict[str, list[str]]) -> OutboundPolicy:
    def resolve(host: str, port: int) -> list[str]:
        if host not in names:
            raise OSError(f"{host}: no such name")
        return names[host]

    policy = OutboundPolicy("prod", get_environment("prod").outbound_allowlists, resolve)
    monkeypatch.setattr(outbound_policy, "environment_policy", lambda: policy)
    return policy
