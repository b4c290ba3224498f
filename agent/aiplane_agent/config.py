"""The agent's one configuration: command-line options over environment variables over defaults."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field
from pathlib import Path

RUNNERS = ("auto", "process", "container")
DEFAULT_STATE_DIR = "/var/lib/aiplane-agent"


@dataclass(frozen=True)
class AgentConfig:
    credential: str
    gpufarm_url: str | None = None  # the gpufarm API base; None: this agent does not join the gpufarm fleet
    mlworker_url: str | None = None  # the mlworker API base; None: it runs no mlworker tasks
    instance_id: str | None = None  # None: from instance metadata, else the host name
    worker_id: str | None = None  # the mlworker worker id; None: the instance id
    state_dir: Path = field(default_factory=lambda: Path(DEFAULT_STATE_DIR))
    host: str = "0.0.0.0"
    port: int = 8787
    advertise_host: str | None = None  # None: the private IP from instance metadata
    upstream: str | None = None  # a local inference server the listener forwards unmatched paths to
    upstream_timeout_s: float = 300.0
    heartbeat_s: float = 30.0
    poll_s: float = 2.0  # how often a free agent asks the scheduler for work
    capacity: int = 8  # concurrent requests counted as full load when no GPU reports utilisation
    gpus: str = "auto"  # "auto": nvidia-smi; a number: that many scheduling slots (no devices)
    cpus: int | None = None  # None: this host's
    memory_gb: int | None = None  # None: this host's
    runner: str = "auto"  # auto: container where docker with the NVIDIA runtime answers, else process
    # Cloud hosts (user data): tasks of the host's renter must never run beside the agent's own
    # credential, so the agent refuses to start unless the container runner runs them.
    require_container: bool = False
    shared: bool = False  # ask to be a shared worker (admin credentials only; see mlworker tenancy)
    task_image: str = "nvidia/cuda:12.4.1-runtime-ubuntu22.04"  # containers: a task's metadata.image overrides it
    service_slots: int = 0
    output_tail_bytes: int = 16384  # the task output reported inline; the full log goes to S3
    task_grace_s: float = 5.0  # SIGTERM to SIGKILL when a task is stopped


def _env_float(name: str, default: float) -> float:
    return float(os.environ.get(name) or default)


def parse_args(argv: list[str] | None = None) -> AgentConfig:
    env = os.environ.get
    parser = argparse.ArgumentParser(prog="aiplane-gpu-agent", description="aiplane GPU agent")
    parser.add_argument("--api-url", default=env("AIPLANE_API_URL"), help="the gpufarm API base URL")
    parser.add_argument("--mlworker-url", default=env("AIPLANE_MLWORKER_URL"), help="the mlworker API base URL")
    parser.add_argument(
        "--credential",
        default=env("AIPLANE_AGENT_CREDENTIAL"),
        help="the contract's agent credential (or, locally, an admin API key)",
    )
    parser.add_argument("--instance-id", default=env("AIPLANE_INSTANCE_ID"), help="default: from instance metadata")
    parser.add_argument(
        "--worker-id", default=env("AIPLANE_WORKER_ID"), help="mlworker worker id (default: instance id)"
    )
    parser.add_argument("--state-dir", default=env("AIPLANE_AGENT_STATE_DIR", DEFAULT_STATE_DIR))
    parser.add_argument("--host", default=env("AIPLANE_AGENT_HOST", "0.0.0.0"))
    parser.add_argument("--port", type=int, default=int(env("AIPLANE_AGENT_PORT", "8787")))
    parser.add_argument(
        "--advertise-host",
        default=env("AIPLANE_AGENT_ADVERTISE_HOST"),
        help="host the API reaches this agent at (default: private IP from metadata)",
    )
    parser.add_argument(
        "--upstream", default=env("AIPLANE_AGENT_UPSTREAM"), help="local inference server to forward to"
    )
    parser.add_argument("--upstream-timeout", type=float, default=_env_float("AIPLANE_AGENT_UPSTREAM_TIMEOUT", 300))
    parser.add_argument("--heartbeat-s", type=float, default=_env_float("AIPLANE_AGENT_HEARTBEAT_S", 30))
    parser.add_argument("--poll-s", type=float, default=_env_float("AIPLANE_AGENT_POLL_S", 2))
    parser.add_argument("--capacity", type=int, default=int(env("AIPLANE_AGENT_CAPACITY", "8")))
    parser.add_argument(
        "--gpus",
        default=env("AIPLANE_AGENT_GPUS", "auto"),
        help="auto (nvidia-smi) or a number of GPU scheduling slots",
    )
    parser.add_argument("--cpus", type=int, default=int(env("AIPLANE_AGENT_CPUS") or 0) or None)
    parser.add_argument("--memory-gb", type=int, default=int(env("AIPLANE_AGENT_MEMORY_GB") or 0) or None)
    parser.add_argument("--runner", choices=RUNNERS, default=env("AIPLANE_AGENT_RUNNER", "auto"))
    parser.add_argument(
        "--require-container",
        action=argparse.BooleanOptionalAction,
        default=_env_flag("AIPLANE_AGENT_REQUIRE_CONTAINER"),
        help="refuse to start unless tasks run in containers (cloud GPU hosts)",
    )
    parser.add_argument(
        "--shared",
        action=argparse.BooleanOptionalAction,
        default=_env_flag("AIPLANE_AGENT_SHARED"),
        help="register as a shared mlworker worker, taking every user's tasks (admin credential only)",
    )
    parser.add_argument("--task-image", default=env("AIPLANE_AGENT_TASK_IMAGE", AgentConfig.task_image))
    parser.add_argument("--service-slots", type=int, default=int(env("AIPLANE_AGENT_SERVICE_SLOTS", "0")))
    args = parser.parse_args(argv)
    if not args.credential or not (args.api_url or args.mlworker_url):
        parser.error(
            "--credential and at least one of --api-url/--mlworker-url (or AIPLANE_AGENT_CREDENTIAL, "
            "AIPLANE_API_URL, AIPLANE_MLWORKER_URL) are required"
        )
    if args.gpus != "auto" and not args.gpus.isdigit():
        parser.error("--gpus is auto or a number")
    if args.require_container and args.runner == "process":
        parser.error(
            "the container runner is required here (--require-container, AIPLANE_AGENT_REQUIRE_CONTAINER): "
            "the process runner would run tasks beside the agent's credential"
        )
    return AgentConfig(
        credential=args.credential,
        gpufarm_url=_base(args.api_url),
        mlworker_url=_base(args.mlworker_url),
        instance_id=args.instance_id,
        worker_id=args.worker_id,
        state_dir=Path(args.state_dir),
        host=args.host,
        port=args.port,
        advertise_host=args.advertise_host,
        upstream=args.upstream,
        upstream_timeout_s=args.upstream_timeout,
        heartbeat_s=args.heartbeat_s,
        poll_s=args.poll_s,
        capacity=args.capacity,
        gpus=args.gpus,
        cpus=args.cpus,
        memory_gb=args.memory_gb,
        runner=args.runner,
        task_image=args.task_image,
        service_slots=args.service_slots,
        require_container=args.require_container,
        shared=args.shared,
    )


def _env_flag(name: str) -> bool:
    return (os.environ.get(name) or "").strip().lower() in ("1", "true", "yes")


def _base(url: str | None) -> str | None:
    return url.rstrip("/") if url else None
