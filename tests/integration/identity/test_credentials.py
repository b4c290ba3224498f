"""Credential extraction and the bootstrap/API-key/JWT checks (against moto)."""

from datetime import UTC, datetime, timedelta

import pytest

from aiplane.errors import ForbiddenError, InvalidCredentialsError, UnauthenticatedError
from aiplane.identity.api_keys import GPU_AGENT_SCOPE, hash_key, issue_api_key, revoke_api_key
from aiplane.identity.authenticate import Credentials, authenticate, require_access
from aiplane.identity.principal import ADMIN, APPPROXY_MANAGER, APPPROXY_WORKER, GPU_AGENT, USER, Principal
from aiplane.identity.sessions import issue_session
from aiplane.identity.tokens import issue_token
from aiplane.identity.users import USER_FAMILIES, create_user, delete_user, get_user
from aiplane_shared.routes import AGENT, AUTHENTICATED


def a_user(label: str) -> str:
    """Credentials are only good while their user exists."""
    return create_user(
        f"{label}-{datetime.now(UTC).timestamp()}@example.com", "correct-horse-42", families=USER_FAMILIES
    ).user_id


def test_credentials_come_from_headers_and_cookie():
    creds = Credentials.from_headers(
        {"X-Api-Key": "k", "Authorization": "Bearer t", "Cookie": "a=b; auth_token=c", "X-BackendAI-Token": "w"}
    )
    assert creds == Credentials(api_key="k", bearer="t", cookie_token="c", backendai_token="w")
    assert Credentials.from_headers({"Authorization": "Basic xyz"}).bearer is None


def test_nothing_presented_is_unauthenticated():
    for family in ("runtime", "mlworker", "gpufarm", "appproxy"):
        with pytest.raises(UnauthenticatedError):
            authenticate(family, Credentials())


def test_bootstrap_admin_key_works_on_three_families(admin_api_key):
    assert authenticate("runtime", Credentials(api_key=admin_api_key)).kind == ADMIN
    assert authenticate("mlworker", Credentials(api_key=admin_api_key)).kind == ADMIN
    assert authenticate("gpufarm", Credentials(bearer=admin_api_key)).kind == ADMIN


def test_issued_key_authenticates_until_revoked_or_expired():
    user_id = a_user("ci")
    issued = issue_api_key(user_id, "ci")
    principal = authenticate("mlworker", Credentials(api_key=issued.api_key))
    assert (principal.id, principal.kind) == (user_id, USER)
    revoke_api_key(hash_key(issued.api_key))
    with pytest.raises(InvalidCredentialsError):
        authenticate("mlworker", Credentials(api_key=issued.api_key))

    expired = issue_api_key(user_id, "old", expires_at=datetime.now(UTC) - timedelta(seconds=1))
    with pytest.raises(InvalidCredentialsError):
        authenticate("gpufarm", Credentials(bearer=expired.api_key))


def test_wrong_key_is_invalid():
    with pytest.raises(InvalidCredentialsError):
        authenticate("runtime", Credentials(api_key="aip_not-a-key"))


def test_jwt_is_accepted_as_bearer_and_cookie_and_refused_when_expired():
    user_id = a_user("jwt")
    token = issue_session(get_user(user_id)).token
    assert authenticate("gpufarm", Credentials(bearer=token)).id == user_id
    assert authenticate("runtime", Credentials(cookie_token=token)).credential == "cookie"
    expired, _ = issue_token(user_id, ttl=timedelta(seconds=-5))
    with pytest.raises(InvalidCredentialsError):
        authenticate("gpufarm", Credentials(bearer=expired))
    with pytest.raises(InvalidCredentialsError):
        authenticate("runtime", Credentials(bearer=token[:-4] + "AAAA"))
    delete_user(user_id)
    with pytest.raises(InvalidCredentialsError):
        authenticate("gpufarm", Credentials(bearer=token))


def test_appproxy_tokens_map_to_roles(manager_token, worker_token):
    manager = authenticate("appproxy", Credentials(backendai_token=manager_token))
    worker = authenticate("appproxy", Credentials(backendai_token=worker_token))
    assert (manager.kind, worker.kind) == (APPPROXY_MANAGER, APPPROXY_WORKER)
    require_access(manager, "manager")
    with pytest.raises(ForbiddenError):
        require_access(worker, "manager")
    with pytest.raises(ForbiddenError):
        require_access(manager, "worker")
    with pytest.raises(InvalidCredentialsError):
        authenticate("appproxy", Credentials(backendai_token="nope"))


def test_principal_survives_the_authorizer_context():
    principal = Principal(id="u", kind=USER, credential="jwt", claims={"keyId": "k"})
    assert Principal.from_context(principal.as_context()) == principal


def test_a_gpu_agent_key_opens_the_agent_routes_only(admin_api_key):
    issued = issue_api_key(a_user("agent"), "gpu agent c1", scope=GPU_AGENT_SCOPE, contract_id="contract_c1")
    for family in ("runtime", "mlworker", "gpufarm"):
        agent = authenticate(family, Credentials(api_key=issued.api_key, bearer=issued.api_key))
        assert (agent.kind, agent.claims["contractId"]) == (GPU_AGENT, "contract_c1")
        with pytest.raises(ForbiddenError):
            require_access(agent, AUTHENTICATED)
    require_access(agent, AGENT)
    assert Principal.from_context(agent.as_context()) == agent  # as the API Gateway authorizer passes it on
    # No other credential speaks for an agent, not even an admin's.
    for other in (
        authenticate("gpufarm", Credentials(bearer=admin_api_key)),
        Principal(id="u", kind=USER, credential="jwt"),
    ):
        with pytest.raises(ForbiddenError):
            require_access(other, AGENT)
    revoke_api_key(hash_key(issued.api_key))
    with pytest.raises(InvalidCredentialsError):
        authenticate("gpufarm", Credentials(bearer=issued.api_key))
