"""What aiplane knows about GPU models: vendor, market tier and relative performance.

Providers name models differently ("A10G", "RTX 4090", "NVIDIA A100-SXM4-80GB"); `describe`
normalises a name to an entry, and unknown models get a tier from their memory.
"""

from __future__ import annotations

from dataclasses import dataclass

HIGH_END, MID_RANGE, ENTRY = "high-end", "mid-range", "entry"
TIERS = (HIGH_END, MID_RANGE, ENTRY)


@dataclass(frozen=True)
class GpuModel:
    name: str
    vendor: str
    tier: str
    performance: float  # relative FP16 throughput, H100 = 100


_KNOWN: tuple[GpuModel, ...] = (
    GpuModel("H200", "NVIDIA", HIGH_END, 110),
    GpuModel("H100", "NVIDIA", HIGH_END, 100),
    GpuModel("A100", "NVIDIA", HIGH_END, 60),
    GpuModel("L40S", "NVIDIA", HIGH_END, 55),
    GpuModel("RTX 4090", "NVIDIA", HIGH_END, 45),
    GpuModel("RTX 6000 Ada", "NVIDIA", HIGH_END, 50),
    GpuModel("MI300X", "AMD", HIGH_END, 105),
    GpuModel("MI250", "AMD", HIGH_END, 55),
    GpuModel("A10G", "NVIDIA", MID_RANGE, 25),
    GpuModel("L4", "NVIDIA", MID_RANGE, 22),
    GpuModel("A40", "NVIDIA", MID_RANGE, 35),
    GpuModel("V100", "NVIDIA", MID_RANGE, 20),
    GpuModel("RTX 3090", "NVIDIA", MID_RANGE, 28),
    GpuModel("RTX A6000", "NVIDIA", MID_RANGE, 35),
    GpuModel("RX 7900 XTX", "AMD", MID_RANGE, 30),
    GpuModel("T4", "NVIDIA", ENTRY, 8),
    GpuModel("T4g", "NVIDIA", ENTRY, 8),
    GpuModel("K80", "NVIDIA", ENTRY, 3),
    GpuModel("M60", "NVIDIA", ENTRY, 4),
    GpuModel("Radeon Pro V520", "AMD", ENTRY, 7),
    GpuModel("RTX 3060", "NVIDIA", ENTRY, 10),
)
_BY_KEY = {model.name.lower().replace(" ", ""): model for model in _KNOWN}


def describe(name: str, *, vendor: str | None = None, vram_gb: float = 0) -> GpuModel:
    key = name.lower().replace(" ", "").replace("nvidia", "").replace("geforce", "").replace("amd", "")
    if key in _BY_KEY:
        return _BY_KEY[key]
    for known_key, model in sorted(_BY_KEY.items(), key=lambda item: -len(item[0])):
        if known_key in key:
            return model
    tier = HIGH_END if vram_gb >= 40 else MID_RANGE if vram_gb >= 16 else ENTRY
    guessed_vendor = vendor or ("AMD" if any(word in name.lower() for word in ("radeon", "mi", "rx ")) else "NVIDIA")
    return GpuModel(name, guessed_vendor, tier, performance=max(vram_gb, 1.0))


# EC2 On-Demand list prices (USD per hour, Linux, us-east-1) of the GPU instance types. EC2 has
# no price API (the Price List API lives in us-east-1 only and is not in every partition), so
# the published list is kept here; spot prices come live from DescribeSpotPriceHistory.
EC2_ON_DEMAND_USD_PER_HOUR: dict[str, float] = {
    "g4dn.xlarge": 0.526,
    "g4dn.2xlarge": 0.752,
    "g4dn.4xlarge": 1.204,
    "g4dn.8xlarge": 2.176,
    "g4dn.12xlarge": 3.912,
    "g4dn.16xlarge": 4.352,
    "g4dn.metal": 7.824,
    "g4ad.xlarge": 0.379,
    "g4ad.2xlarge": 0.541,
    "g4ad.4xlarge": 0.867,
    "g4ad.8xlarge": 1.734,
    "g4ad.16xlarge": 3.468,
    "g5.xlarge": 1.006,
    "g5.2xlarge": 1.212,
    "g5.4xlarge": 1.624,
    "g5.8xlarge": 2.448,
    "g5.12xlarge": 5.672,
    "g5.16xlarge": 4.096,
    "g5.24xlarge": 8.144,
    "g5.48xlarge": 16.288,
    "g5g.xlarge": 0.42,
    "g5g.2xlarge": 0.556,
    "g5g.4xlarge": 0.828,
    "g5g.8xlarge": 1.372,
    "g5g.16xlarge": 2.744,
    "g5g.metal": 2.744,
    "g6.xlarge": 0.805,
    "g6.2xlarge": 0.978,
    "g6.4xlarge": 1.323,
    "g6.8xlarge": 2.014,
    "g6.12xlarge": 4.602,
    "g6.16xlarge": 3.397,
    "g6.24xlarge": 6.675,
    "g6.48xlarge": 13.35,
    "g6e.xlarge": 1.861,
    "g6e.2xlarge": 2.242,
    "g6e.4xlarge": 3.004,
    "g6e.8xlarge": 4.529,
    "g6e.12xlarge": 10.493,
    "g6e.16xlarge": 7.577,
    "g6e.24xlarge": 15.066,
    "g6e.48xlarge": 30.131,
    "p3.2xlarge": 3.06,
    "p3.8xlarge": 12.24,
    "p3.16xlarge": 24.48,
    "p3dn.24xlarge": 31.212,
    "p4d.24xlarge": 32.773,
    "p4de.24xlarge": 40.966,
    "p5.48xlarge": 98.32,
    "p5e.48xlarge": 108.0,
    "g3.4xlarge": 1.14,
    "g3.8xlarge": 2.28,
    "g3.16xlarge": 4.56,
    "g3s.xlarge": 0.75,
    "p2.xlarge": 0.9,
    "p2.8xlarge": 7.2,
    "p2.16xlarge": 14.4,
}

# Memory sizes GPUs are sold with (GB). Providers report usable memory in MiB, a little under
# the nominal size (an A10G reports 22,888 MiB and is a 24 GB card).
_NOMINAL_SIZES_GB = (
    1,
    2,
    3,
    4,
    6,
    8,
    10,
    11,
    12,
    16,
    20,
    24,
    32,
    40,
    48,
    64,
    80,
    94,
    96,
    128,
    141,
    144,
    180,
    192,
    256,
    288,
)


def nominal_vram_gb(memory_mib: float) -> int:
    gib = memory_mib / 1024
    return next((size for size in _NOMINAL_SIZES_GB if size >= gib - 0.5), round(gib))
