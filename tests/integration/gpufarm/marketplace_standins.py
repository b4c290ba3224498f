"""Loopback stand-ins for the vast.ai and io.net HTTP APIs (real HTTP servers on 127.0.0.1)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

from tests.standins import LoopbackServer, StandInHandler


class Marketplace(LoopbackServer):
    def __init__(self, key_header: str, key: str) -> None:
        self.key_header, self.key = key_header, key
        self.requests: list[tuple[str, str, dict | None]] = []
        self.failing = False
        stand_in = self

        class Handler(StandInHandler):
            def _serve(self):
                body = self.read_json()
                url = urlparse(self.path)
                stand_in.requests.append((self.command, url.path, body))
                presented = self.headers.get(stand_in.key_header, "")
                if stand_in.key not in presented:
                    return self.send_json({"error": "bad key"}, 401)
                if stand_in.failing:
                    return self.send_json({"error": "marketplace down"}, 500)
                status, answer = stand_in.answer(self.command, url.path, parse_qs(url.query), body)
                self.send_json(answer, status)

            do_GET = do_PUT = do_POST = do_DELETE = _serve

        super().__init__(Handler)

    def answer(self, method, path, query, body):
        raise NotImplementedError


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
