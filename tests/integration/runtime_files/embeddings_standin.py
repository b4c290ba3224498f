"""A stand-in Ollama whose /api/embed returns bag-of-words vectors over a fixed vocabulary, so
cosine similarity ranks texts by shared words (a real HTTP server, reached through the gateway)."""

from __future__ import annotations

import re
from typing import Any

from tests.integration.gateway.standins import OllamaStandIn

VOCABULARY = ("cat", "dog", "fish", "bird", "tree", "car", "road", "engine", "ocean", "water")


def bag_of_words(text: str) -> list[float]:
    words = re.findall(r"[a-z]+", text.lower())
    return [float(words.count(term)) for term in VOCABULARY] + [0.01]  # never the zero vector


class EmbeddingsStandIn(OllamaStandIn):
    def __init__(self) -> None:
        super().__init__("embeddings")
        self.embedded: list[str] = []

    def handle_POST(self, http: Any, path: str, body: dict[str, Any]) -> bool:
        if path != "/api/embed":
            return super().handle_POST(http, path, body)
        inputs = body.get("input")
        inputs = [inputs] if isinstance(inputs, str) else list(inputs)
        self.embedded.extend(inputs)
        http.send_json({"model": body["model"], "embeddings": [bag_of_words(text) for text in inputs]})
        return True
