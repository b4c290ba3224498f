"""The user data that turns a fresh GPU instance into an aiplane GPU agent.

The launch template carries the image, instance profile and metadata settings; the provisioner
adds this per-instance script: it installs the agent artifact (built from this repo by the CDK
app and uploaded as an S3 asset, `aiplane_agent.artifact`; its S3 URI is published in SSM,
`agent_artifact_parameter`), fetches the contract's agent credential from its SSM parameter
(never part of user data, which anyone allowed to describe the instance can read) and runs the
agent under systemd, restarted whenever it exits, with a delegated cgroup for task limits and
/var/lib/aiplane-agent as its state dir. The agent runs work in containers only (`CONTAINER_ONLY`).
"""

from __future__ import annotations

import shlex

INSTALL_DIR = "/opt/aiplane-agent"
ENV_FILE = "/etc/aiplane-gpu-agent.env"
ENV_BEGIN, ENV_END = "# --- agent environment ---", "# --- end agent environment ---"
CREDENTIAL_PARAMETER_VARIABLE = "AIPLANE_AGENT_CREDENTIAL_PARAMETER"
CREDENTIAL_VARIABLE = "AIPLANE_AGENT_CREDENTIAL"  # what the agent reads (agent.py)
CREDENTIAL_WAIT_ATTEMPTS, CREDENTIAL_WAIT_S = 60, 5  # the provisioner publishes it right after launch


CONTAINER_ONLY = {"AIPLANE_AGENT_RUNNER": "container", "AIPLANE_AGENT_REQUIRE_CONTAINER": "true"}

# Jupyter services a GPU host runs beside its tasks (they share its GPUs, as notebooks do).
CLOUD_JUPYTER_SLOTS = 2


def agent_environment(
    api_url: str,
    credential_parameter: str,
    port: int = 8787,
    *,
    mlworker_url: str | None = None,
    worker_id: str | None = None,
) -> dict[str, str]:
    environment = {
        "AIPLANE_API_URL": api_url,
        CREDENTIAL_PARAMETER_VARIABLE: credential_parameter,
        "AIPLANE_AGENT_PORT": str(port),
        # Work runs in containers only: a process would run as the agent's user, beside this file
        # and its credential. Without docker the agent does not start (systemd keeps retrying).
        **CONTAINER_ONLY,
    }
    if mlworker_url and worker_id:  # the agent also runs mlworker tasks and Jupyter services, as its contract's worker
        environment.update(
            {
                "AIPLANE_MLWORKER_URL": mlworker_url,
                "AIPLANE_WORKER_ID": worker_id,
                "AIPLANE_AGENT_SERVICE_SLOTS": str(CLOUD_JUPYTER_SLOTS),
            }
        )
    return environment


def build(environment: dict[str, str], artifact_uri: str, region: str) -> str:
    env_lines = "\n".join(f"{name}={shlex.quote(value)}" for name, value in environment.items())
    parameter = shlex.quote(environment[CREDENTIAL_PARAMETER_VARIABLE])
    return f"""#!/bin/bash
set -euo pipefail
cat > {ENV_FILE} <<'AIPLANE_ENV'
{ENV_BEGIN}
{env_lines}
{ENV_END}
AIPLANE_ENV
chmod 600 {ENV_FILE}
for attempt in $(seq {CREDENTIAL_WAIT_ATTEMPTS}); do
  credential=$(aws ssm get-parameter --region {shlex.quote(region)} --name {parameter} --with-decryption \\
    --query Parameter.Value --output text) && break
  sleep {CREDENTIAL_WAIT_S}
done
echo "{CREDENTIAL_VARIABLE}=$credential" >> {ENV_FILE}
aws s3 cp --region {shlex.quote(region)} {shlex.quote(artifact_uri)} /tmp/aiplane-agent.zip
python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' /tmp/aiplane-agent.zip {INSTALL_DIR}
python3 -m venv {INSTALL_DIR}/venv
{INSTALL_DIR}/venv/bin/pip install --quiet -r {INSTALL_DIR}/requirements.txt
cat > /etc/systemd/system/aiplane-gpu-agent.service <<'UNIT'
[Unit]
Description=aiplane GPU agent
Wants=network-online.target docker.service
After=network-online.target docker.service
[Service]
EnvironmentFile={ENV_FILE}
ExecStart={INSTALL_DIR}/venv/bin/python {INSTALL_DIR}/aiplane-agent.pyz
Restart=always
RestartSec=5
KillSignal=SIGTERM
TimeoutStopSec=60
Delegate=yes
StateDirectory=aiplane-agent
[Install]
WantedBy=multi-user.target
UNIT
systemctl daemon-reload
systemctl enable --now aiplane-gpu-agent
"""


def parse_environment(script: str) -> dict[str, str]:
    """The agent environment written by `build` (the local stack starts agents from it)."""
    inside, found = False, {}
    for line in script.splitlines():
        if line == ENV_BEGIN:
            inside = True
        elif line == ENV_END:
            break
        elif inside and "=" in line:
            name, value = line.split("=", 1)
            found[name] = shlex.split(value)[0] if value else ""
    return found
