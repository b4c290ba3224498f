"""The agent reads GPUs from nvidia-smi when the host has it (a stand-in executable here)."""

import stat
import time

from aiplane.gpufarm.agent import LoadMeter, gpu_inventory


def fake_nvidia_smi(tmp_path, output: str) -> str:
    script = tmp_path / "nvidia-smi"
    lines = "".join(f"echo '{line}'\n" for line in output.splitlines())  # shell builtins only: PATH is replaced
    script.write_text(f"#!/bin/sh\n{lines}")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(tmp_path)


def test_gpus_from_nvidia_smi(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", fake_nvidia_smi(tmp_path, "NVIDIA A10G, 23028, 37\nNVIDIA A10G, 23028, 5"))
    assert gpu_inventory() == [
        {"name": "NVIDIA A10G", "memory_mib": 23028, "utilization": 0.37},
        {"name": "NVIDIA A10G", "memory_mib": 23028, "utilization": 0.05},
    ]
    assert LoadMeter(capacity=8).snapshot(gpu_inventory())["load"] == 0.21


def test_no_nvidia_smi_means_no_gpus_and_load_from_connections(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert gpu_inventory() == []
    meter = LoadMeter(capacity=4)
    started = meter.begin()
    meter.begin()
    assert meter.snapshot([])["connections"] == 2 and meter.snapshot([])["load"] == 0.5
    time.sleep(0.01)
    meter.end(started)
    assert meter.snapshot([])["response_time_ms"] > 0
