"""Every runtime resource group enforces the permission levels: view reads, edit creates and
updates, manage deletes; a user without a grant is refused."""

from __future__ import annotations

import pytest

from tests.integration.identity.test_users_and_access import grant

# (resource, a read, a write) for the groups of the LLM gateway and task chains.
GROUPS = [
    ("backends", ("GET", "/backends"), ("POST", "/backends")),
    ("groups", ("GET", "/groups"), ("POST", "/groups")),
    ("models", ("GET", "/models"), ("POST", "/models")),
    ("providers", ("GET", "/providers/configs"), ("DELETE", "/providers/openai/config")),
    ("queue", ("GET", "/queue"), ("DELETE", "/queue/some-model")),
    ("exec", ("GET", "/defaultmodel"), ("POST", "/execute")),
    ("chains", ("GET", "/taskchains"), ("POST", "/taskchains")),
    ("chats", ("GET", "/chats"), ("POST", "/chats")),
    ("hooks", ("GET", "/hooks/remote"), ("POST", "/hooks/remote")),
]


@pytest.mark.parametrize("resource, read, write", GROUPS, ids=[group[0] for group in GROUPS])
def test_group_enforces_view_for_reads_and_more_for_writes(runtime, admin, make_user, resource, read, write):
    user = make_user(f"perm-{resource}")
    assert runtime.request(*read, headers=user.bearer).status_code == 403

    grant(runtime, admin, user.id, resource, "view")
    assert runtime.request(*read, headers=user.bearer).status_code != 403
    assert runtime.request(*write, headers=user.bearer, json={}).status_code == 403
