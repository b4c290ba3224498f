"""The Telegram poller against a stand-in Bot API and a stand-in model: a user's message is
answered by the frontend's chat chain, the offset advances exactly once, Bot API errors are
recorded on the frontend, and the scheduled worker does it on its tick."""

from __future__ import annotations

import boto3

from aiplane.telegram import poller
from aiplane.telegram.frontends import get_frontend
from aiplane_shared import resources


def poll(frontend_id: str) -> str:
    return poller.poll_frontend(get_frontend(frontend_id))


def test_a_users_message_is_answered_by_the_bot_and_the_offset_advances_once(runtime, bot_api, llm, frontend):
    body, token = frontend
    assert body["status"] == "pending" and body["lastHeartbeat"] is None  # no poll has reached the bot yet
    update_id = bot_api.user_says(token, "hello bot")

    assert poll(body["id"]) == "active"
    assert bot_api.answers_to(token) == ["echo: hello bot"]
    assert bot_api.sent[-1]["chat_id"] == 4242 and bot_api.sent[-1]["reply_to"] == update_id * 10
    stored = runtime.get(f"/telegram-frontends/{body['id']}").json()
    assert stored["status"] == "active" and stored["lastOffset"] == update_id + 1
    assert stored["lastHeartbeat"] and stored["lastError"] is None

    assert poll(body["id"]) == "active"  # the next poll confirms the update and answers nothing again
    assert bot_api.answers_to(token) == ["echo: hello bot"]
    assert [offset for bot, offset in bot_api.offsets if bot == token] == [0, update_id + 1]
    assert runtime.get(f"/telegram-frontends/{body['id']}").json()["lastOffset"] == update_id + 1


def test_several_messages_are_answered_in_order(runtime, bot_api, llm, frontend):
    body, token = frontend
    ids = [bot_api.user_says(token, text) for text in ("one", "two", "three")]
    poll(body["id"])
    assert bot_api.answers_to(token) == ["echo: one", "echo: two", "echo: three"]
    assert runtime.get(f"/telegram-frontends/{body['id']}").json()["lastOffset"] == ids[-1] + 1


def test_bot_api_errors_are_recorded_and_the_token_never_is(runtime, bot_api, llm, frontend):
    body, token = frontend
    del bot_api.bots[token]  # the stand-in no longer knows the token: 401 Unauthorized, as Telegram answers
    assert poll(body["id"]) == "error"
    stored = runtime.get(f"/telegram-frontends/{body['id']}").json()
    assert stored["status"] == "error" and "getUpdates" in stored["lastError"] and "401" in stored["lastError"]
    assert "Unauthorized" in stored["lastError"] and token.split(":")[1] not in stored["lastError"]

    bot_api.add_bot(token)  # fixed: the next poll reaches the bot and the frontend becomes active
    bot_api.user_says(token, "back")
    assert poll(body["id"]) == "active"
    stored = runtime.get(f"/telegram-frontends/{body['id']}").json()
    assert stored["status"] == "active" and stored["lastError"] is None
    assert bot_api.answers_to(token) == ["echo: back"]


def test_a_failed_send_keeps_the_update_and_the_retry_answers_it_once(runtime, bot_api, llm, frontend):
    body, token = frontend
    update_id = bot_api.user_says(token, "are you there")
    bot_api.failures.append(("sendMessage", 429, "Too Many Requests: retry after 1"))
    assert poll(body["id"]) == "error"
    stored = runtime.get(f"/telegram-frontends/{body['id']}").json()
    assert (
        stored["lastOffset"] == 0
        and "sendMessage" in stored["lastError"]
        and "Too Many Requests" in stored["lastError"]
    )
    assert bot_api.answers_to(token) == []

    assert poll(body["id"]) == "active"
    assert poll(body["id"]) == "active"
    assert bot_api.answers_to(token) == ["echo: are you there"]  # answered once, not lost
    assert runtime.get(f"/telegram-frontends/{body['id']}").json()["lastOffset"] == update_id + 1


def test_ok_false_with_http_200_is_an_error_too(runtime, bot_api, llm, frontend):
    body, token = frontend
    bot_api.failures.append(("getUpdates", 200, "Conflict: terminated by other getUpdates request"))
    assert poll(body["id"]) == "error"
    assert "Conflict" in runtime.get(f"/telegram-frontends/{body['id']}").json()["lastError"]


def test_a_failing_chat_chain_is_answered_with_an_apology_and_recorded(runtime, bot_api, llm, frontend):
    body, token = frontend
    llm.failures_left = 10  # the model backend keeps failing
    update_id = bot_api.user_says(token, "hi")
    assert poll(body["id"]) == "active"  # the bot was reached: the chain's failure is not the bot's
    assert bot_api.answers_to(token) == [poller.SORRY]
    stored = runtime.get(f"/telegram-frontends/{body['id']}").json()
    assert stored["lastOffset"] == update_id + 1 and "chat chain" in stored["lastError"]


def test_paused_frontends_are_not_polled_and_resuming_waits_for_a_poll(runtime, bot_api, llm, frontend):
    body, token = frontend
    assert poll(body["id"]) == "active"
    paused = runtime.put(f"/telegram-frontends/{body['id']}", json={"status": "paused"}).json()
    assert paused["status"] == "paused"
    bot_api.user_says(token, "anyone?")
    assert poll(body["id"]) == "busy" and bot_api.answers_to(token) == []
    assert body["id"] not in poller.poll_due()
    resumed = runtime.put(f"/telegram-frontends/{body['id']}", json={"status": "active"}).json()
    assert resumed["status"] == "pending"
    assert poll(body["id"]) == "active" and bot_api.answers_to(token) == ["echo: anyone?"]


def test_a_poll_in_progress_holds_the_frontend(runtime, bot_api, llm, frontend):
    body, token = frontend
    record = get_frontend(body["id"])
    assert poller._lease(record)
    bot_api.user_says(token, "once")
    assert poll(body["id"]) == "busy"  # a second poller does not answer the same update
    poller._release(record)
    assert poll(body["id"]) == "active" and bot_api.answers_to(token) == ["echo: once"]


def test_the_bot_api_base_passes_the_outbound_policy(runtime, bot_api, llm, frontend, set_setting):
    """Replays: an operator setting pointing the poller at the metadata service; refused before connecting."""
    body, _ = frontend
    set_setting("AIPLANE_TELEGRAM_API_BASE", "http://169.254.169.254")
    assert poll(body["id"]) == "error"
    assert "outbound-URL policy" in runtime.get(f"/telegram-frontends/{body['id']}").json()["lastError"]


def test_the_scheduled_worker_polls_the_due_frontends(runtime, bot_api, llm, frontend, local_stack):
    body, token = frontend
    bot_api.user_says(token, "via the schedule")
    queue = resources.TELEGRAM_POLL_QUEUE
    sqs = boto3.client("sqs", region_name=local_stack.dispatchers.region)
    url = local_stack.provisioned.queue_urls[queue.name]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    local_stack.dispatchers.fire_schedule_once(resources.TELEGRAM_POLL_SCHEDULE)
    assert local_stack.dispatchers.deliver_once(sqs, queue, url, arn) == 1
    assert bot_api.answers_to(token) == ["echo: via the schedule"]
    assert runtime.get(f"/telegram-frontends/{body['id']}").json()["status"] == "active"
    assert (
        int(
            sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"][
                "ApproximateNumberOfMessages"
            ]
        )
        == 0
    )


def test_a_new_token_waits_for_a_successful_poll(runtime, bot_api, llm, frontend):
    body, token = frontend
    assert poll(body["id"]) == "active"
    new_token = token.split(":")[0] + ":" + "N" * 30
    bot_api.add_bot(new_token)
    changed = runtime.put(f"/telegram-frontends/{body['id']}", json={"botToken": new_token}).json()
    assert changed["status"] == "pending"
    bot_api.user_says(new_token, "new bot")
    assert poll(body["id"]) == "active" and bot_api.answers_to(new_token) == ["echo: new bot"]
    paused = runtime.put(f"/telegram-frontends/{body['id']}", json={"status": "paused"}).json()
    assert (
        runtime.put(f"/telegram-frontends/{body['id']}", json={"botToken": token}).json()["status"]
        == paused["status"]
        == "paused"
    )
