"""The Telegram Bot API, as the poller uses it: `getUpdates` and `sendMessage`.

Requests are `POST <AIPLANE_TELEGRAM_API_BASE>/bot<token>/<method>` with a JSON body; answers are
`{"ok": true, "result": ...}` or `{"ok": false, "error_code", "description"}`. Calls go through the
outbound-URL policy (purpose `telegram`). An error never carries the token: it is in the URL, and
httpx may name the URL in its messages, so those are scrubbed.
"""

from __future__ import annotations

from typing import Any

from aiplane import outbound, outbound_policy
from aiplane.settings import get_settings

TELEGRAM = "telegram"  # the outbound-URL policy purpose
REQUEST_TIMEOUT_S = 15.0
MAX_MESSAGE_CHARS = 4096  # sendMessage refuses longer texts


class BotApiError(Exception):
    """The Bot API failed or refused (HTTP error, `ok: false`, unreachable); the text is safe to store."""


def call(token: str, method: str, payload: dict[str, Any]) -> Any:
    """The method's `result`, or BotApiError."""
    url = f"{get_settings().telegram_api_base.rstrip('/')}/bot{token}/{method}"
    try:
        # An error status still answers in the Bot API's terms (read below).
        response = outbound.send(TELEGRAM, "POST", url, json=payload, timeout=REQUEST_TIMEOUT_S, check_status=False)
    except (outbound.OutboundError, outbound_policy.OutboundRefused) as error:
        what = error.cause_name if isinstance(error, outbound.OutboundError) else type(error).__name__
        raise BotApiError(f"{method}: {what}: {str(error).replace(token, '<token>')}") from None
    try:
        answer = response.json()
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        raise BotApiError(f"{method}: HTTP {response.status_code}, not a Bot API answer")
    if response.is_error or not answer.get("ok"):
        description = str(answer.get("description") or "no description").replace(token, "<token>")
        raise BotApiError(
            f"{method}: HTTP {response.status_code}: {answer.get('error_code', response.status_code)} {description}"
        )
    return answer.get("result")


def get_updates(token: str, offset: int, limit: int) -> list[dict[str, Any]]:
    """Updates from `offset` on (asking with it confirms every update below it), without waiting."""
    result = call(token, "getUpdates", {"offset": offset, "limit": limit, "timeout": 0, "allowed_updates": ["message"]})
    if not isinstance(result, list):
        raise BotApiError("getUpdates: the result is not a list of updates")
    return result


def send_message(token: str, chat_id: int | str, text: str, reply_to: int | None = None) -> None:
    payload: dict[str, Any] = {"chat_id": chat_id, "text": text[:MAX_MESSAGE_CHARS] or "…"}
    if reply_to is not None:
        payload["reply_parameters"] = {"message_id": reply_to, "allow_sending_without_reply": True}
    call(token, "sendMessage", payload)
