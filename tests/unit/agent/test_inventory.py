"""GPU inventory from nvidia-smi output samples of real 8-GPU hosts (checked in under samples/)."""

from __future__ import annotations

import stat
from pathlib import Path

from aiplane_agent import inventory
from aiplane_agent.inventory import Inventory, parse_nvidia_smi_csv, parse_nvidia_smi_xml

SAMPLES = Path(__file__).with_name("samples")


def test_h100_box_from_nvidia_smi_q_x():
    gpus = parse_nvidia_smi_xml((SAMPLES / "nvidia-smi-q-x-8xH100.xml").read_text())
    assert [gpu.index for gpu in gpus] == list(range(8))
    first = gpus[0]
    assert first.name == "NVIDIA H100 80GB HBM3" and first.memory_mib == 81559 and first.memory_used_mib == 71234
    assert first.utilization == 0.97 and first.temperature_c == 61 and first.driver_version == "550.90.07"
    assert first.uuid.startswith("GPU-") and len({gpu.uuid for gpu in gpus}) == 8
    assert [gpu.utilization for gpu in gpus][2:4] == [0.0, 0.0]


def test_a100_box_from_the_csv_query():
    gpus = parse_nvidia_smi_csv((SAMPLES / "nvidia-smi-query-gpu-8xA100.csv").read_text())
    assert len(gpus) == 8 and {gpu.name for gpu in gpus} == {"NVIDIA A100-SXM4-80GB"}
    assert (gpus[6].memory_mib, gpus[6].memory_used_mib, gpus[6].utilization, gpus[6].temperature_c) == (
        81920,
        77800,
        1.0,
        67,
    )
    assert gpus[0].driver_version == "535.183.01"


def fake_nvidia_smi(tmp_path: Path, xml: str | None, csv: str) -> str:
    """A stand-in executable: `-q -x` prints the XML (or fails, like drivers without it), else the CSV."""
    (tmp_path / "gpus.xml").write_text(xml or "")
    (tmp_path / "gpus.csv").write_text(csv)
    script = tmp_path / "nvidia-smi"
    xml_branch = f"cat {tmp_path}/gpus.xml; exit 0" if xml else "exit 9"
    script.write_text(f'#!/bin/sh\nif [ "$1" = "-q" ]; then {xml_branch}; fi\ncat {tmp_path}/gpus.csv\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return f"{tmp_path}:/usr/bin:/bin"


def test_detect_prefers_the_xml_and_falls_back_to_csv(tmp_path, monkeypatch):
    xml, csv = (
        (SAMPLES / "nvidia-smi-q-x-8xH100.xml").read_text(),
        (SAMPLES / "nvidia-smi-query-gpu-8xA100.csv").read_text(),
    )
    monkeypatch.setenv("PATH", fake_nvidia_smi(tmp_path, xml, csv))
    host = Inventory.detect("auto", cpus=64, memory=1024)
    assert host.gpu_slots == 8 and host.gpu_type == "NVIDIA H100 80GB HBM3"
    assert host.capabilities() == {
        "gpu_count": 8,
        "cpu_cores": 64,
        "memory_gb": 1024,
        "gpu_type": "NVIDIA H100 80GB HBM3",
    }
    assert round(host.gpu_utilization(), 4) == round((97 + 95 + 100 + 43 + 12) / 800, 4)
    monkeypatch.setenv("PATH", fake_nvidia_smi(tmp_path, None, csv))
    assert inventory.detect_gpus()[0].name == "NVIDIA A100-SXM4-80GB"


def test_no_nvidia_smi_means_no_gpus_and_slots_are_configurable(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    host = Inventory.detect("auto")
    assert host.gpus == [] and host.gpu_slots == 0 and host.gpu_utilization() is None
    assert host.cpus >= 1 and host.memory_gb >= 1
    slots = Inventory.detect("2")  # local: scheduling slots, no devices
    assert slots.gpu_slots == 2 and slots.gpus == [] and "gpu_type" not in slots.capabilities()
    assert set(slots.host_load()) == {"load_average", "cpus", "memory_gb"}
