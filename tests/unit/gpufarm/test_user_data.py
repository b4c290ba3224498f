"""The user data that installs the agent artifact and runs it under systemd."""

import pytest
from aiplane_agent.config import parse_args
from aiplane_agent.runners import RunnerUnavailable, choose_runner

from aiplane.gpufarm import user_data


def test_user_data_installs_the_uploaded_artifact_and_runs_it_under_systemd_with_restart():
    environment = user_data.agent_environment(
        "https://gpu.example/prod",
        "/p/gpufarm/agent-credentials/ct-1",
        mlworker_url="https://ml.example/prod",
        worker_id="gpu-ct-1",
    )
    script = user_data.build(environment, "s3://cdk-assets-bucket/abc123.zip", "us-east-1")
    assert "aws s3 cp --region us-east-1 s3://cdk-assets-bucket/abc123.zip /tmp/aiplane-agent.zip" in script
    assert "zipfile.ZipFile(sys.argv[1]).extractall" in script
    assert "/opt/aiplane-agent/venv/bin/pip install --quiet -r /opt/aiplane-agent/requirements.txt" in script
    assert "ExecStart=/opt/aiplane-agent/venv/bin/python /opt/aiplane-agent/aiplane-agent.pyz" in script
    assert "Restart=always" in script and "Delegate=yes" in script and "StateDirectory=aiplane-agent" in script
    assert "systemctl enable --now aiplane-gpu-agent" in script
    # The credential is fetched at boot, never written into user data.
    assert "aws ssm get-parameter" in script and "--with-decryption" in script
    assert user_data.parse_environment(script) == environment
    assert (
        environment["AIPLANE_MLWORKER_URL"] == "https://ml.example/prod"
        and environment["AIPLANE_WORKER_ID"] == "gpu-ct-1"
    )


def test_the_agent_on_a_cloud_host_runs_work_in_containers_only(monkeypatch, tmp_path):
    """With the process runner a renter's task would run as the agent's user, beside its environment
    file and contract credential: the environment user data writes makes the agent refuse it."""
    environment = user_data.agent_environment(
        "https://gpu.example/prod",
        "/p/gpufarm/agent-credentials/ct-1",
        mlworker_url="https://ml.example/prod",
        worker_id="gpu-ct-1",
    )
    script = user_data.build(environment, "s3://cdk-assets-bucket/abc123.zip", "us-east-1")
    written = user_data.parse_environment(script)
    assert written["AIPLANE_AGENT_RUNNER"] == "container" and written["AIPLANE_AGENT_REQUIRE_CONTAINER"] == "true"
    assert "Wants=network-online.target docker.service" in script
    for name, value in {**written, "AIPLANE_AGENT_CREDENTIAL": "c", "PATH": str(tmp_path)}.items():  # PATH: no docker
        monkeypatch.setenv(name, value)
    config = parse_args([])
    assert config.require_container and config.runner == "container"
    with pytest.raises(SystemExit):
        parse_args(["--runner", "process"])
    with pytest.raises(RunnerUnavailable):
        choose_runner(config)
