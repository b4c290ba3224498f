"""Local stand-in for what EC2 does for GPU instances (moto gaps, local stack only):

- EC2 publishes "EC2 Instance State-change Notification" events on the default bus; moto does
  not, so state changes seen on aiplane's instances are published as EC2 would;
- an instance runs its user data, which installs and starts the GPU agent; moto runs nothing,
  so one agent process per running instance is started with the environment its user data
  carries and the credential it names in SSM (as the script fetches it), and stopped (SIGTERM)
  when the instance stops or terminates;
- an agent registers at its instance's private IP; moto's are made up and nothing listens on
  them, so each agent listens on a loopback port of its own, recorded on the instance in the
  `AGENT_ADDRESS_TAG` tag, which the registration check reads instead in the local stack
  (`AIPLANE_GPU_AGENT_ADDRESS_TAG`). Nothing ever connects to a moto instance address.

Beyond EC2's part, `LocalAgent` is the one agent `make run` starts for this machine itself.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from datetime import UTC, datetime
from pathlib import Path

import boto3

from aiplane.gpufarm.user_data import CREDENTIAL_PARAMETER_VARIABLE, CREDENTIAL_VARIABLE, parse_environment
from aiplane.observability import logger

POLL_PERIOD_S = 0.5
AGENT_HEARTBEAT_S = "5"
AGENT_STOP_GRACE_S = 5
AGENT_ADDRESS_TAG = "aiplane:local-agent-address"
AGENT_HOST = "127.0.0.1"
LOCAL_AGENT_HEARTBEAT_S, LOCAL_AGENT_POLL_S = "1", "0.2"  # quick local turnarounds (cancel -> stopped)
# User data requires the container runner; this machine standing in for the instance has no docker,
# so its processes run the work. Tenancy still holds: a contract's worker takes its owner's work only.
STAND_IN_RUNNER = ["--no-require-container", "--runner", "process"]


class GpuInstanceSupervisor:
    def __init__(self, region: str) -> None:
        self.region = region
        self.states: dict[str, str] = {}
        self.agents: dict[str, subprocess.Popen | None] = {}  # None: an instance without an agent
        self.state_dirs: dict[str, str] = {}
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        self.thread = threading.Thread(target=self._run, name="gpu-instances", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        if self.thread:
            self.thread.join(timeout=POLL_PERIOD_S + 2)
        for instance_id in list(self.agents):
            self._stop_agent(instance_id)

    def _run(self) -> None:
        ec2 = boto3.client("ec2", region_name=self.region)
        events = boto3.client("events", region_name=self.region)
        while not self.stopping.wait(POLL_PERIOD_S):
            try:
                self.observe_once(ec2, events)
            except Exception:
                logger.exception("GPU instance supervision failed")

    def observe_once(self, ec2, events) -> None:
        pages = ec2.get_paginator("describe_instances").paginate(
            Filters=[{"Name": "tag-key", "Values": ["aiplane:contract"]}]
        )
        for page in pages:
            for reservation in page["Reservations"]:
                for instance in reservation["Instances"]:
                    instance_id, state = instance["InstanceId"], instance["State"]["Name"]
                    if self.states.get(instance_id) != state:
                        self.states[instance_id] = state
                        self._publish_state_change(events, instance_id, state)
                    if state == "running" and instance_id not in self.agents:
                        self._start_agent(ec2, instance_id)
                    elif state != "running" and instance_id in self.agents:
                        self._stop_agent(instance_id)

    def _publish_state_change(self, events, instance_id: str, state: str) -> None:
        events.put_events(
            Entries=[
                {
                    "Source": "aws.ec2",
                    "DetailType": "EC2 Instance State-change Notification",
                    "Detail": json.dumps({"instance-id": instance_id, "state": state}),
                    "Resources": [f"arn:aws:ec2:{self.region}::instance/{instance_id}"],
                    "Time": datetime.now(UTC),
                }
            ]
        )

    def _start_agent(self, ec2, instance_id: str) -> None:
        encoded = ec2.describe_instance_attribute(InstanceId=instance_id, Attribute="userData")["UserData"].get(
            "Value", ""
        )
        environment = parse_environment(base64.b64decode(encoded).decode()) if encoded else {}
        if not environment.get("AIPLANE_API_URL"):
            self.agents[instance_id] = None  # not an agent instance: nothing to run
            return
        ssm = boto3.client("ssm", region_name=self.region)
        try:
            credential = ssm.get_parameter(Name=environment[CREDENTIAL_PARAMETER_VARIABLE], WithDecryption=True)
        except ssm.exceptions.ParameterNotFound:
            return  # not published yet (the provisioner does right after launch): the next poll tries again
        from aiplane_local.stack import free_port  # stack.py imports this module

        port = free_port()
        ec2.create_tags(Resources=[instance_id], Tags=[{"Key": AGENT_ADDRESS_TAG, "Value": f"{AGENT_HOST}:{port}"}])
        self.state_dirs[instance_id] = tempfile.mkdtemp(prefix=f"aiplane-agent-{instance_id}-")
        self.agents[instance_id] = start_agent_process(
            [
                "--instance-id",
                instance_id,
                "--host",
                AGENT_HOST,
                "--port",
                str(port),
                "--advertise-host",
                AGENT_HOST,
                "--heartbeat-s",
                AGENT_HEARTBEAT_S,
                "--state-dir",
                self.state_dirs[instance_id],
                *STAND_IN_RUNNER,
            ],
            {**environment, CREDENTIAL_VARIABLE: credential["Parameter"]["Value"]},
        )

    def _stop_agent(self, instance_id: str) -> None:
        stop_agent_process(self.agents.pop(instance_id, None))
        shutil.rmtree(self.state_dirs.pop(instance_id, ""), ignore_errors=True)


class LocalAgent:
    """The agent `make run` starts on this machine: an mlworker worker with this machine's CPUs and
    memory and `gpus` GPUs, which locally are scheduling slots, not devices (tasks see their slot
    numbers in CUDA_VISIBLE_DEVICES). It runs tasks with the process runner and authenticates with
    the admin API key (on AWS an agent uses its contract's credential). With `gpufarm_url` this
    machine is enrolled as a gpufarm GPU host (`local_fleet`) and the agent uses that contract's
    credential for both families; `service_slots` Jupyter services may run on it. Either way it is a
    shared worker: it runs every local user's tasks and services (mlworker tenancy)."""

    def __init__(
        self,
        mlworker_url: str,
        credential: str,
        gpus: int = 0,
        worker_id: str = "local-agent",
        *,
        gpufarm_url: str | None = None,
        service_slots: int = 0,
    ) -> None:
        self.state_dir = tempfile.mkdtemp(prefix="aiplane-local-agent-")
        from aiplane_local.stack import free_port  # stack.py imports this module

        # With the admin key it asks to be shared itself; with a contract's credential it cannot, so
        # the enrollment shares its worker beforehand (local_fleet).
        port, instance_id, options = free_port(), worker_id, ["--shared"]
        if gpufarm_url:  # this machine joins the gpufarm fleet too: models, the proxy (aiplane_local.local_fleet)
            from aiplane_local.local_fleet import enroll_this_machine

            host = enroll_this_machine(port)
            credential, worker_id, instance_id, options = (
                host.credential,
                host.worker_id,
                host.instance_id,
                ["--api-url", gpufarm_url],
            )
        self.process = start_agent_process(
            [
                "--mlworker-url",
                mlworker_url,
                "--worker-id",
                worker_id,
                "--instance-id",
                instance_id,
                "--gpus",
                str(gpus),
                "--runner",
                "process",
                "--host",
                AGENT_HOST,
                "--port",
                str(port),
                "--advertise-host",
                AGENT_HOST,
                "--service-slots",
                str(service_slots),
                "--state-dir",
                self.state_dir,
                "--heartbeat-s",
                LOCAL_AGENT_HEARTBEAT_S,
                "--poll-s",
                LOCAL_AGENT_POLL_S,
                *options,
            ],
            {CREDENTIAL_VARIABLE: credential},
        )

    def stop(self) -> None:
        stop_agent_process(self.process)
        shutil.rmtree(self.state_dir, ignore_errors=True)


def stop_agent_process(process: subprocess.Popen | None) -> None:
    """SIGTERM (the agent stops its tasks and deregisters), SIGKILL after the grace period."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=AGENT_STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        process.kill()


def start_agent_process(arguments: list[str], environment: dict[str, str]) -> subprocess.Popen:
    """`python -m aiplane_agent` with this checkout's agent package first on its path."""
    inherited = {
        name: value
        for name, value in os.environ.items()
        if name in ("PATH", "PYTHONPATH", "HOME", "LANG", "VIRTUAL_ENV")
    }
    spec = importlib.util.find_spec("aiplane_agent")  # installed, or else this checkout's agent/ folder
    agent_source = str(
        Path(spec.origin).resolve().parents[1]
        if spec and spec.origin
        else Path(__file__).resolve().parents[2] / "agent"
    )
    inherited["PYTHONPATH"] = os.pathsep.join(filter(None, [agent_source, inherited.get("PYTHONPATH")]))
    return subprocess.Popen(
        [sys.executable, "-m", "aiplane_agent", *arguments],
        env={**inherited, **environment},
        stdout=subprocess.DEVNULL,  # its errors stay visible on the local server's stderr
    )
