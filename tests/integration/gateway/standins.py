"""Stand-in LLM servers on 127.0.0.1: real HTTP servers in threads speaking the Ollama and the
OpenAI-compatible protocols (streaming and pull progress included)."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from tests.standins import LoopbackServer, StandInHandler

HOLD_LIMIT_S = 30  # a held answer goes out by then even if the test never releases it


class _Handler(StandInHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as separate writes

    def _dispatch(self, method: str) -> None:
        standin = self.server.stand_in
        standin.requests.append((method, self.path))
        body = self.read_json({}) if method in ("POST", "DELETE") else {}
        standin.bodies.append(body)
        if standin.delay_s:
            time.sleep(standin.delay_s)
        if standin.hold is not None:
            standin.hold.wait(HOLD_LIMIT_S)
        if standin.failing:
            self.send_json({"error": "stand-in is failing"}, status=500)
            return
        if standin.failures:  # scripted answers first: (status, body, headers)
            status, payload, headers = standin.failures.pop(0)
            self.send_json(payload, status, headers)
            return
        handler = getattr(standin, f"handle_{method}", None)
        if handler is None or not handler(self, self.path.split("?", 1)[0], body):
            self.send_json({"error": f"no route {method} {self.path}"}, status=404)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")


class StandIn(LoopbackServer):
    def __init__(self, name: str) -> None:
        self.name = name
        self.failing = False
        self.delay_s = 0.0  # before every answer: a slow backend
        self.hold: threading.Event | None = None  # before every answer, until set: a request kept in flight
        self.failures: list[tuple[int, Any, dict[str, str]]] = []
        self.requests: list[tuple[str, str]] = []
        self.bodies: list[dict[str, Any]] = []
        super().__init__(_Handler)

    def reply_for(self, messages: list[dict[str, Any]]) -> str:
        last = messages[-1].get("content", "") if messages else ""
        return f"{self.name} says: {last}"

    def chat_calls(self) -> int:
        return sum(1 for method, path in self.requests if method == "POST" and "chat" in path)


class OllamaStandIn(StandIn):
    """/api/tags, /api/chat, /api/generate, /api/embed, /api/pull (NDJSON progress), /api/delete."""

    def __init__(
        self, name: str, models: list[str] | None = None, *, pull_steps: int = 5, pull_step_s: float = 0.05
    ) -> None:
        super().__init__(name)
        self.models = list(models or [])
        self.pull_steps = pull_steps
        self.pull_step_s = pull_step_s
        self.pulls_finished: list[str] = []
        self.pulls_aborted: list[str] = []
        self.deleted: list[str] = []

    def handle_GET(self, http: _Handler, path: str, body: dict[str, Any]) -> bool:
        if path != "/api/tags":
            return False
        http.send_json(
            {
                "models": [
                    {
                        "name": model,
                        "model": model,
                        "modified_at": "2026-01-01T00:00:00Z",
                        "size": 1000,
                        "digest": f"sha256:{i:064d}",
                        "details": {
                            "format": "gguf",
                            "family": "llama",
                            "families": ["llama"],
                            "parameter_size": "1B",
                            "quantization_level": "Q4_0",
                        },
                    }
                    for i, model in enumerate(self.models)
                ]
            }
        )
        return True

    def handle_POST(self, http: _Handler, path: str, body: dict[str, Any]) -> bool:
        if path == "/api/chat":
            reply = self.reply_for(body.get("messages") or [])
            if body.get("tools") and (body.get("messages") or [{}])[-1].get("role") != "tool":
                self._tool_call(http, body)
                return True
            if body.get("stream", True):
                http.start_stream("application/x-ndjson")
                for word in reply.split(" "):
                    http.send_piece(
                        (
                            json.dumps(
                                {
                                    "model": body["model"],
                                    "message": {"role": "assistant", "content": word + " "},
                                    "done": False,
                                }
                            )
                            + "\n"
                        ).encode()
                    )
                http.send_piece(
                    (
                        json.dumps(
                            {
                                "model": body["model"],
                                "message": {"role": "assistant", "content": ""},
                                "done": True,
                                "done_reason": "stop",
                                "prompt_eval_count": 3,
                                "eval_count": 4,
                            }
                        )
                        + "\n"
                    ).encode()
                )
            else:
                http.send_json(
                    {
                        "model": body["model"],
                        "message": {"role": "assistant", "content": reply},
                        "done": True,
                        "done_reason": "stop",
                        "prompt_eval_count": 3,
                        "eval_count": 4,
                    }
                )
            return True
        if path == "/api/generate":
            http.send_json(
                {"model": body["model"], "response": f"{self.name} generated: {body.get('prompt')}", "done": True}
            )
            return True
        if path == "/api/embed":
            inputs = body.get("input")
            inputs = [inputs] if isinstance(inputs, str) else inputs
            http.send_json({"model": body["model"], "embeddings": [[float(len(text)), 0.5, 0.25] for text in inputs]})
            return True
        if path == "/api/pull":
            self._pull(http, body["model"])
            return True
        return False

    def _tool_call(self, http: _Handler, body: dict[str, Any]) -> None:
        """Ollama answers a tool call whole, in one message (arguments as an object)."""
        name = body["tools"][0]["function"]["name"]
        message = {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"function": {"name": name, "arguments": {"city": "Paris"}}}],
        }
        done = {"done": True, "done_reason": "stop", "prompt_eval_count": 5, "eval_count": 6}
        if body.get("stream", True):
            http.start_stream("application/x-ndjson")
            http.send_piece((json.dumps({"model": body["model"], "message": message, "done": False}) + "\n").encode())
            http.send_piece(
                (
                    json.dumps({"model": body["model"], "message": {"role": "assistant", "content": ""}, **done}) + "\n"
                ).encode()
            )
        else:
            http.send_json({"model": body["model"], "message": message, **done})

    def _pull(self, http: _Handler, model: str) -> None:
        http.start_stream("application/x-ndjson")
        total = 1000 * self.pull_steps
        try:
            http.send_piece(b'{"status":"pulling manifest"}\n')
            for step in range(1, self.pull_steps + 1):
                line = {"status": "downloading", "digest": "sha256:abc", "total": total, "completed": step * 1000}
                http.send_piece((json.dumps(line) + "\n").encode())
                time.sleep(self.pull_step_s)
            http.send_piece(b'{"status":"success"}\n')
        except (BrokenPipeError, ConnectionResetError):
            self.pulls_aborted.append(model)
            return
        self.models.append(model)
        self.pulls_finished.append(model)

    def handle_DELETE(self, http: _Handler, path: str, body: dict[str, Any]) -> bool:
        if path != "/api/delete":
            return False
        if body.get("model") in self.models:
            self.models.remove(body["model"])
        self.deleted.append(body.get("model"))
        http.send_json({})
        return True


class OpenAIStandIn(StandIn):
    """/v1/models, /v1/chat/completions (SSE when stream), /v1/embeddings; checks the bearer key."""

    def __init__(self, name: str, models: list[str], api_key: str | None = None) -> None:
        super().__init__(name)
        self.models = models
        self.api_key = api_key

    def _authorised(self, http: _Handler) -> bool:
        if self.api_key and http.headers.get("Authorization") != f"Bearer {self.api_key}":
            http.send_json({"error": {"message": "bad key"}}, status=401)
            return False
        return True

    def handle_GET(self, http: _Handler, path: str, body: dict[str, Any]) -> bool:
        if path != "/v1/models":
            return False
        if self._authorised(http):
            http.send_json(
                {
                    "object": "list",
                    "data": [{"id": m, "object": "model", "created": 0, "owned_by": "x"} for m in self.models],
                }
            )
        return True

    def handle_POST(self, http: _Handler, path: str, body: dict[str, Any]) -> bool:
        if path == "/v1/chat/completions":
            if not self._authorised(http):
                return True
            reply = self.reply_for(body.get("messages") or [])
            if body.get("stream"):
                http.start_stream("text/event-stream")

                def send(choices: list[dict[str, Any]], **extra: Any) -> None:
                    chunk = {
                        "id": "c1",
                        "object": "chat.completion.chunk",
                        "created": 0,
                        "model": body["model"],
                        "choices": choices,
                        **extra,
                    }
                    http.send_piece(f"data: {json.dumps(chunk)}\n\n".encode())

                if body.get("tools"):  # OpenAI streams a call's arguments in pieces
                    name = body["tools"][0]["function"]["name"]
                    send(
                        [
                            {
                                "index": 0,
                                "delta": {
                                    "role": "assistant",
                                    "tool_calls": [
                                        {
                                            "index": 0,
                                            "id": "call_abc",
                                            "type": "function",
                                            "function": {"name": name, "arguments": ""},
                                        }
                                    ],
                                },
                                "finish_reason": None,
                            }
                        ]
                    )
                    for piece in ('{"city": ', '"Paris"}'):
                        send(
                            [
                                {
                                    "index": 0,
                                    "delta": {"tool_calls": [{"index": 0, "function": {"arguments": piece}}]},
                                    "finish_reason": None,
                                }
                            ]
                        )
                    send([{"index": 0, "delta": {}, "finish_reason": "tool_calls"}])
                else:
                    for word in reply.split(" "):
                        send([{"index": 0, "delta": {"content": word + " "}, "finish_reason": None}])
                    send([{"index": 0, "delta": {}, "finish_reason": "stop"}])
                if (body.get("stream_options") or {}).get("include_usage"):
                    send([], usage={"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18})
                http.send_piece(b"data: [DONE]\n\n")
            else:
                http.send_json(
                    {
                        "id": "c1",
                        "object": "chat.completion",
                        "created": 0,
                        "model": body["model"],
                        "choices": [
                            {"index": 0, "message": {"role": "assistant", "content": reply}, "finish_reason": "stop"}
                        ],
                        "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7},
                    }
                )
            return True
        if path == "/v1/embeddings":
            inputs = body.get("input")
            inputs = [inputs] if isinstance(inputs, str) else inputs
            http.send_json(
                {
                    "object": "list",
                    "data": [
                        {"object": "embedding", "index": i, "embedding": [1.0, float(i)]} for i, _ in enumerate(inputs)
                    ],
                }
            )
            return True
        return False


class GeminiStandIn(StandIn):
    """The Gemini REST API: /v1beta/models, :generateContent, :streamGenerateContent?alt=sse, :embedContent."""

    def __init__(self, name: str, models: list[str], api_key: str) -> None:
        super().__init__(name)
        self.models = models
        self.api_key = api_key

    def _authorised(self, http: _Handler) -> bool:
        if http.headers.get("x-goog-api-key") != self.api_key:
            http.send_json({"error": {"code": 403, "message": "bad key"}}, status=403)
            return False
        return True

    def handle_GET(self, http: _Handler, path: str, body: dict[str, Any]) -> bool:
        if path != "/v1beta/models":
            return False
        if self._authorised(http):
            http.send_json({"models": [{"name": f"models/{m}", "displayName": m} for m in self.models]})
        return True

    def handle_POST(self, http: _Handler, path: str, body: dict[str, Any]) -> bool:
        if not path.startswith("/v1beta/models/") or ":" not in path:
            return False
        if not self._authorised(http):
            return True
        action = path.rsplit(":", 1)[1]
        if action == "embedContent":
            text = body["content"]["parts"][0]["text"]
            http.send_json({"embedding": {"values": [float(len(text)), 1.0]}})
            return True
        last = body["contents"][-1]["parts"][0]["text"]
        reply = f"{self.name} says: {last}"
        if action == "streamGenerateContent":
            http.start_stream("text/event-stream")
            for word in reply.split(" "):
                chunk = {"candidates": [{"content": {"role": "model", "parts": [{"text": word + " "}]}}]}
                http.send_piece(f"data: {json.dumps(chunk)}\r\n\r\n".encode())
            return True
        http.send_json(
            {
                "candidates": [{"content": {"role": "model", "parts": [{"text": reply}]}, "finishReason": "STOP"}],
                "usageMetadata": {"promptTokenCount": 2, "candidatesTokenCount": 3},
            }
        )
        return True
