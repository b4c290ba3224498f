"""Loopback stand-ins for the vast.ai and io.net HTTP APIs (real HTTP servers on 127.0.0.1)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


class Marketplace:
    def __init__(self, key_header: str, key: str) -> None:
        self.key_header, self.key = key_header, key
        self.requests: list[tuple[str, str, dict | None]] = []
        self.failing = False
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                return

            def _serve(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                url = urlparse(self.path)
                stand_in.requests.append((self.command, url.path, body))
                presented = self.headers.get(stand_in.key_header, "")
                if stand_in.key not in presented:
                    return self._reply(401, {"error": "bad key"})
                if stand_in.failing:
                    return self._reply(500, {"error": "marketplace down"})
                status, answer = stand_in.answer(self.command, url.path, parse_qs(url.query), body)
                self._reply(status, answer)

            def _reply(self, status, answer):
                content = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            do_GET = do_PUT = do_POST = do_DELETE = _serve

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def answer(self, method, path, query, body):
        raise NotImplementedError

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class VastAiStandIn(Marketplace):
    def __init__(self, key: str) -> None:
        super().__init__("Authorization", key)

    def answer(self, method, path, query, body):
        if method == "GET" and path == "/api/v0/bundles/":
            return 200, {
                "offers": [
                    {
                        "id": 1001,
                        "gpu_name": "RTX 4090",
                        "num_gpus": 1,
                        "gpu_ram": 24564,
                        "dph_total": 0.42,
                        "geolocation": "US-WEST",
                        "rentable": True,
                    },
                    {
                        "id": 1002,
                        "gpu_name": "RTX 3090",
                        "num_gpus": 2,
                        "gpu_ram": 24576,
                        "dph_total": 0.30,
                        "geolocation": "EU-NORTH",
                        "rentable": True,
                    },
                ]
            }
        if method == "PUT" and path.startswith("/api/v0/asks/"):
            return 200, {"success": True, "new_contract": 7000 + int(path.split("/")[4])}
        if method == "DELETE" and path.startswith("/api/v0/instances/"):
            return 200, {"success": True}
        return 404, {"error": "no route"}


class IoNetStandIn(Marketplace):
    def __init__(self, key: str) -> None:
        super().__init__("x-api-key", key)

    def answer(self, method, path, query, body):
        if method == "GET" and path == "/enterprise/v1/io-cloud/devices":
            return 200, {
                "data": {
                    "devices": [
                        {
                            "device_id": "io-h100-1",
                            "name": "H100",
                            "vram_gb": 80.0,
                            "price_per_hour": 2.1,
                            "location": "US-EAST",
                            "available": True,
                            "gpu_count": 1,
                        },
                    ]
                }
            }
        if method == "POST" and path == "/enterprise/v1/io-cloud/deployments":
            return 200, {"data": {"deployment_id": f"dep-{body['device_id']}"}}
        if method == "DELETE" and path.startswith("/enterprise/v1/io-cloud/deployments/"):
            return 200, {"data": {"status": "terminated"}}
        return 404, {"error": "no route"}
