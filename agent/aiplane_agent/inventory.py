"""What this host has: GPUs from nvidia-smi (XML, or CSV from older drivers), CPUs, memory, load."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import asdict, dataclass
from typing import Any
from xml.etree import ElementTree

NVIDIA_SMI_TIMEOUT_S = 10
CSV_QUERY = "index,uuid,name,memory.total,memory.used,utilization.gpu,temperature.gpu,driver_version"


@dataclass(frozen=True)
class Gpu:
    index: int
    uuid: str
    name: str
    memory_mib: int
    memory_used_mib: int
    utilization: float  # 0..1
    temperature_c: int | None = None
    driver_version: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {name: value for name, value in asdict(self).items() if value is not None}


def _mib(text: str | None) -> int:
    """'81559 MiB' -> 81559; N/A -> 0."""
    try:
        return int(float((text or "").split()[0]))
    except (ValueError, IndexError):
        return 0


def _number(text: str | None) -> float | None:
    try:
        return float((text or "").split()[0].rstrip("%C"))
    except (ValueError, IndexError):
        return None


def parse_nvidia_smi_xml(document: str) -> list[Gpu]:
    """`nvidia-smi -q -x`."""
    root = ElementTree.fromstring(document)
    driver = root.findtext("driver_version")
    gpus = []
    for position, gpu in enumerate(root.findall("gpu")):
        index = gpu.findtext("minor_number")
        utilization = _number(gpu.findtext("utilization/gpu_util"))
        temperature = _number(gpu.findtext("temperature/gpu_temp"))
        gpus.append(
            Gpu(
                index=int(index) if index and index.isdigit() else position,
                uuid=gpu.findtext("uuid") or "",
                name=(gpu.findtext("product_name") or "").strip(),
                memory_mib=_mib(gpu.findtext("fb_memory_usage/total")),
                memory_used_mib=_mib(gpu.findtext("fb_memory_usage/used")),
                utilization=(utilization or 0) / 100,
                temperature_c=int(temperature) if temperature is not None else None,
                driver_version=driver,
            )
        )
    return gpus


def parse_nvidia_smi_csv(output: str) -> list[Gpu]:
    """`nvidia-smi --query-gpu=CSV_QUERY --format=csv,noheader,nounits`."""
    gpus = []
    for line in output.strip().splitlines():
        index, uuid, name, total, used, utilization, temperature, driver = (part.strip() for part in line.split(","))
        temperature_c = _number(temperature)
        gpus.append(
            Gpu(
                index=int(index),
                uuid=uuid,
                name=name,
                memory_mib=_mib(total),
                memory_used_mib=_mib(used),
                utilization=(_number(utilization) or 0) / 100,
                temperature_c=int(temperature_c) if temperature_c is not None else None,
                driver_version=driver or None,
            )
        )
    return gpus


def _nvidia_smi(*args: str) -> str | None:
    try:
        return subprocess.run(
            ["nvidia-smi", *args], capture_output=True, text=True, timeout=NVIDIA_SMI_TIMEOUT_S, check=True
        ).stdout
    except (subprocess.SubprocessError, OSError):
        return None


def detect_gpus() -> list[Gpu]:
    """The host's NVIDIA GPUs; none where nvidia-smi is absent or fails (CPU-only host)."""
    if not shutil.which("nvidia-smi"):
        return []
    document = _nvidia_smi("-q", "-x")
    if document:
        try:
            return parse_nvidia_smi_xml(document)
        except ElementTree.ParseError:
            pass
    output = _nvidia_smi(f"--query-gpu={CSV_QUERY}", "--format=csv,noheader,nounits")
    try:
        return parse_nvidia_smi_csv(output) if output else []
    except ValueError:
        return []


def memory_gb() -> int:
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) // (1024 * 1024)
    except OSError:
        pass
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")) // (1024**3)


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


@dataclass
class Inventory:
    """The capacity this agent offers: real GPUs, or (AIPLANE_AGENT_GPUS=N) N scheduling slots."""

    gpus: list[Gpu]
    gpu_slots: int
    cpus: int
    memory_gb: int

    @classmethod
    def detect(cls, gpus_setting: str = "auto", cpus: int | None = None, memory: int | None = None) -> Inventory:
        gpus = detect_gpus() if gpus_setting == "auto" else []
        slots = len(gpus) if gpus_setting == "auto" else int(gpus_setting)
        return cls(gpus=gpus, gpu_slots=slots, cpus=cpus or cpu_count(), memory_gb=memory or max(1, memory_gb()))

    def refresh(self) -> None:
        """Utilisation and memory in use change; the devices do not."""
        if self.gpus:
            self.gpus = detect_gpus() or self.gpus

    @property
    def gpu_type(self) -> str | None:
        return self.gpus[0].name if self.gpus else None

    def capabilities(self) -> dict[str, Any]:
        """As the mlworker scheduler registers a worker."""
        capabilities: dict[str, Any] = {
            "gpu_count": self.gpu_slots,
            "cpu_cores": self.cpus,
            "memory_gb": self.memory_gb,
        }
        if self.gpu_type:
            capabilities["gpu_type"] = self.gpu_type[:64]
        return capabilities

    def gpu_utilization(self) -> float | None:
        return sum(gpu.utilization for gpu in self.gpus) / len(self.gpus) if self.gpus else None

    def host_load(self) -> dict[str, Any]:
        one, five, fifteen = os.getloadavg()
        return {
            "load_average": [round(one, 2), round(five, 2), round(fifteen, 2)],
            "cpus": self.cpus,
            "memory_gb": self.memory_gb,
        }
