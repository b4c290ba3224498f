"""A GPU offer, whichever provider it comes from, and the filters every provider's offers pass
through (the catalog lists them; marketplaces and EC2 produce them)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from aiplane.errors import ValidationError


@dataclass(frozen=True)
class Filters:
    min_vram: float | None = None
    max_price: float | None = None
    gpu_model: str | None = None
    location: str | None = None

    def __post_init__(self) -> None:
        if self.min_vram is not None and self.min_vram < 0:
            raise ValidationError("min_vram must not be negative", param="min_vram")
        if self.max_price is not None and self.max_price < 0:
            raise ValidationError("max_price must not be negative", param="max_price")

    def admits(self, offer: Offer) -> bool:
        if self.min_vram is not None and offer.vram_gb < self.min_vram:
            return False
        if self.max_price is not None and offer.price_per_hour > self.max_price:
            return False
        if self.gpu_model and _squash(self.gpu_model) not in _squash(offer.gpu_model):
            return False
        if self.location and self.location.lower() not in offer.location.lower():
            return False
        return True


def _squash(text: str) -> str:
    return text.lower().replace(" ", "").replace("-", "")


@dataclass(frozen=True)
class Offer:
    id: str
    provider: str
    gpu_model: str
    vram_gb: float  # per GPU
    price_per_hour: float
    location: str
    available: bool = True
    gpu_count: int = 1
    gpu_vendor: str = "NVIDIA"
    instance_type: str | None = None  # aws only
    spot_price_per_hour: float | None = None  # aws only
    extra: dict[str, Any] = field(default_factory=dict)

    def public(self) -> dict[str, Any]:
        body = asdict(self)
        body.pop("extra")
        body["gpu_name"] = self.gpu_model  # AIServe.Farm's CLI reads this name
        return {key: value for key, value in body.items() if value is not None}
