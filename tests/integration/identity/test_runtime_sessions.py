"""runtime sign-up, login, token refresh and the UI cookie session."""

from __future__ import annotations

from datetime import UTC, datetime

from aiplane.clock import rfc3339
from aiplane.identity.audit import FAILURE, auth_events_of, day_key
from aiplane.identity.models import AuthEventRecord
from aiplane.identity.users import user_by_email
from aiplane.settings import current_environment
from aiplane_shared.environments import Throttle
from tests.integration.identity.conftest import STRONG_PASSWORD, client_from, fresh_source, set_limits, unique_email


def test_register_returns_user_token_and_expiry_and_never_the_password(runtime):
    email = unique_email()
    response = runtime.post(
        "/register", json={"email": email, "password": STRONG_PASSWORD, "friendlyName": "Ada", "allowedResources": []}
    )
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"user", "token", "expires_at"}
    assert set(body["user"]) == {"id", "friendlyName", "email", "subject", "createdAt", "updatedAt"}
    assert body["user"]["email"] == email and body["user"]["friendlyName"] == "Ada"
    assert datetime.fromisoformat(body["expires_at"]) > datetime.fromisoformat(body["user"]["createdAt"])
    assert "password" not in response.text.lower() and STRONG_PASSWORD not in response.text
    stored = user_by_email(email)
    assert stored.password_hash.startswith("$argon2id$")


def test_register_twice_with_one_email_is_a_conflict(runtime, family_clients):
    email = unique_email()
    assert runtime.post("/register", json={"email": email, "password": STRONG_PASSWORD}).status_code == 201
    again = runtime.post("/register", json={"email": email.upper(), "password": STRONG_PASSWORD})
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "conflict"
    # one store for every family
    gpufarm = family_clients["gpufarm"].post(
        "/api/v1/auth/register", json={"email": email, "password": STRONG_PASSWORD}
    )
    assert gpufarm.status_code == 409 and gpufarm.json()["code"] == "CONFLICT"


def test_weak_or_missing_password_or_email_is_refused(runtime):
    for body in (
        {"email": unique_email()},
        {"email": unique_email(), "password": ""},
        {"email": unique_email(), "password": "short1"},
        {"email": unique_email(), "password": "onlyletters"},
        {"email": unique_email(), "password": "1234567890"},
        {"email": unique_email(), "password": "aaaaaaaa1"},
        {"password": STRONG_PASSWORD},
        {"email": "not-an-email", "password": STRONG_PASSWORD},
    ):
        response = runtime.post("/register", json=body)
        assert response.status_code == 400, (body, response.text)
        assert response.json()["error"]["type"] == "invalid_request_error"
    assert runtime.post("/register").status_code == 400


def test_self_registration_cannot_grant_itself_access(runtime):
    response = runtime.post(
        "/register",
        json={
            "email": unique_email(),
            "password": STRONG_PASSWORD,
            "allowedResources": [{"name": "server", "permission": "manage", "resourceType": "server"}],
        },
    )
    assert response.status_code == 403


def test_login_and_token_refresh(runtime, make_user):
    user = make_user()
    response = runtime.post("/login", json={"email": user.email, "password": user.password})
    assert response.status_code == 200
    body = response.json()
    assert body["user"]["id"] == user.id and body["token"] and body["expires_at"]
    assert runtime.get("/ui/me", headers={"Authorization": f"Bearer {body['token']}"}).json()["id"] == user.id

    refreshed = runtime.post("/token_refresh", json={"token": body["token"]})
    assert refreshed.status_code == 200
    assert refreshed.json()["token"] != body["token"] and refreshed.json()["user"]["id"] == user.id
    assert runtime.post("/token_refresh", json={"token": "not.a.token"}).status_code == 401
    assert runtime.post("/token_refresh", json={}).status_code == 401


def test_wrong_password_is_401_and_audited_without_secrets(make_user):
    client = client_from("runtime", fresh_source())
    user = make_user("audited")
    started = rfc3339(datetime.now(UTC))
    response = client.post("/login", json={"email": user.email, "password": "wrong-password-1"})
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"
    assert client.post("/login", json={"email": user.email, "password": user.password}).status_code == 200

    events = auth_events_of(user.id)
    assert [(event.action, event.outcome) for event in events][:2] == [("login", "success"), ("register", "success")]
    since_start = AuthEventRecord.by_day.query(day_key(FAILURE, events[0].at), AuthEventRecord.gsi2sk >= started)
    failures = [event for event in since_start if event.email == user.email and event.outcome == "failure"]
    assert failures and failures[0].reason == "wrong email or password"
    for event in [*events, *failures]:
        assert user.password not in str(event.attribute_values) and "wrong-password-1" not in str(
            event.attribute_values
        )


def per_account_and_source() -> int:
    return current_environment().login_failures_per_account_and_source.limit


def test_failures_from_one_source_do_not_lock_the_owner_out_elsewhere(make_user):
    """Replays: five wrong passwords from anyone locked the real owner out for 15 minutes."""
    user = make_user("throttled")
    attacker = client_from("runtime", fresh_source())
    for _ in range(per_account_and_source()):
        assert attacker.post("/login", json={"email": user.email, "password": "wrong-password-1"}).status_code == 401
    # that source now waits, even with the right password
    blocked = attacker.post("/login", json={"email": user.email, "password": user.password})
    assert blocked.status_code == 429
    assert int(blocked.headers["Retry-After"]) > 0
    assert blocked.json()["error"]["type"] == "rate_limit_error"
    # the owner, elsewhere, still signs in
    assert (
        client_from("runtime", fresh_source())
        .post("/login", json={"email": user.email, "password": user.password})
        .status_code
        == 200
    )


def test_a_slower_per_account_ceiling_stops_guessing_from_many_sources(make_user, monkeypatch):
    ceiling = per_account_and_source() + 2  # same mechanism as the real ceiling, fewer argon2 runs
    set_limits(monkeypatch, login_failures_per_account=Throttle(ceiling, 10**9))
    user = make_user("distributed")
    for _ in range(ceiling):
        guesser = client_from("runtime", fresh_source())
        assert guesser.post("/login", json={"email": user.email, "password": "wrong-password-1"}).status_code == 401
    assert (
        client_from("runtime", fresh_source())
        .post("/login", json={"email": user.email, "password": user.password})
        .status_code
        == 429
    )


def test_login_is_throttled_per_source_after_repeated_failures(make_user, monkeypatch):
    environment = current_environment()
    assert environment.login_failures_per_source.limit > per_account_and_source()
    source_limit = per_account_and_source() + 2  # same mechanism as the real limit, fewer argon2 runs
    set_limits(
        monkeypatch, login_failures_per_source=environment.login_failures_per_source._replace(limit=source_limit)
    )
    client = client_from("runtime", fresh_source())
    for index in range(source_limit):
        response = client.post("/login", json={"email": unique_email(f"nobody{index}"), "password": "wrong-password-1"})
        assert response.status_code == 401
    user = make_user("victim-of-source")
    assert client.post("/login", json={"email": user.email, "password": user.password}).status_code == 429
    assert (
        client_from("runtime", fresh_source())
        .post("/login", json={"email": user.email, "password": user.password})
        .status_code
        == 200
    )


def test_successful_logins_do_not_count_towards_the_throttle(make_user):
    user = make_user()
    client = client_from("runtime", fresh_source())
    for _ in range(per_account_and_source() + 2):
        assert client.post("/login", json={"email": user.email, "password": user.password}).status_code == 200


def test_registration_is_throttled_per_source(monkeypatch, family_clients):
    set_limits(monkeypatch, registrations_per_source=Throttle(3, 10**9))
    source = fresh_source()
    runtime, gpufarm = client_from("runtime", source), client_from("gpufarm", source)
    assert runtime.post("/register", json={"email": unique_email(), "password": STRONG_PASSWORD}).status_code == 201
    assert (
        runtime.post("/register", json={"email": "not-an-email", "password": STRONG_PASSWORD}).status_code == 400
    )  # counts too
    assert (
        gpufarm.post("/api/v1/auth/register", json={"email": unique_email(), "password": STRONG_PASSWORD}).status_code
        == 201
    )
    email = unique_email("fourth")
    refused = runtime.post("/ui/register", json={"email": email, "password": STRONG_PASSWORD})
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    refused = gpufarm.post("/api/v1/auth/register", json={"email": email, "password": STRONG_PASSWORD})
    assert refused.status_code == 429 and refused.json()["code"] == "RATE_LIMITED"
    assert user_by_email(email) is None  # nothing written
    assert (
        client_from("runtime", fresh_source())
        .post("/register", json={"email": email, "password": STRONG_PASSWORD})
        .status_code
        == 201
    )


def test_logout_ends_the_session_server_side(runtime, make_user):
    """Replays: after /ui/logout the old token still worked."""
    user = make_user("leaving")
    login = runtime.post("/ui/login", json={"email": user.email, "password": user.password})
    cookie = {"Cookie": f"auth_token={login.headers['set-cookie'].split(';')[0].split('=', 1)[1]}"}
    assert runtime.get("/ui/me", headers=cookie).status_code == 200
    assert runtime.post("/ui/logout", headers=cookie).status_code == 200
    refused = runtime.get("/ui/me", headers=cookie)
    assert refused.status_code == 401 and refused.json()["error"]["type"] == "authentication_error"
    assert runtime.post("/ui/token_refresh", headers=cookie).status_code == 401
    # logging out with a bearer token ends that token's session; other sessions of the user live on
    assert runtime.post("/ui/logout", headers=user.bearer).status_code == 200
    assert runtime.get("/ui/me", headers=user.bearer).status_code == 401
    assert runtime.post("/token_refresh", json={"token": user.token}).status_code == 401
    other = runtime.post("/login", json={"email": user.email, "password": user.password}).json()["token"]
    assert runtime.get("/ui/me", headers={"Authorization": f"Bearer {other}"}).status_code == 200
    assert [event.action for event in auth_events_of(user.id)].count("logout") == 2


def test_refresh_rotates_and_a_reused_token_ends_the_session(runtime, make_user):
    """Replays: refresh could be repeated forever with one token."""
    user = make_user("rotating")
    first = user.token
    second = runtime.post("/token_refresh", json={"token": first})
    assert second.status_code == 200
    second = second.json()["token"]
    # the replaced token is refused, as a credential and for another refresh
    assert runtime.get("/ui/me", headers={"Authorization": f"Bearer {first}"}).status_code == 401
    third = runtime.post("/token_refresh", json={"token": second}).json()["token"]
    assert runtime.get("/ui/me", headers={"Authorization": f"Bearer {third}"}).status_code == 200
    reused = runtime.post("/token_refresh", json={"token": first})
    assert reused.status_code == 401 and "already refreshed" in reused.json()["error"]["message"]
    # reuse means a copy leaked: the whole session ends, the newest token included
    assert runtime.get("/ui/me", headers={"Authorization": f"Bearer {third}"}).status_code == 401
    assert runtime.post("/token_refresh", json={"token": third}).status_code == 401


def test_ui_cookie_refresh_rotates_too(runtime, make_user):
    user = make_user("cookie-rotation")
    cookie = {"Cookie": f"auth_token={user.token}"}
    refreshed = runtime.post("/ui/token_refresh", headers=cookie)
    assert refreshed.status_code == 200
    new_cookie = {"Cookie": refreshed.headers["set-cookie"].split(";")[0]}
    assert runtime.get("/ui/me", headers=cookie).status_code == 401
    assert runtime.get("/ui/me", headers=new_cookie).status_code == 200
    assert runtime.post("/ui/token_refresh", headers=cookie).status_code == 401


def test_ui_session_cookie_flow(runtime, make_user):
    email = unique_email("ui")
    registered = runtime.post("/ui/register", json={"email": email, "password": STRONG_PASSWORD})
    assert registered.status_code == 201
    assert registered.json()["email"] == email
    assert_session_cookie(registered.headers["set-cookie"])

    login = runtime.post("/ui/login", json={"email": email, "password": STRONG_PASSWORD})
    assert login.status_code == 200 and login.json()["email"] == email
    cookie_header = login.headers["set-cookie"]
    assert_session_cookie(cookie_header)
    token = cookie_header.split(";")[0].split("=", 1)[1]
    cookie = {"Cookie": f"auth_token={token}"}  # Secure cookies are not replayed over http by the client

    me = runtime.get("/ui/me", headers=cookie)
    assert me.status_code == 200 and me.json()["email"] == email
    refreshed = runtime.post("/ui/token_refresh", headers=cookie)
    assert refreshed.status_code == 200 and refreshed.json() == "token refreshed"
    assert_session_cookie(refreshed.headers["set-cookie"])
    cookie = {"Cookie": refreshed.headers["set-cookie"].split(";")[0]}

    logout = runtime.post("/ui/logout", headers=cookie)
    assert logout.status_code == 200
    assert "auth_token=" in logout.headers["set-cookie"] and "Max-Age=0" in logout.headers["set-cookie"]
    assert runtime.get("/ui/me").status_code == 401
    assert runtime.post("/ui/token_refresh").status_code == 401
    assert runtime.get("/ui/me", headers={"Cookie": "auth_token=garbage"}).status_code == 401


def assert_session_cookie(header: str) -> None:
    attributes = {part.strip().split("=")[0].lower() for part in header.split(";")}
    assert header.startswith("auth_token=")
    assert {"httponly", "secure", "samesite", "path", "expires"} <= attributes
    assert "samesite=strict" in header.lower()
