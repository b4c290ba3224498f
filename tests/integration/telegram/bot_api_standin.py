"""A stand-in Telegram Bot API on 127.0.0.1 that speaks the real protocol: `POST /bot<token>/<method>`
with a JSON body, answering `{"ok": true, "result": ...}` or `{"ok": false, "error_code", "description"}`.

`getUpdates` forgets the updates below the `offset` it is asked with (that is how a bot confirms
them, as in Telegram) and answers the rest; `sendMessage` records what the bot said.
"""

from __future__ import annotations

import itertools
import re
import threading
import time
from typing import Any

from tests.integration.chains.stand_ins import StandInServer

_PATH = re.compile(r"^/bot(?P<token>[^/]+)/(?P<method>\w+)$")


class StandInBotApi(StandInServer):
    def __init__(self) -> None:
        self.bots: dict[str, list[dict[str, Any]]] = {}  # token -> updates not yet confirmed
        self.sent: list[dict[str, Any]] = []  # {"token", "chat_id", "text", "reply_to", "at"}
        self.offsets: list[tuple[str, int]] = []  # (token, offset) of every getUpdates
        self.failures: list[tuple[str, int, str]] = []  # (method, HTTP status, description) to answer next
        self.lock = threading.Lock()
        self._ids = itertools.count(1000)
        super().__init__(self._respond)

    def add_bot(self, token: str) -> None:
        self.bots.setdefault(token, [])

    def user_says(self, token: str, text: str, chat_id: int = 4242) -> int:
        """A Telegram user writes to the bot; returns the update's id."""
        with self.lock:
            update_id = next(self._ids)
            self.bots[token].append(
                {
                    "update_id": update_id,
                    "message": {
                        "message_id": update_id * 10,
                        "date": int(time.time()),
                        "text": text,
                        "chat": {"id": chat_id, "type": "private"},
                        "from": {"id": chat_id, "is_bot": False, "first_name": "Ada"},
                    },
                }
            )
        return update_id

    def answers_to(self, token: str) -> list[str]:
        return [message["text"] for message in self.sent if message["token"] == token]

    def _respond(self, method: str, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        match = _PATH.match(path)
        if method != "POST" or not match:
            return 404, {"ok": False, "error_code": 404, "description": "Not Found"}
        token, api_method = match["token"], match["method"]
        with self.lock:
            if token not in self.bots:
                return 401, {"ok": False, "error_code": 401, "description": "Unauthorized"}
            failure = next((f for f in self.failures if f[0] == api_method), None)
            if failure:
                self.failures.remove(failure)
                return failure[1], {"ok": False, "error_code": failure[1], "description": failure[2]}
            if api_method == "getUpdates":
                offset = int(body.get("offset") or 0)
                self.offsets.append((token, offset))
                pending = [u for u in self.bots[token] if u["update_id"] >= offset]
                self.bots[token] = pending
                return 200, {"ok": True, "result": pending[: int(body.get("limit") or 100)]}
            if api_method == "sendMessage":
                if not body.get("text"):
                    return 400, {"ok": False, "error_code": 400, "description": "Bad Request: message text is empty"}
                reply_to = (body.get("reply_parameters") or {}).get("message_id")
                self.sent.append(
                    {
                        "token": token,
                        "chat_id": body["chat_id"],
                        "text": body["text"],
                        "reply_to": reply_to,
                        "at": time.monotonic(),
                    }
                )
                return 200, {
                    "ok": True,
                    "result": {
                        "message_id": next(self._ids),
                        "date": int(time.time()),
                        "chat": {"id": body["chat_id"], "type": "private"},
                        "text": body["text"],
                    },
                }
        return 404, {"ok": False, "error_code": 404, "description": "Not Found: method not found"}
