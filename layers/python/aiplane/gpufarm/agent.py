"""`aiplane-gpu-agent`: runs on every GPU instance.

It authenticates with its contract's agent credential (`AIPLANE_AGENT_CREDENTIAL`, which user
data fetches from the contract's SSM parameter; it works on the agent routes only), registers
with the gpufarm API (instance id, the URL at its private IP, GPUs from nvidia-smi when present),
heartbeats its load (open connections, GPU utilisation, response times), serves the requests the
API's proxy forwards (to `--upstream`, the instance's inference server, or answers them itself
with what it knows), and deregisters when stopped (SIGTERM/SIGINT).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

IMDS = "http://169.254.169.254/latest"
API_TIMEOUT_S = 10.0
RESPONSE_TIME_SMOOTHING = 0.2  # weight of the newest sample in the moving average


def gpu_inventory() -> list[dict[str, Any]]:
    """GPUs as nvidia-smi reports them; none when it is absent (CPU-only or non-NVIDIA host)."""
    if not shutil.which("nvidia-smi"):
        return []
    try:
        output = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,memory.total,utilization.gpu", "--format=csv,noheader,nounits"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout
    except (subprocess.SubprocessError, OSError):
        return []
    gpus = []
    for line in output.strip().splitlines():
        name, memory_mib, utilisation = (part.strip() for part in line.split(","))
        gpus.append({"name": name, "memory_mib": int(float(memory_mib)), "utilization": float(utilisation) / 100})
    return gpus


def imds(path: str) -> str | None:
    """Instance metadata (IMDSv2); None off EC2."""
    try:
        token = httpx.put(f"{IMDS}/api/token", headers={"X-aws-ec2-metadata-token-ttl-seconds": "300"}, timeout=1).text
        return httpx.get(f"{IMDS}/meta-data/{path}", headers={"X-aws-ec2-metadata-token": token}, timeout=1).text
    except httpx.HTTPError:
        return None


class LoadMeter:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.connections = 0
        self.response_time_ms = 0.0
        self.lock = threading.Lock()

    def begin(self) -> float:
        with self.lock:
            self.connections += 1
        return time.monotonic()

    def end(self, started: float) -> None:
        elapsed_ms = (time.monotonic() - started) * 1000
        with self.lock:
            self.connections -= 1
            previous = self.response_time_ms
            self.response_time_ms = elapsed_ms if previous == 0 else (
                RESPONSE_TIME_SMOOTHING * elapsed_ms + (1 - RESPONSE_TIME_SMOOTHING) * previous)

    def snapshot(self, gpus: list[dict[str, Any]]) -> dict[str, Any]:
        with self.lock:
            connections, response_time = self.connections, self.response_time_ms
        if gpus:
            load = sum(gpu["utilization"] for gpu in gpus) / len(gpus)
        else:
            load = min(connections / self.capacity, 1.0)
        return {"connections": connections, "load": round(load, 3), "response_time_ms": round(response_time, 1)}


class Agent:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.instance_id = args.instance_id or imds("instance-id") or os.uname().nodename
        self.meter = LoadMeter(args.capacity)
        self.gpus = gpu_inventory()
        self.stopping = threading.Event()
        self.server = ThreadingHTTPServer((args.host, args.port), self._handler_class())
        host = args.advertise_host or imds("local-ipv4") or "127.0.0.1"
        self.url = f"http://{host}:{self.server.server_address[1]}"
        self.api = httpx.Client(base_url=args.api_url.rstrip("/"), timeout=API_TIMEOUT_S,
                                headers={"Authorization": f"Bearer {args.credential}"})

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        agent = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def _serve(self) -> None:
                started = agent.meter.begin()
                try:
                    body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                    status, content = agent.answer(self.command, self.path, body)
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(content)))
                    self.end_headers()
                    self.wfile.write(content)
                finally:
                    agent.meter.end(started)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

        return Handler

    def answer(self, method: str, path: str, body: bytes) -> tuple[int, bytes]:
        if path == "/health":
            return 200, json.dumps({"status": "ok", "instance_id": self.instance_id, "gpus": self.gpus}).encode()
        if self.args.upstream:
            try:
                upstream = httpx.request(method, self.args.upstream.rstrip("/") + path, content=body,
                                         headers={"Content-Type": "application/json"}, timeout=self.args.upstream_timeout)
            except httpx.HTTPError as error:
                return 502, json.dumps({"error": f"upstream unreachable: {type(error).__name__}"}).encode()
            return upstream.status_code, upstream.content
        try:
            payload = json.loads(body) if body else None
        except ValueError:
            return 400, json.dumps({"error": "body is not JSON"}).encode()
        return 200, json.dumps({"instance_id": self.instance_id, "method": method, "path": path,
                                "payload": payload, "gpus": self.gpus}).encode()

    def register(self) -> None:
        """Until the API accepts it: the contract turns running a moment after its instance does."""
        while not self.stopping.is_set():
            try:
                answer = self.api.post("/api/v1/gpu/agents/register",
                                       json={"instance_id": self.instance_id, "url": self.url, "gpus": self.gpus})
                if answer.status_code == 201:
                    return
                print(f"registration refused ({answer.status_code}): {answer.text[:300]}", file=sys.stderr, flush=True)
            except httpx.HTTPError as error:
                print(f"registration failed: {type(error).__name__}", file=sys.stderr, flush=True)
            self.stopping.wait(self.args.heartbeat_s)

    def heartbeat_forever(self) -> None:
        self.register()
        while not self.stopping.wait(self.args.heartbeat_s):
            try:
                self.gpus = gpu_inventory() or self.gpus
                answer = self.api.post("/api/v1/gpu/agents/heartbeat",
                                       json={"instance_id": self.instance_id, **self.meter.snapshot(self.gpus)})
                if answer.status_code == 404:  # dropped out (missed heartbeats): join again
                    self.register()
            except httpx.HTTPError:
                continue  # the API is briefly unreachable; the next beat tries again

    def run(self) -> None:
        threading.Thread(target=self.heartbeat_forever, name="heartbeat", daemon=True).start()
        print(f"aiplane GPU agent {self.instance_id} serving {self.url}", flush=True)
        self.server.serve_forever()
        self.api.delete(f"/api/v1/gpu/agents/{self.instance_id}")

    def stop(self, *_: Any) -> None:
        self.stopping.set()
        threading.Thread(target=self.server.shutdown, daemon=True).start()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    env = os.environ.get
    parser = argparse.ArgumentParser(description="aiplane GPU agent")
    parser.add_argument("--api-url", default=env("AIPLANE_API_URL"), help="the gpufarm API base URL")
    parser.add_argument("--credential", default=env("AIPLANE_AGENT_CREDENTIAL"),
                        help="the contract's agent credential (accepted on the agent routes only)")
    parser.add_argument("--instance-id", default=env("AIPLANE_INSTANCE_ID"), help="default: from instance metadata")
    parser.add_argument("--host", default=env("AIPLANE_AGENT_HOST", "0.0.0.0"))
    parser.add_argument("--port", type=int, default=int(env("AIPLANE_AGENT_PORT", "8787")))
    parser.add_argument("--advertise-host", default=env("AIPLANE_AGENT_ADVERTISE_HOST"),
                        help="host the API reaches this agent at (default: private IP from metadata)")
    parser.add_argument("--upstream", default=env("AIPLANE_AGENT_UPSTREAM"), help="local inference server to forward to")
    parser.add_argument("--upstream-timeout", type=float, default=float(env("AIPLANE_AGENT_UPSTREAM_TIMEOUT", "300")))
    parser.add_argument("--heartbeat-s", type=float, default=float(env("AIPLANE_AGENT_HEARTBEAT_S", "30")))
    parser.add_argument("--capacity", type=int, default=int(env("AIPLANE_AGENT_CAPACITY", "8")),
                        help="concurrent requests counted as full load when no GPU reports utilisation")
    args = parser.parse_args(argv)
    if not args.api_url or not args.credential:
        parser.error("--api-url and --credential (or AIPLANE_API_URL and AIPLANE_AGENT_CREDENTIAL) are required")
    return args


def main(argv: list[str] | None = None) -> None:
    agent = Agent(parse_args(argv))
    signal.signal(signal.SIGTERM, agent.stop)
    signal.signal(signal.SIGINT, agent.stop)
    agent.run()


if __name__ == "__main__":
    main()
