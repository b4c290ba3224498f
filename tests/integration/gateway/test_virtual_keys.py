"""Virtual keys (LiteLLM's key API), budgets, rate limits and spend, with a stand-in Ollama on loopback.

The stand-in reports 3 prompt and 4 completion tokens for every chat, so prices set the cost exactly.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import boto3
import pytest
from fastapi.testclient import TestClient

from aiplane.data.models import ApiKeyRecord
from aiplane.identity.api_keys import hash_key
from aiplane.identity.models import AccessEntryRecord
from aiplane_shared.resources import SPEND_LOG_QUEUE
from tests.integration.gateway.conftest import join_registry_refresh
from tests.integration.gateway.standins import OllamaStandIn

OUTPUT_PRICE = 0.002  # per completion token; prompt tokens are free here, so a request costs 4 × 0.002
REQUEST_COST = 0.008


@pytest.fixture
def model(gateway, unique, set_setting):
    """A routed model with an output price, served by a stand-in Ollama."""
    ollama = OllamaStandIn("metered")
    name = unique("metered")
    group = gateway.group(unique("g"))
    gateway.join(group, backends=(gateway.backend(unique("b"), ollama.url),), models=(gateway.model(name),))
    set_setting(
        "AIPLANE_GATEWAY_PRICES", json.dumps({name: {"input_cost_per_token": 0, "output_cost_per_token": OUTPUT_PRICE}})
    )
    yield name
    ollama.stop()


@pytest.fixture
def user(runtime):
    """A registered runtime user allowed to call the gateway (edit on `exec`), with their JWT."""
    email = f"keys-{uuid.uuid4().hex[:10]}@example.com"
    registered = runtime.post(
        "/register", json={"email": email, "password": "correct-horse-42", "friendlyName": "k"}
    ).json()
    user_id = registered["user"]["id"]
    granted = runtime.post(
        "/access-control",
        json={"identity": user_id, "resource": "exec", "resourceType": "collection", "permission": "edit"},
    )
    assert granted.status_code == 201, granted.text
    return {
        "id": user_id,
        "grant": granted.json()["id"],
        "headers": {"X-API-Key": "", "Authorization": f"Bearer {registered['token']}"},
    }


def client_for(key: str) -> TestClient:
    from functions.family_app import build_family_app

    return TestClient(build_family_app("runtime"), raise_server_exceptions=False, headers={"X-API-Key": key})


def generate(runtime, headers=None, **fields) -> dict:
    response = runtime.post("/key/generate", json=fields, headers=headers or {})
    assert response.status_code == 200, response.text
    return response.json()


def chat(client, model: str, **extra):
    return client.post(
        "/v1/chat/completions", json={"model": model, "messages": [{"role": "user", "content": "hi"}], **extra}
    )


def settle_spend_logs(local_stack) -> None:
    """Run the spend-log worker over everything queued (no dispatcher threads in tests)."""
    local_stack.drain(SPEND_LOG_QUEUE)


def within_one_minute(margin_s: float = 30) -> None:
    """Start a burst early in a fixed minute, so that it ends in the same one."""
    if time.time() % 60 > 60 - margin_s:
        time.sleep(60.5 - time.time() % 60)


def test_generate_returns_a_key_that_authenticates_and_carries_its_limits(runtime, user, model, local_stack):
    created = generate(
        runtime,
        user["headers"],
        key_alias="ci",
        models=[model],
        max_budget=1.5,
        budget_duration="30d",
        rpm_limit=100,
        tpm_limit=10000,
        max_parallel_requests=5,
        metadata={"team": "ml"},
    )
    assert created["key"].startswith("aip_") and created["user_id"] == user["id"]
    key = client_for(created["key"])
    assert chat(key, model).status_code == 200
    settle_spend_logs(local_stack)
    info = runtime.get("/key/info", params={"key": created["key"]}, headers=user["headers"]).json()
    assert info["key"] == hash_key(created["key"])
    assert {
        name: info["info"][name]
        for name in (
            "key_alias",
            "max_budget",
            "budget_duration",
            "rpm_limit",
            "tpm_limit",
            "max_parallel_requests",
            "models",
            "metadata",
        )
    } == {
        "key_alias": "ci",
        "max_budget": 1.5,
        "budget_duration": "30d",
        "rpm_limit": 100,
        "tpm_limit": 10000,
        "max_parallel_requests": 5,
        "models": [model],
        "metadata": {"team": "ml"},
    }
    assert info["info"]["spend"] == pytest.approx(REQUEST_COST)
    assert info["info"]["budget_reset_at"]
    # The key calls only its models.
    assert chat(key, "someothermodel").status_code == 403


def test_a_budget_runs_out_exactly_at_its_limit_under_50_parallel_requests(runtime, user, model, local_stack):
    created = generate(runtime, user["headers"], max_budget=10 * REQUEST_COST)
    key = client_for(created["key"])
    with ThreadPoolExecutor(max_workers=50) as pool:
        statuses = list(pool.map(lambda _: chat(key, model, max_tokens=4), range(50)))
    codes = sorted(response.status_code for response in statuses)
    assert codes.count(200) == 10 and codes.count(400) == 40, codes
    refused = next(response for response in statuses if response.status_code == 400).json()
    assert refused["error"]["code"] == "budget_exceeded"
    settle_spend_logs(local_stack)
    assert runtime.get("/key/info", params={"key": created["key"]}).json()["info"]["spend"] == pytest.approx(
        10 * REQUEST_COST
    )
    # Settled and spent: the next request is refused too.
    assert chat(key, model, max_tokens=4).json()["error"]["code"] == "budget_exceeded"


def test_rpm_holds_under_concurrency_and_answers_429_with_retry_after(runtime, user, model):
    key = client_for(generate(runtime, user["headers"], rpm_limit=7)["key"])
    within_one_minute()
    with ThreadPoolExecutor(max_workers=30) as pool:
        responses = list(pool.map(lambda _: chat(key, model), range(30)))
    assert sorted(r.status_code for r in responses).count(200) == 7
    limited = next(r for r in responses if r.status_code == 429)
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert limited.json()["error"]["code"] == "rate_limit_exceeded"


def test_per_user_limits_cover_every_key_of_the_user(runtime, user, model):
    updated = runtime.post("/user/update", json={"user_id": user["id"], "rpm_limit": 2})
    assert updated.status_code == 200, updated.text
    first, second = (client_for(generate(runtime, user["headers"])["key"]) for _ in range(2))
    within_one_minute()
    assert [chat(first, model).status_code, chat(second, model).status_code, chat(first, model).status_code] == [
        200,
        200,
        429,
    ]
    # Only administrators set a user's limits.
    assert (
        runtime.post(
            "/user/update", json={"user_id": user["id"], "rpm_limit": 1000}, headers=user["headers"]
        ).status_code
        == 403
    )


def test_max_parallel_requests_refuses_the_overflow_and_frees_slots_when_done(runtime, user, model, monkeypatch):
    from aiplane.gateway import inference

    key = client_for(generate(runtime, user["headers"], max_parallel_requests=2)["key"])
    slow = inference.chat_completion

    def slow_completion(body):
        time.sleep(0.5)
        return slow(body)

    monkeypatch.setattr(inference, "chat_completion", slow_completion)
    with ThreadPoolExecutor(max_workers=6) as pool:
        codes = sorted(r.status_code for r in pool.map(lambda _: chat(key, model), range(6)))
    assert codes.count(200) == 2 and codes.count(429) == 4, codes
    monkeypatch.setattr(inference, "chat_completion", slow)
    assert [chat(key, model).status_code for _ in range(3)] == [200, 200, 200]


def test_streams_are_metered_and_spend_logs_list_each_request(runtime, user, model, local_stack):
    created = generate(runtime, user["headers"])
    key = client_for(created["key"])
    streamed = chat(key, model, stream=True)
    assert streamed.status_code == 200 and streamed.text.endswith("data: [DONE]\n\n")
    assert chat(key, model).status_code == 200
    settle_spend_logs(local_stack)
    logs = runtime.get("/spend/logs", params={"api_key": created["key"]}, headers=user["headers"]).json()
    assert len(logs) == 2 and all(
        log["user"] == user["id"] and log["api_key"] == hash_key(created["key"]) for log in logs
    )
    buffered = next(log for log in logs if log["completion_tokens"] == 4)
    assert (
        buffered["spend"] == pytest.approx(REQUEST_COST) and buffered["prompt_tokens"] == 3 and not buffered["unpriced"]
    )
    # A model without a price costs 0 and says so.
    assert all(log["unpriced"] is False for log in logs)


def test_a_model_without_a_price_costs_nothing_and_is_listed_as_unpriced(runtime, user, gateway, unique, local_stack):
    ollama = OllamaStandIn("free")
    try:
        name = unique("free")
        group = gateway.group(unique("g"))
        gateway.join(group, backends=(gateway.backend(unique("b"), ollama.url),), models=(gateway.model(name),))
        created = generate(runtime, user["headers"], max_budget=0.001)
        assert chat(client_for(created["key"]), name).status_code == 200
        settle_spend_logs(local_stack)
        [log] = runtime.get("/spend/logs", params={"api_key": created["key"]}, headers=user["headers"]).json()
        assert log["unpriced"] is True and log["spend"] == 0 and log["total_tokens"] == 7
    finally:
        ollama.stop()


def test_a_redelivered_spend_log_is_settled_once(runtime, user, model, local_stack):
    from aiplane.gateway import spend

    created = generate(runtime, user["headers"])
    sqs = boto3.client("sqs")
    url = local_stack.provisioned.queue_urls[SPEND_LOG_QUEUE.name]
    settle_spend_logs(local_stack)
    assert chat(client_for(created["key"]), model).status_code == 200
    [message] = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)["Messages"]
    body = json.loads(message["Body"])
    assert spend.settle(body) is True
    assert spend.settle(body) is False
    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    assert runtime.get("/key/info", params={"key": created["key"]}).json()["info"]["spend"] == pytest.approx(
        REQUEST_COST
    )


def test_users_manage_only_their_own_keys(runtime, user, model):
    other = runtime.post(
        "/register", json={"email": f"other-{uuid.uuid4().hex[:8]}@example.com", "password": "correct-horse-42"}
    ).json()
    mallory = {"X-API-Key": "", "Authorization": f"Bearer {other['token']}"}
    victim = generate(runtime, user["headers"], max_budget=1)["key"]
    # Mallory can neither read, raise, nor delete it, nor generate one in the victim's name.
    assert runtime.get("/key/info", params={"key": victim}, headers=mallory).status_code == 404
    assert runtime.post("/key/update", json={"key": victim, "max_budget": 1000}, headers=mallory).status_code == 404
    assert runtime.post("/key/delete", json={"keys": [victim]}, headers=mallory).status_code == 404
    assert runtime.post("/key/generate", json={"user_id": user["id"]}, headers=mallory).status_code == 403
    assert runtime.get("/key/info", params={"key": victim}, headers=user["headers"]).json()["info"]["max_budget"] == 1
    # An admin manages anyone's keys; the owner may delete theirs, and it stops authenticating.
    assert runtime.post("/key/update", json={"key": victim, "rpm_limit": 5}).json()["rpm_limit"] == 5
    assert runtime.post("/key/delete", json={"keys": [victim]}, headers=user["headers"]).json() == {
        "deleted_keys": [victim]
    }
    assert chat(client_for(victim), model).status_code == 401


def test_bad_limits_are_400_and_write_nothing(runtime, user):
    for body in ({"max_budget": -1}, {"budget_duration": "soon"}, {"duration": "3 days"}, {"rpm_limit": "many"}):
        response = runtime.post("/key/generate", json=body, headers=user["headers"])
        assert response.status_code == 400, (body, response.text)
    from aiplane.identity.api_keys import keys_of

    assert keys_of(user["id"]) == []


def test_revocation_elsewhere_is_reflected_within_a_second(runtime, user, model, monkeypatch):
    """Another container revokes the key (a direct DynamoDB write, no in-process cache to drop)."""
    created = generate(runtime, user["headers"])
    key = client_for(created["key"])
    assert key.get("/defaultmodel").status_code == 200  # verified and cached
    ApiKeyRecord(f"APIKEY#{hash_key(created['key'])}", "META").update(actions=[ApiKeyRecord.revoked.set(True)])
    revoked_at = time.monotonic()
    while True:  # every request sent 1 s or more after the revocation is refused
        sent = time.monotonic()
        status = key.get("/defaultmodel").status_code
        if status == 401:
            break
        assert status == 200 and sent - revoked_at < 1.0, "a revoked key still worked after 1 s"
        time.sleep(0.05)


def test_the_gateway_refuses_a_key_revoked_elsewhere_on_its_very_next_admission(runtime, user, model):
    created = generate(runtime, user["headers"], rpm_limit=1000)
    key = client_for(created["key"])
    assert chat(key, model).status_code == 200
    ApiKeyRecord(f"APIKEY#{hash_key(created['key'])}", "META").update(actions=[ApiKeyRecord.revoked.set(True)])
    assert chat(key, model).status_code == 401


def test_one_dynamodb_call_per_request_with_a_user_key_and_limits_on(
    runtime, user, model, moved_clock, monkeypatch, set_setting
):
    """Every DynamoDB call of the request path (boto3's and PynamoDB's go through botocore's client) is counted,
    over a span of the caches' clock well past the key's and permission's cache and the routing snapshot's 5 s."""
    from botocore.client import BaseClient

    # 3 s instead of 1 s: a request slowed by a loaded machine must not outlast the trust an admission renewed.
    set_setting("AIPLANE_KEY_CACHE_S", "3")

    created = generate(
        runtime, user["headers"], max_budget=100, budget_duration="1d", rpm_limit=10_000, tpm_limit=10_000_000
    )
    assert (
        runtime.post("/user/update", json={"user_id": user["id"], "max_budget": 100, "rpm_limit": 10_000}).status_code
        == 200
    )
    key = client_for(created["key"])
    for _ in range(3):  # warm: key verified, routing table and permissions cached
        assert chat(key, model).status_code == 200
    calls: list[str] = []
    refreshed: list[str] = []
    make_api_call = BaseClient._make_api_call

    def counting(client, operation, params):
        if client.meta.service_model.service_name == "dynamodb":
            table = params.get("TableName") or next(iter(params.get("TransactItems", [{}])[0].values()), {}).get(
                "TableName"
            )
            background = threading.current_thread().name == "registry-refresh"
            (refreshed if background else calls).append(f"{operation} {table}")
        return make_api_call(client, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", counting)
    requests = 30
    for _ in range(requests):  # 0.4 s apart on the caches' clock: 12 s in all
        moved_clock.advance(0.4)
        assert chat(key, model).status_code == 200
    join_registry_refresh()
    monkeypatch.setattr(BaseClient, "_make_api_call", make_api_call)
    # The admission transaction alone: it re-checks the key, its user and the access grant, so none of them is
    # read again while requests keep coming; the routing snapshot is reloaded off the request path.
    assert calls == ["TransactWriteItems aiplane-local-identity"] * requests
    assert refreshed and set(refreshed) == {"Query aiplane-local-runtime"}


def test_a_grant_withdrawn_elsewhere_is_refused_by_the_very_next_request(runtime, user, model):
    """Another container deletes the user's access entry (a direct DynamoDB delete: no in-process cache dropped)."""
    key = client_for(generate(runtime, user["headers"], rpm_limit=1000)["key"])
    assert chat(key, model).status_code == 200
    AccessEntryRecord(f"ACCESS#{user['grant']}", "META").delete()
    refused = chat(key, model)
    assert refused.status_code == 403 and refused.json()["error"]["message"] == "edit permission on 'exec' required"
    assert chat(key, model).status_code == 403


def test_a_grant_changed_elsewhere_is_looked_up_again_by_the_next_admission(runtime, user, model):
    key = client_for(generate(runtime, user["headers"], rpm_limit=1000)["key"])
    assert chat(key, model).status_code == 200
    entry = AccessEntryRecord(f"ACCESS#{user['grant']}", "META")
    entry.update(actions=[AccessEntryRecord.permission.set("manage")])
    assert chat(key, model).status_code == 200  # still enough: admitted on the grant as it is now
    entry.update(actions=[AccessEntryRecord.permission.set("view")])
    assert chat(key, model).status_code == 403  # not enough for a completion any more
    assert key.get("/defaultmodel").status_code == 200  # enough to read


def test_tpm_admits_while_the_minutes_settled_tokens_are_below_the_limit(runtime, user, model, local_stack):
    settle_spend_logs(local_stack)  # earlier tests' logs first
    within_one_minute()
    key = client_for(generate(runtime, user["headers"], tpm_limit=7)["key"])
    assert chat(key, model).status_code == 200
    settle_spend_logs(local_stack)  # 7 tokens counted in this minute
    refused = chat(key, model)
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1


def test_a_models_limits_hold_across_all_its_callers(runtime, user, model, set_setting):
    within_one_minute()
    set_setting("AIPLANE_GATEWAY_MODEL_LIMITS", json.dumps({model: {"rpm_limit": 3}}))
    first, second = (client_for(generate(runtime, user["headers"])["key"]) for _ in range(2))
    codes = [chat(client, model).status_code for client in (first, second, first, second, runtime)]
    assert codes == [200, 200, 200, 429, 429]  # the admin's key too: the limit is the model's


@pytest.fixture
def short_lease(set_setting):
    set_setting("AIPLANE_GATEWAY_LEASE_S", "4")


def test_a_killed_requests_parallel_slot_expires_and_is_taken_back(runtime, user, model, monkeypatch):
    """The Lambda serving a request dies before freeing its slot (its release never runs): the slot's lease
    expires, and the next admission refused for want of a slot takes it back."""
    from aiplane.gateway import limits
    from aiplane.identity.models import GatewayLimitRecord

    created = generate(runtime, user["headers"], max_parallel_requests=1)
    key = client_for(created["key"])
    release = limits.release
    monkeypatch.setattr(limits, "release", lambda admission: None)  # killed before it frees its slot
    assert chat(key, model).status_code == 200
    monkeypatch.setattr(limits, "release", release)
    refused = chat(key, model)
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "1", refused.text
    key_id = ApiKeyRecord.get(f"APIKEY#{hash_key(created['key'])}", "META").key_id
    item = GatewayLimitRecord.get(f"LIMIT#key#{key_id}", "INFLIGHT", consistent_read=True)
    (killed,) = item.leases.as_dict()
    # The lease's time passes (AIPLANE_GATEWAY_LEASE_S, 120 s): its expiry is now behind us.
    item.update(actions=[GatewayLimitRecord.leases[killed].set(int(time.time()) - 1)])
    assert chat(key, model).status_code == 200  # the lease expired: its slot was taken back
    assert chat(key, model).status_code == 200  # and that request freed it as it ended


def test_a_long_stream_renews_its_parallel_slot(runtime, user, model, short_lease, monkeypatch):
    from aiplane.gateway import inference

    key = client_for(generate(runtime, user["headers"], max_parallel_requests=1)["key"])

    def slow_stream(body, on_usage=None):
        for index in range(10):  # 7.5 s, about twice the lease
            time.sleep(0.75)
            yield f"data: {json.dumps({'choices': [{'index': 0, 'delta': {'content': str(index)}}]})}\n\n"
        yield "data: [DONE]\n\n"

    monkeypatch.setattr(inference, "chat_completion_stream", slow_stream)
    with ThreadPoolExecutor(max_workers=1) as pool:
        streaming = pool.submit(chat, key, model, stream=True)
        time.sleep(5)  # past the first lease: only a renewal keeps the slot
        assert chat(key, model).status_code == 429
        assert streaming.result().status_code == 200
    monkeypatch.undo()
    assert chat(key, model).status_code == 200


def test_chain_model_calls_are_metered_and_limited_like_direct_calls(runtime, user, model, local_stack):
    """A chain run with a user's key: its model call is admitted under the key's limits and its spend
    reaches the key (the chain step passes the caller to the gateway: aiplane.chains.llm_port)."""
    granted = runtime.post(
        "/access-control",
        json={"identity": user["id"], "resource": "chains", "resourceType": "collection", "permission": "edit"},
    )
    assert granted.status_code == 201, granted.text
    within_one_minute()
    created = generate(runtime, user["headers"], rpm_limit=2)
    key = client_for(created["key"])
    chain = {
        "id": "metered",
        "tasks": [
            {
                "id": "ask",
                "handler": "raw_string",
                "execute_config": {"model": model},
                "transition": {"branches": [{"operator": "default", "goto": "end"}]},
            }
        ],
    }
    runs = [key.post("/tasks", json={"input": "hi", "inputType": "string", "chain": chain}) for _ in range(3)]
    assert [run.status_code for run in runs[:2]] == [200, 200], runs[0].text
    assert runs[2].status_code == 400 and "per minute (rpm 2" in runs[2].json()["error"]["message"], runs[2].text
    settle_spend_logs(local_stack)
    info = runtime.get("/key/info", params={"key": created["key"]}, headers=user["headers"]).json()["info"]
    assert info["spend"] == pytest.approx(2 * REQUEST_COST)


def test_a_chains_streamed_final_step_is_metered_and_limited_too(runtime, user, model, local_stack):
    """The final model step a chain streams to its client (chains' stream path) is admitted and
    accounted for the chain's actor like a buffered call."""
    from aiplane.chains.llm_port import GatewayLLM, ModelChoice
    from aiplane.errors import RateLimitedError
    from aiplane.identity.authenticate import Credentials, authenticate

    within_one_minute()
    created = generate(runtime, user["headers"], rpm_limit=1)
    actor = authenticate("runtime", Credentials.from_headers({"x-api-key": created["key"]}))
    llm = GatewayLLM(caller=actor)
    streamed = llm.chat_stream([{"role": "user", "content": "hi"}], ModelChoice(models=(model,)))
    assert [delta for delta in streamed if delta.get("content")]
    with pytest.raises(RateLimitedError):
        list(llm.chat_stream([{"role": "user", "content": "hi"}], ModelChoice(models=(model,))))
    settle_spend_logs(local_stack)
    assert runtime.get("/key/info", params={"key": created["key"]}, headers=user["headers"]).json()["info"]["spend"] > 0


def test_a_transaction_conflict_on_a_busy_key_is_retried(runtime, user, model, monkeypatch):
    """DynamoDB cancels transactions meeting on one item (a busy key's counters) with TransactionConflict;
    moto serializes them instead, so the conflict is injected: the admission is sent again and passes."""
    from pynamodb.exceptions import CancellationReason, TransactWriteError, VerboseClientError
    from pynamodb.transactions import TransactWrite

    from aiplane.gateway import limits

    conflicts = [1]

    class Conflicting(TransactWrite):
        def __exit__(self, *raised):
            if conflicts and raised[0] is None:
                conflicts.pop()
                cause = VerboseClientError(
                    {"Error": {"Code": "TransactionCanceledException", "Message": "conflict"}},
                    "TransactWriteItems",
                    cancellation_reasons=[None, CancellationReason(code="TransactionConflict")],
                )
                raise TransactWriteError("Failed to write transaction items", cause)
            return super().__exit__(*raised)

    key = client_for(generate(runtime, user["headers"], rpm_limit=1000)["key"])
    monkeypatch.setattr(limits, "TransactWrite", Conflicting)
    assert chat(key, model).status_code == 200 and not conflicts


def test_a_chain_step_in_another_container_reads_its_actors_key(runtime, user, model):
    """A chain step's Lambda has not verified the run's key: admission reads it by its owner's index, and
    refuses it once revoked."""
    from aiplane.errors import InvalidCredentialsError
    from aiplane.gateway import limits
    from aiplane.identity import verified_keys
    from aiplane.identity.principal import USER, Principal

    created = generate(runtime, user["headers"], rpm_limit=5)
    key_hash = hash_key(created["key"])
    record = ApiKeyRecord.get(f"APIKEY#{key_hash}", "META")
    actor = Principal(id=user["id"], kind=USER, credential="chain", claims={"keyId": record.key_id})
    verified_keys.forget(key_hash)  # another container: nothing verified yet
    scopes, verified, _ = limits.scopes_for(actor, model)
    assert verified is not None and verified.key_hash == key_hash
    assert [scope.name for scope in scopes][0] == f"key#{record.key_id}" and scopes[0].limits.rpm_limit == 5
    record.update(actions=[ApiKeyRecord.revoked.set(True)])
    verified_keys.forget(key_hash)
    with pytest.raises(InvalidCredentialsError):
        limits.scopes_for(actor, model)
