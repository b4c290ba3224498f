"""Interactive apps: POST /v2/conf, GET /v2/proxy/{token}/{session_id}/add, GET /v2/proxy/auth."""

from __future__ import annotations

import uuid
from urllib.parse import parse_qs, urlsplit

from tests.integration.appproxy.conftest import conf_body, port_worker, wildcard_worker


def test_conf_token_leads_through_add_to_a_circuit(client, as_manager, as_worker, register, setup_permit):
    worker = register(port_worker(first=20100, last=20101))
    session_id = str(uuid.uuid4())
    conf = client.post("/v2/conf", json=conf_body(session_id), headers=as_manager)
    assert conf.status_code == 200 and set(conf.json()) == {"token"}
    token = conf.json()["token"]

    # /v2/proxy/* are public at the gateway: the conf token is the credential.
    add = client.get(
        f"/v2/proxy/{token}/{session_id}/add",
        params={"app": "jupyter", "protocol": "http", "envs": '{"A": "1"}', "redirect": "/lab"},
    )
    assert add.status_code == 200, add.text
    assert add.json()["code"] == 200
    url = urlsplit(add.json()["url"])
    assert url.path.endswith("/v2/proxy/auth")
    query = {name: values[0] for name, values in parse_qs(url.query).items()}
    assert query["token"] == token and query["session_id"] == session_id and query["app"] == "jupyter"

    proxied = client.get("/v2/proxy/auth", params=query, headers={"Accept": "application/json"})
    assert proxied.status_code == 200, proxied.text
    body = proxied.json()
    assert set(body) == {"redirect_url", "reuse"} and body["reuse"] is False
    # Through the worker's /setup step (its API port), with the permit it verifies.
    assert body["redirect_url"].startswith("http://proxy-port.example:6001/setup?token=")
    permit = setup_permit(body["redirect_url"])

    circuit = client.get(f"/api/worker/{worker['id']}/circuits", headers=as_worker).json()["circuits"][0]
    assert permit["circuit"] == circuit["id"] and permit["redirect"] == "/lab" and permit["version"] == "v2"
    assert circuit["port"] in (20100, 20101)
    assert circuit["app"] == "jupyter" and circuit["app_mode"] == "interactive" and circuit["envs"] == {"A": "1"}
    assert circuit["user_id"] == "user-1" and circuit["session_ids"] == [session_id]
    assert circuit["route_info"] == [
        {
            "session_id": session_id,
            "session_name": None,
            "kernel_host": "10.0.0.7",
            "kernel_port": 30001,
            "protocol": "http",
            "traffic_ratio": 1.0,
            "route_id": None,
            "health_status": None,
            "last_health_check": None,
            "consecutive_failures": 0,
        }
    ]


def test_proxy_auth_redirects_with_location_unless_json_is_asked_for(client, as_manager, register):
    register(wildcard_worker())
    session_id = str(uuid.uuid4())
    token = client.post("/v2/conf", json=conf_body(session_id), headers=as_manager).json()["token"]
    response = client.get(
        "/v2/proxy/auth",
        params={"app": "ttyd", "protocol": "http", "token": token, "session_id": session_id},
        follow_redirects=False,
    )
    assert response.status_code == 302
    assert response.headers["location"].startswith("https://proxy-wildcard.example:6002/setup?token=")


def test_same_session_and_app_reuse_the_circuit_unless_no_reuse(open_app, register, setup_permit):
    register(port_worker(first=20100, last=20104))
    session_id = str(uuid.uuid4())

    def circuit_of(response) -> str:
        return setup_permit(response["redirect_url"])["circuit"]

    first = open_app(session_id).json()
    again = open_app(session_id).json()
    assert again["reuse"] is True and circuit_of(again) == circuit_of(first)
    other_app = open_app(session_id, app="vscode").json()
    assert other_app["reuse"] is False and circuit_of(other_app) != circuit_of(first)
    forced = open_app(session_id, no_reuse=True).json()
    assert forced["reuse"] is False and circuit_of(forced) != circuit_of(first)


def test_proxy_routes_check_the_conf_token(client, as_manager, register):
    register(port_worker())
    assert (
        client.get(
            "/v2/proxy/auth", params={"app": "a", "protocol": "http", "token": "forged", "session_id": "s"}
        ).status_code
        == 401
    )
    assert client.get("/v2/proxy/forged/s/add", params={"app": "a", "protocol": "http"}).status_code == 401
    token = client.post("/v2/conf", json=conf_body("session-a"), headers=as_manager).json()["token"]
    # A token is bound to the session it was issued for.
    other = client.get(
        "/v2/proxy/auth", params={"app": "a", "protocol": "http", "token": token, "session_id": "session-b"}
    )
    assert other.status_code == 403
    assert (
        client.get(
            "/v2/proxy/auth", params={"app": "a", "protocol": "quic", "token": token, "session_id": "session-a"}
        ).status_code
        == 400
    )


def test_conf_is_open_by_default_and_takes_the_manager_token_when_closed(client, as_manager, as_worker, set_setting):
    assert (
        client.post("/v2/conf", json=conf_body("s")).status_code == 200
    )  # upstream's allow_unauthorized_configure_request
    set_setting("AIPLANE_APPPROXY_ALLOW_UNAUTHORIZED_CONF", "false")
    assert client.post("/v2/conf", json=conf_body("s")).status_code == 401
    assert client.post("/v2/conf", json=conf_body("s"), headers=as_worker).status_code == 403
    assert client.post("/v2/conf", json=conf_body("s"), headers=as_manager).status_code == 200
    body = conf_body("s")
    del body["kernel_host"]
    assert client.post("/v2/conf", json=body, headers=as_manager).status_code == 400


def test_a_conf_token_without_a_session_id_is_refused(client, as_manager, register):
    register(port_worker())
    body = conf_body("unused")
    body["session"]["id"] = None
    refused = client.post("/v2/conf", json=body, headers=as_manager)
    assert refused.status_code == 400 and refused.json()["code"] and "session" in refused.json()["error"]
    # A token minted without a session (as before this rule) opens no session's app.
    from aiplane.appproxy.interactive import CONF_TOKEN_TTL, CONF_TOKEN_TYPE
    from aiplane.identity.tokens import issue_token

    unbound, _ = issue_token("user-1", ttl=CONF_TOKEN_TTL, token_type=CONF_TOKEN_TYPE, conf=body)
    for session_id in ("victim-session", str(uuid.uuid4())):
        response = client.get(
            "/v2/proxy/auth", params={"app": "jupyter", "protocol": "http", "token": unbound, "session_id": session_id}
        )
        assert response.status_code == 403
        assert (
            client.get(
                f"/v2/proxy/{unbound}/{session_id}/add", params={"app": "jupyter", "protocol": "http"}
            ).status_code
            == 403
        )


def test_circuit_reuse_needs_the_same_user_and_exposure(client, as_manager, register, setup_permit):
    register(port_worker(first=20100, last=20109))
    session_id = str(uuid.uuid4())

    def open_as(user: str, **params):
        token = client.post("/v2/conf", json=conf_body(session_id, user_uuid=user), headers=as_manager).json()["token"]
        query = {"app": "jupyter", "protocol": "http", "token": token, "session_id": session_id, **params}
        response = client.get("/v2/proxy/auth", params=query, headers={"Accept": "application/json"})
        assert response.status_code == 200, response.text
        return response.json()

    first = open_as("owner", allowed_client_ips="10.1.0.0/16")
    assert open_as("owner", allowed_client_ips="10.1.0.0/16")["reuse"] is True
    for other in (
        open_as("intruder", allowed_client_ips="10.1.0.0/16"),
        open_as("owner", open_to_public=True, allowed_client_ips="10.1.0.0/16"),
        open_as("owner"),
        open_as("owner", allowed_client_ips="0.0.0.0/0"),
    ):
        assert other["reuse"] is False
        assert setup_permit(other["redirect_url"])["circuit"] != setup_permit(first["redirect_url"])["circuit"]


def test_conf_refuses_a_kernel_host_the_outbound_policy_refuses(client, as_manager, monkeypatch):
    """Attack replay: /v2/conf is open by default (as upstream ships it), so whoever reaches it could
    aim a circuit at the cloud metadata service or any internal address. The kernels allowlist
    decides before any token is issued, without connecting (a fake DNS stands in)."""
    from tests.outbound_policies import use_deployed_policy

    use_deployed_policy(monkeypatch, {"metadata.internal": ["169.254.169.254"], "kernel.internal": ["10.0.4.9"]})
    for host in ("169.254.169.254", "metadata.internal", "127.0.0.1", "::ffff:169.254.169.254"):
        refused = client.post("/v2/conf", json=conf_body(str(uuid.uuid4())) | {"kernel_host": host}, headers=as_manager)
        assert refused.status_code == 400, (host, refused.text)
        assert "outbound-URL policy" in refused.text and "token" not in refused.json()
    admitted = client.post(
        "/v2/conf", json=conf_body(str(uuid.uuid4())) | {"kernel_host": "kernel.internal"}, headers=as_manager
    )
    assert admitted.status_code == 200 and "token" in admitted.json()


def test_endpoints_refuse_a_route_to_a_refused_kernel_host(client, as_manager):
    from aiplane.appproxy.circuits import find_circuit
    from aiplane.appproxy.endpoints import endpoint_circuit_id
    from tests.integration.appproxy.conftest import endpoint_body

    bad = [{"session_id": "s", "kernel_host": "169.254.169.254", "kernel_port": 80}]
    endpoint_id = str(uuid.uuid4())
    refused = client.post(f"/v2/endpoints/{endpoint_id}", json=endpoint_body(vllm=bad), headers=as_manager)
    assert refused.status_code == 400 and "kernels may not reach 169.254.169.254" in refused.json()["error"]
    assert find_circuit(endpoint_circuit_id(endpoint_id)) is None  # nothing written
