"""Payments, transactions, credits and the account export."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

from aiplane.commerce import billing

PAYMENT = {
    "amount": 100.00,
    "currency": "USD",
    "provider": "stripe",
    "payment_preference": {"type": "card", "card_token": "tok_visa"},
}


def pay(gpufarm, admin, user, body=PAYMENT, key: str | None = None):
    """An operator records a payment received from the user (no card processor is integrated)."""
    extra = {"Idempotency-Key": key} if key else {}
    return gpufarm.post(
        "/api/v1/billing/payment", json={**body, "user_id": user.id}, headers={**admin, **extra, "X-Billing": "stripe"}
    )


def test_a_user_cannot_credit_their_own_account(gpufarm, user):
    """The attack: a fresh sign-up 'pays' with any card token and launches GPUs on the operator's bill."""
    for body in (PAYMENT, {**PAYMENT, "user_id": user.id}):
        response = gpufarm.post("/api/v1/billing/payment", json=body, headers={**user.headers, "X-Billing": "stripe"})
        assert response.status_code == 403 and "administrator" in response.json()["error"], response.text
    assert billing.balance_cents(user.id) == 0
    assert gpufarm.get("/api/v1/billing/transactions", headers=user.headers).json()["count"] == 0
    launched = gpufarm.post("/api/v1/gpu/instances/batch", json={"aws_count": 1}, headers=user.headers)
    assert launched.status_code == 402, launched.text


def test_payment_creates_a_succeeded_transaction_and_credits(gpufarm, user, admin):
    response = pay(gpufarm, admin, user)
    assert response.status_code == 201, response.text
    transaction = response.json()["transaction"]
    assert set(transaction) == {"id", "amount", "currency", "status", "created_at"}
    assert transaction["id"].startswith("txn_") and transaction["amount"] == 100.0
    assert transaction["currency"] == "USD" and transaction["status"] == "succeeded"
    listed = gpufarm.get("/api/v1/billing/transactions", headers=user.headers).json()
    assert listed == {"transactions": [transaction], "count": 1}
    assert billing.credits_of(user.id)[0]["balance"] == 100.0


def test_transactions_are_newest_first_and_page_by_created_at(gpufarm, user, admin):
    ids = [pay(gpufarm, admin, user, {**PAYMENT, "amount": amount}).json()["transaction"]["id"] for amount in (1, 2, 3)]
    first = gpufarm.get("/api/v1/billing/transactions?limit=2", headers=user.headers).json()
    assert [t["id"] for t in first["transactions"]] == ids[::-1][:2] and first["count"] == 2
    cursor = first["transactions"][-1]["created_at"]
    rest = gpufarm.get(
        "/api/v1/billing/transactions", params={"limit": 2, "cursor": cursor}, headers=user.headers
    ).json()
    assert [t["id"] for t in rest["transactions"]] == [ids[0]]
    assert billing.credits_of(user.id)[0]["balance"] == 6.0


def test_a_retried_payment_with_the_same_idempotency_key_is_credited_once(gpufarm, user, admin):
    key = f"order-{uuid.uuid4()}"
    first = pay(gpufarm, admin, user, key=key)
    again = pay(gpufarm, admin, user, key=key)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert gpufarm.get("/api/v1/billing/transactions", headers=user.headers).json()["count"] == 1
    assert billing.credits_of(user.id)[0]["balance"] == 100.0
    reused = pay(gpufarm, admin, user, {**PAYMENT, "amount": 5}, key=key)
    assert reused.status_code == 409 and reused.json()["code"] == "IDEMPOTENCY_CONFLICT"


def test_concurrent_retries_with_one_key_make_one_transaction(gpufarm, user, admin):
    key = f"order-{uuid.uuid4()}"
    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(lambda _: pay(gpufarm, admin, user, key=key), range(8)))
    assert {r.status_code for r in responses} == {201}
    assert len({r.json()["transaction"]["id"] for r in responses}) == 1
    assert billing.credits_of(user.id)[0]["balance"] == 100.0


def test_invalid_payments_are_refused_and_write_nothing(gpufarm, user, admin):
    for body, field in (
        ({**PAYMENT, "amount": -5}, "amount"),
        ({**PAYMENT, "amount": 0}, "amount"),
        ({**PAYMENT, "amount": 1.005}, "amount"),
        ({"currency": "USD"}, "amount"),
        ({**PAYMENT, "amount": "lots"}, "amount"),
        ({**PAYMENT, "currency": "XYZ"}, "currency"),
        ({**PAYMENT, "provider": "barter"}, "provider"),
    ):
        response = pay(gpufarm, admin, user, body)
        assert response.status_code == 400, body
        assert response.json()["code"] == "VALIDATION_ERROR" and response.json()["details"]["field"] == field
    assert gpufarm.get("/api/v1/billing/transactions", headers=user.headers).json() == {"transactions": [], "count": 0}
    assert billing.credits_of(user.id) == []


def test_users_see_only_their_own_transactions_and_admins_see_all(gpufarm, make_user, admin):
    alice, bob = make_user(), make_user()
    mine = pay(gpufarm, admin, alice).json()["transaction"]["id"]
    assert gpufarm.get("/api/v1/billing/transactions", headers=bob.headers).json()["count"] == 0
    assert gpufarm.get(f"/api/v1/billing/transactions?user_id={alice.id}", headers=bob.headers).status_code == 403
    everyone = gpufarm.get("/api/v1/billing/transactions", headers=admin).json()["transactions"]
    assert mine in {t["id"] for t in everyone}
    alices = gpufarm.get(f"/api/v1/billing/transactions?user_id={alice.id}", headers=admin).json()
    assert [t["id"] for t in alices["transactions"]] == [mine]


def test_the_account_export_holds_transactions_credits_and_quota(gpufarm, user, admin):
    transaction = pay(gpufarm, admin, user).json()["transaction"]
    gpufarm.post("/api/v1/guardrails/spending/record", json={"amount": 12.5}, headers=user.headers)
    export = gpufarm.get("/api/v1/user/export", headers=user.headers).json()
    assert export["transactions"] == [transaction]
    assert export["credits"][0]["balance"] == 100.0 and export["credits"][0]["currency"] == "USD"
    assert export["usage_quota"]["storage"]["used_bytes"] == 0
    assert export["usage_quota"]["spending"]["monthly"]["spent"] == 12.5
