"""Telegram message → answer latency: a stand-in Bot API and a stand-in OpenAI-compatible model
on loopback, the local stack (moto), and the poller as its scheduled worker runs it.

    .venv/bin/python bench/telegram.py [--messages 30] [--burst 10]

For each message a stand-in user writes to the bot, then one poll runs (getUpdates from the stored
offset, the frontend's chat chain on Step Functions, sendMessage); the latency is from the user's
message to the stand-in Bot API receiving the answer. It leaves out the wait for the next tick
(the schedule fires every minute in the cloud, every 5 s locally; a frontend's `syncInterval`).
A burst is `--burst` messages answered by one poll (they are answered one after another).
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO_ROOT)]

from aiplane_local.stack import start_local_stack  # noqa: E402  (before any boto3 client)


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=30)
    parser.add_argument("--burst", type=int, default=10)
    args = parser.parse_args()
    logging.disable(logging.INFO)

    from tests.integration.chains.stand_ins import StandInLLM
    from tests.integration.telegram.bot_api_standin import StandInBotApi
    from tests.integration.telegram.conftest import CHAT_CHAIN

    bot_api, llm = StandInBotApi(), StandInLLM()
    os.environ["AIPLANE_TELEGRAM_API_BASE"] = bot_api.url
    os.environ["AIPLANE_CHAINS_LLM_BASE_URL"] = llm.url
    from aiplane.settings import get_settings

    get_settings.cache_clear()  # read before the stand-ins had their ports
    assert get_settings().telegram_api_base == bot_api.url
    stack = start_local_stack(start_dispatchers=False)
    try:
        from fastapi.testclient import TestClient

        from aiplane.telegram import poller
        from aiplane.telegram.frontends import get_frontend
        from functions.family_app import build_family_app

        runtime = TestClient(build_family_app("runtime"), headers={"X-API-Key": stack.bootstrap["admin-api-key"]})
        chain_id = f"bench-telegram-{uuid.uuid4().hex[:6]}"
        assert runtime.post("/taskchains", json={"id": chain_id, **CHAT_CHAIN}).status_code == 201
        token = f"{uuid.uuid4().int % 10**9:09d}:{uuid.uuid4().hex}BENCH"
        bot_api.add_bot(token)
        frontend_id = runtime.post("/telegram-frontends", json={"botToken": token, "chatChain": chain_id}).json()["id"]

        def answered_after(texts: list[str]) -> list[float]:
            before = len(bot_api.sent)
            started = time.monotonic()
            for text in texts:
                bot_api.user_says(token, text)
            status = poller.poll_frontend(get_frontend(frontend_id))
            assert status == "active", (status, get_frontend(frontend_id).last_error)
            answers = bot_api.sent[before:]
            assert [a["text"] for a in answers] == [f"echo: {text}" for text in texts], answers
            return [(answer["at"] - started) * 1000 for answer in answers]

        answered_after(["warm-up"])
        single = [answered_after([f"message {n}"])[0] for n in range(args.messages)]
        started = time.monotonic()
        empty_polls = 10
        for _ in range(empty_polls):
            poller.poll_frontend(get_frontend(frontend_id))
        empty_ms = (time.monotonic() - started) * 1000 / empty_polls
        burst = answered_after([f"burst {n}" for n in range(args.burst)])

        print(
            f"message -> answer, one message per poll ({args.messages} messages): "
            f"median {statistics.median(single):.0f} ms, p95 {percentile(single, 0.95):.0f} ms"
        )
        print(f"a poll with no message (getUpdates + the frontend's bookkeeping): {empty_ms:.0f} ms")
        print(
            f"burst of {args.burst} messages in one poll: first answer {burst[0]:.0f} ms, last {burst[-1]:.0f} ms "
            f"({(burst[-1] - burst[0]) / max(1, len(burst) - 1):.0f} ms per further message)"
        )
    finally:
        bot_api.stop()
        llm.stop()
        stack.stop()


if __name__ == "__main__":
    main()
