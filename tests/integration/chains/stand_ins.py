"""Small real HTTP servers on 127.0.0.1 that stand in for an OpenAI-compatible LLM backend and
for remote hooks (both protocols)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from tests.standins import LoopbackServer, StandInHandler

Responder = Callable[[str, str, dict[str, Any]], tuple[int, Any]]


class Streamed:
    """A responder's answer sent as a stream: each piece written and flushed in turn (a piece may sleep)."""

    def __init__(self, pieces: Iterable[bytes]) -> None:
        self.pieces = pieces


class StandInServer(LoopbackServer):
    """Answers every request with `responder(method, path, body) -> (status, json body)`."""

    def __init__(self, responder: Responder) -> None:
        self.responder = responder
        self.requests: list[tuple[str, str, dict[str, Any], dict[str, str]]] = []
        outer = self

        class Handler(StandInHandler):
            def _answer(self) -> None:
                body = self.read_json({})
                outer.requests.append((self.command, self.path, body, dict(self.headers)))
                status, answer = outer.responder(self.command, self.path, body)
                if not isinstance(answer, Streamed):
                    self.send_json(answer, status)
                    return
                self.start_stream("text/event-stream", status)
                for piece in answer.pieces:
                    self.send_piece(piece)

            do_GET = do_POST = do_PUT = do_DELETE = _answer

        super().__init__(Handler)


def last_user_text(body: dict[str, Any]) -> str:
    for message in reversed(body.get("messages") or []):
        if message.get("role") == "user":
            return str(message.get("content") or "")
    return ""


def completion(
    content: str | None, *, model: str = "stand-in", tool_calls: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return {
        "id": "chatcmpl-stand-in",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if tool_calls else "stop"}],
        "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10},
    }


class StandInLLM(StandInServer):
    """An OpenAI-compatible backend whose replies come from `reply(prompt text, body)`.

    A reply may be a string, a dict (a whole assistant message) or ("sleep", seconds, reply). Asked to
    stream, it sends the reply word by word, `token_delay_s` apart, and its usage last.
    """

    def __init__(self) -> None:
        self.reply: Callable[[str, dict[str, Any]], Any] = lambda text, body: f"echo: {text}"
        self.failures_left = 0  # answer 500 this many times first
        self.token_delay_s = 0.0
        super().__init__(self._respond)

    def _respond(self, method: str, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        if path == "/v1/models":
            return 200, {
                "object": "list",
                "data": [{"id": "stand-in", "object": "model", "created": 0, "owned_by": "aiplane"}],
            }
        if path == "/v1/embeddings":
            text = str(body.get("input"))
            return 200, {
                "object": "list",
                "data": [{"object": "embedding", "index": 0, "embedding": [float(len(text)), 0.5, -1.0]}],
                "model": body.get("model") or "stand-in",
            }
        if self.failures_left > 0:
            self.failures_left -= 1
            return 500, {"error": {"message": "stand-in failure"}}
        reply = self.reply(last_user_text(body), body)
        if isinstance(reply, tuple) and reply[0] == "sleep":
            time.sleep(reply[1])
            reply = reply[2]
        answer = completion(
            reply.get("content") if isinstance(reply, dict) else str(reply),
            tool_calls=reply.get("tool_calls") if isinstance(reply, dict) else None,
            model=body.get("model") or "stand-in",
        )
        return 200, Streamed(self._chunks(answer)) if body.get("stream") else answer

    def _chunks(self, answer: dict[str, Any]) -> Iterator[bytes]:
        def chunk(choices: list[dict[str, Any]], **extra: Any) -> bytes:
            payload = {
                "id": answer["id"],
                "object": "chat.completion.chunk",
                "created": answer["created"],
                "model": answer["model"],
                "choices": choices,
                **extra,
            }
            return f"data: {json.dumps(payload)}\n\n".encode()

        message = answer["choices"][0]["message"]
        yield chunk([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])
        words = (message.get("content") or "").split(" ")
        for number, word in enumerate(words if message.get("content") else []):
            if number:
                time.sleep(self.token_delay_s)
            yield chunk(
                [
                    {
                        "index": 0,
                        "delta": {"content": word if number == len(words) - 1 else word + " "},
                        "finish_reason": None,
                    }
                ]
            )
        for index, call in enumerate(message.get("tool_calls") or []):
            yield chunk([{"index": 0, "delta": {"tool_calls": [{"index": index, **call}]}, "finish_reason": None}])
        yield chunk([{"index": 0, "delta": {}, "finish_reason": answer["choices"][0]["finish_reason"]}])
        yield chunk([], usage=answer["usage"])
        yield b"data: [DONE]\n\n"
