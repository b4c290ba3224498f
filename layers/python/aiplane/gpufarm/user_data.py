"""The user data that turns a fresh GPU instance into an aiplane GPU agent.

The launch template carries the image, instance profile and metadata settings; the provisioner
adds this per-instance script: it installs the agent package from the artifacts bucket, fetches
the contract's agent credential from its SSM parameter (never part of user data, which anyone
allowed to describe the instance can read) and runs `aiplane-gpu-agent` under systemd.
"""

from __future__ import annotations

import shlex

AGENT_PACKAGE_KEY = "gpu-agent/aiplane-agent.tar.gz"
ENV_FILE = "/etc/aiplane-gpu-agent.env"
ENV_BEGIN, ENV_END = "# --- agent environment ---", "# --- end agent environment ---"
CREDENTIAL_PARAMETER_VARIABLE = "AIPLANE_AGENT_CREDENTIAL_PARAMETER"
CREDENTIAL_VARIABLE = "AIPLANE_AGENT_CREDENTIAL"  # what the agent reads (agent.py)
CREDENTIAL_WAIT_ATTEMPTS, CREDENTIAL_WAIT_S = 60, 5  # the provisioner publishes it right after launch


def agent_environment(api_url: str, credential_parameter: str, port: int = 8787) -> dict[str, str]:
    return {
        "AIPLANE_API_URL": api_url,
        CREDENTIAL_PARAMETER_VARIABLE: credential_parameter,
        "AIPLANE_AGENT_PORT": str(port),
    }


def build(environment: dict[str, str], artifacts_bucket: str, region: str) -> str:
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
python3 -m venv /opt/aiplane-agent
aws s3 cp s3://{artifacts_bucket}/{AGENT_PACKAGE_KEY} /tmp/aiplane-agent.tar.gz
/opt/aiplane-agent/bin/pip install --quiet /tmp/aiplane-agent.tar.gz
cat > /etc/systemd/system/aiplane-gpu-agent.service <<'UNIT'
[Unit]
Description=aiplane GPU agent
After=network-online.target
[Service]
EnvironmentFile={ENV_FILE}
ExecStart=/opt/aiplane-agent/bin/aiplane-gpu-agent
Restart=always
KillSignal=SIGTERM
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
