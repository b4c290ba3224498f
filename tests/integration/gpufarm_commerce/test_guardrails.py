"""Spending guardrails: windows, checks, atomic records under concurrency, admin resets."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from aiplane.commerce import guardrails
from aiplane.errors import PaymentRequiredError

SPENDING = "/api/v1/guardrails/spending"


def record(gpufarm, headers, amount):
    return gpufarm.post(f"{SPENDING}/record", json={"amount": amount}, headers=headers)


def test_a_fresh_account_has_spent_nothing(gpufarm, user):
    response = gpufarm.get(SPENDING, headers=user.headers)
    assert response.status_code == 200
    assert response.json() == {
        "window_spent": 0.0,
        "window_limit": 1000.0,
        "window_name": "monthly",
        "percentage_used": 0.0,
        "violations": [],
    }


def test_recorded_spend_adds_up_in_every_window(gpufarm, user):
    assert record(gpufarm, user.headers, 25.50).json() == {
        "message": "Spending recorded successfully",
        "new_total": 25.5,
    }
    assert record(gpufarm, user.headers, 10).json()["new_total"] == 35.5
    monthly = gpufarm.get(SPENDING, headers=user.headers).json()
    assert monthly["window_spent"] == 35.5 and monthly["percentage_used"] == 3.55
    hourly = gpufarm.get(f"{SPENDING}?window=hourly", headers=user.headers).json()
    assert hourly["window_name"] == "hourly" and hourly["window_spent"] == 35.5 and hourly["window_limit"] == 100.0
    assert gpufarm.get(f"{SPENDING}?window=weekly", headers=user.headers).status_code == 400


def test_check_allows_a_spend_that_fits(gpufarm, user):
    record(gpufarm, user.headers, 20)
    response = gpufarm.post(f"{SPENDING}/check", json={"estimated_cost": 50.00}, headers=user.headers)
    assert response.status_code == 200
    assert response.json() == {"allowed": True, "spent": 20.0, "limit": 1000.0}


def test_check_refuses_a_spend_over_a_limit_with_402_in_the_envelope(gpufarm, user):
    record(gpufarm, user.headers, 70)
    response = gpufarm.post(f"{SPENDING}/check", json={"estimated_cost": 35}, headers=user.headers)
    assert response.status_code == 402
    body = response.json()
    assert set(body) == {"error", "code", "details"} and body["code"] == "SPENDING_LIMIT"
    assert body["details"] == {
        "allowed": False,
        "violations": [{"window": "hourly", "spent": 105.0, "limit": 100.0}],
        "spent": 70.0,
    }


def test_a_record_over_a_limit_is_refused_and_changes_nothing(gpufarm, user):
    record(gpufarm, user.headers, 90)
    refused = record(gpufarm, user.headers, 20)
    assert refused.status_code == 402 and refused.json()["code"] == "SPENDING_LIMIT"
    assert refused.json()["details"]["violations"] == [{"window": "hourly", "spent": 110.0, "limit": 100.0}]
    assert record(gpufarm, user.headers, 500).status_code == 402  # larger than a whole window's limit
    assert gpufarm.get(SPENDING, headers=user.headers).json()["window_spent"] == 90.0
    assert record(gpufarm, user.headers, 10).status_code == 200
    exhausted = gpufarm.get(SPENDING, headers=user.headers).json()
    assert exhausted["violations"] == [{"window": "hourly", "spent": 100.0, "limit": 100.0}]


def test_concurrent_records_never_exceed_the_limit(user):
    def attempt(_: int) -> bool:
        try:
            guardrails.record(user.id, 15_00)
        except PaymentRequiredError:
            return False
        return True

    with ThreadPoolExecutor(10) as pool:
        outcomes = list(pool.map(attempt, range(20)))
    assert outcomes.count(True) == 6  # 6 x 15 = 90 fits the hourly 100, a 7th would not
    assert guardrails.spending(user.id)["hourly"].spent_cents == 90_00


def test_concurrent_records_through_the_api(gpufarm, user):
    with ThreadPoolExecutor(8) as pool:
        statuses = [r.status_code for r in pool.map(lambda _: record(gpufarm, user.headers, 30), range(8))]
    assert sorted(statuses) == [200] * 3 + [402] * 5
    assert gpufarm.get(f"{SPENDING}?window=hourly", headers=user.headers).json()["window_spent"] == 90.0


def test_invalid_amounts_are_400(gpufarm, user):
    for body in ({}, {"amount": -1}, {"amount": 0}, {"amount": 0.001}, {"amount": "x"}):
        response = gpufarm.post(f"{SPENDING}/record", json=body, headers=user.headers)
        assert response.status_code == 400 and response.json()["code"] == "VALIDATION_ERROR", body
    assert gpufarm.post(f"{SPENDING}/check", json={"estimated_cost": -3}, headers=user.headers).status_code == 400
    assert gpufarm.get(SPENDING, headers=user.headers).json()["window_spent"] == 0.0


def test_only_admins_reset_and_may_act_for_a_user(gpufarm, user, make_user, admin):
    record(gpufarm, user.headers, 80)
    refused = gpufarm.post(f"{SPENDING}/reset", json={"window_name": "hourly"}, headers=user.headers)
    assert refused.status_code == 403 and refused.json()["code"] == "FORBIDDEN"
    other = make_user()
    assert gpufarm.get(f"{SPENDING}?user_id={user.id}", headers=other.headers).status_code == 403
    assert gpufarm.get(f"{SPENDING}?user_id={user.id}", headers=admin).json()["window_spent"] == 80.0
    assert (
        gpufarm.post(f"{SPENDING}/reset", json={"window_name": "yearly", "user_id": user.id}, headers=admin).status_code
        == 400
    )
    reset = gpufarm.post(f"{SPENDING}/reset", json={"window_name": "hourly", "user_id": user.id}, headers=admin)
    assert reset.status_code == 200 and reset.json() == {"message": "Spending reset successfully"}
    assert gpufarm.get(f"{SPENDING}?window=hourly", headers=user.headers).json()["window_spent"] == 0.0
    assert gpufarm.get(SPENDING, headers=user.headers).json()["window_spent"] == 80.0  # monthly untouched
    assert record(gpufarm, user.headers, 50).status_code == 200
