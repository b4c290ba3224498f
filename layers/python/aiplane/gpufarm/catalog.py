"""The GPU catalog: offers from every provider, filtered the same way.

`aws` offers are EC2 instance types with GPUs (their GpuInfo from DescribeInstanceTypes) in each
zone that offers them, priced at the On-Demand list price with the live spot price beside it.
Marketplace providers (`vastai`, `ionet`) are HTTP adapters (`marketplaces.py`). A provider that
fails is reported in `errors`; the others still answer.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from threading import Lock
from typing import Any

from aiplane.data.aws import client
from aiplane.errors import ValidationError
from aiplane.gpufarm import gpu_models
from aiplane.gpufarm.marketplaces import MARKETPLACES, MarketplaceError
from aiplane.gpufarm.offers import Filters, Offer
from aiplane.settings import get_settings

AWS = "aws"
PROVIDERS = (AWS, *MARKETPLACES)
ALL = "all"
# AIServe.Farm's CLI names the marketplaces by their domains.
PROVIDER_ALIASES = {"vast.ai": "vastai", "io.net": "ionet"}
_EC2_CATALOG_CACHE_S = 300.0  # instance types and list prices change rarely
SPOT_PRICE_CACHE_S = 300.0  # spot prices: one DescribeSpotPriceHistory per region and 5 minutes, not per request


def canonical_provider(provider: str) -> str:
    """The contract's provider name for one of `PROVIDER_ALIASES`."""
    return PROVIDER_ALIASES.get(provider.lower(), provider)


def check_provider(provider: str, *, allow_all: bool) -> str:
    allowed = (*PROVIDERS, ALL) if allow_all else PROVIDERS
    if provider not in allowed:
        raise ValidationError(f"unknown provider {provider!r}; expected one of {', '.join(allowed)}", param="provider")
    return provider


def list_offers(provider: str, filters: Filters) -> tuple[list[Offer], list[dict[str, str]]]:
    """Offers of one provider (or all) that pass the filters, cheapest first, and per-provider errors."""
    check_provider(provider, allow_all=True)
    offers: list[Offer] = []
    errors: list[dict[str, str]] = []
    for name in PROVIDERS if provider == ALL else (provider,):
        try:
            offers.extend(offer for offer in _offers_of(name) if filters.admits(offer))
        except MarketplaceError as error:
            errors.append({"provider": name, "error": str(error)})
        except Exception as error:  # one provider down must not hide the others
            errors.append({"provider": name, "error": f"{type(error).__name__}: {error}"})
    offers.sort(key=lambda offer: (offer.price_per_hour, offer.provider, offer.id))
    return offers, errors


def find_offer(provider: str, offer_id: str) -> Offer | None:
    return next((offer for offer in _offers_of(provider) if offer.id == offer_id), None)


def _offers_of(provider: str) -> list[Offer]:
    if provider == AWS:
        return ec2_offers()
    return MARKETPLACES[provider].offers()


# EC2
@dataclass(frozen=True)
class Ec2GpuType:
    instance_type: str
    gpu_model: str
    gpu_vendor: str
    gpu_count: int
    vram_gb: float  # per GPU
    on_demand_price: float | None


_ec2_cache: dict[Any, Any] = {}
_ec2_cache_lock = Lock()


def ec2_gpu_types() -> dict[str, Ec2GpuType]:
    """Every instance type of the priced GPU families whose DescribeInstanceTypes entry carries GpuInfo
    (asking for those families only: the whole list is about a thousand types)."""
    with _ec2_cache_lock:
        cached = _ec2_cache.get("types")
        if cached and time.monotonic() - cached[0] < _EC2_CATALOG_CACHE_S:
            return cached[1]
        types: dict[str, Ec2GpuType] = {}
        families = sorted({f"{name.split('.')[0]}.*" for name in gpu_models.EC2_ON_DEMAND_USD_PER_HOUR})
        paginator = client("ec2").get_paginator("describe_instance_types")
        for page in paginator.paginate(Filters=[{"Name": "instance-type", "Values": families}]):
            for entry in page["InstanceTypes"]:
                gpu_info = entry.get("GpuInfo")
                if not gpu_info or not gpu_info.get("Gpus"):
                    continue
                gpu = gpu_info["Gpus"][0]
                name = entry["InstanceType"]
                types[name] = Ec2GpuType(
                    instance_type=name,
                    gpu_model=gpu["Name"],
                    gpu_vendor=gpu.get("Manufacturer", "NVIDIA"),
                    gpu_count=sum(g.get("Count", 1) for g in gpu_info["Gpus"]),
                    vram_gb=gpu_models.nominal_vram_gb(gpu.get("MemoryInfo", {}).get("SizeInMiB", 0)),
                    on_demand_price=gpu_models.EC2_ON_DEMAND_USD_PER_HOUR.get(name),
                )
        _ec2_cache["types"] = (time.monotonic(), types)
        return types


def ec2_zones_offering(instance_types: list[str]) -> dict[str, list[str]]:
    """instance type -> the availability zones that offer it, in zone order (cached like the types)."""
    with _ec2_cache_lock:
        cached = _ec2_cache.get("zones")
        if not cached or time.monotonic() - cached[0] >= _EC2_CATALOG_CACHE_S:
            cached = _ec2_cache["zones"] = (time.monotonic(), {})
    known: dict[str, list[str]] = cached[1]
    missing = [name for name in instance_types if name not in known]
    if missing:
        known.update(_describe_zones_offering(missing))
    return {name: known.get(name, []) for name in instance_types}


def _describe_zones_offering(instance_types: list[str]) -> dict[str, list[str]]:
    zones: dict[str, list[str]] = {name: [] for name in instance_types}
    paginator = client("ec2").get_paginator("describe_instance_type_offerings")
    for start in range(0, len(instance_types), 100):
        chunk = instance_types[start : start + 100]
        for page in paginator.paginate(
            LocationType="availability-zone", Filters=[{"Name": "instance-type", "Values": chunk}]
        ):
            for offering in page["InstanceTypeOfferings"]:
                zones.setdefault(offering["InstanceType"], []).append(offering["Location"])
    return {name: sorted(found) for name, found in zones.items()}


def ec2_spot_prices(instance_types: list[str]) -> dict[tuple[str, str], float]:
    """(instance type, zone) -> the latest Linux spot price, cached per region for `SPOT_PRICE_CACHE_S`
    (each Lambda instance reads them once in that time)."""
    key = ("spot", get_settings().region, tuple(sorted(instance_types)))
    with _ec2_cache_lock:
        cached = _ec2_cache.get(key)
        if cached and time.monotonic() - cached[0] < SPOT_PRICE_CACHE_S:
            return cached[1]
    prices = _describe_spot_prices(instance_types)
    with _ec2_cache_lock:
        _ec2_cache[key] = (time.monotonic(), prices)
    return prices


def _describe_spot_prices(instance_types: list[str]) -> dict[tuple[str, str], float]:
    prices: dict[tuple[str, str], tuple[datetime, float]] = {}
    paginator = client("ec2").get_paginator("describe_spot_price_history")
    pages = paginator.paginate(
        InstanceTypes=instance_types, ProductDescriptions=["Linux/UNIX"], StartTime=datetime.now(UTC)
    )
    for page in pages:
        for entry in page["SpotPriceHistory"]:
            key = (entry["InstanceType"], entry["AvailabilityZone"])
            stamp = entry.get("Timestamp") or datetime.now(UTC)
            if key not in prices or stamp > prices[key][0]:
                prices[key] = (stamp, float(entry["SpotPrice"]))
    return {key: price for key, (_, price) in prices.items()}


def ec2_offer_id(instance_type: str, zone: str) -> str:
    return f"{instance_type}@{zone}"


def parse_ec2_offer_id(offer_id: str) -> tuple[str, str | None]:
    instance_type, _, zone = offer_id.partition("@")
    return instance_type, zone or None


def ec2_offers() -> list[Offer]:
    types = ec2_gpu_types()
    priced = [name for name, gpu_type in types.items() if gpu_type.on_demand_price is not None]
    zones = ec2_zones_offering(priced)
    spot = ec2_spot_prices(priced)
    offers = []
    for name in priced:
        gpu_type = types[name]
        for zone in zones.get(name, []):
            offers.append(
                Offer(
                    id=ec2_offer_id(name, zone),
                    provider=AWS,
                    gpu_model=gpu_type.gpu_model,
                    vram_gb=gpu_type.vram_gb,
                    price_per_hour=gpu_type.on_demand_price or 0.0,
                    location=zone,
                    available=True,
                    gpu_count=gpu_type.gpu_count,
                    gpu_vendor=gpu_type.gpu_vendor,
                    instance_type=name,
                    spot_price_per_hour=spot.get((name, zone)),
                )
            )
    return offers


def acceptable_instance_types(requested: str) -> list[str]:
    """The requested type first, then every priced type with the same GPU model and the same
    number of GPUs, cheapest first: where the provisioner may fail over to when capacity runs
    out. Never a larger GPU count (a g5.xlarge request never becomes a g5.48xlarge); the
    provisioner also keeps each candidate within the contract's price limit."""
    types = ec2_gpu_types()
    wanted = types.get(requested)
    if wanted is None:
        return [requested]
    alternatives = sorted(
        (
            t
            for t in types.values()
            if t.instance_type != requested
            and t.gpu_model == wanted.gpu_model
            and t.gpu_count == wanted.gpu_count
            and t.on_demand_price is not None
        ),
        key=lambda t: (t.on_demand_price, t.instance_type),
    )
    return [requested, *(t.instance_type for t in alternatives)]


def ec2_offer(offer_id: str) -> Offer | None:
    """The aws offer an id names (`<type>@<zone>` or a bare type), priced; None if unknown or unpriced."""
    instance_type, zone = parse_ec2_offer_id(offer_id)
    gpu_type = ec2_gpu_types().get(instance_type)
    if gpu_type is None or gpu_type.on_demand_price is None:
        return None
    return Offer(
        id=offer_id,
        provider=AWS,
        gpu_model=gpu_type.gpu_model,
        vram_gb=gpu_type.vram_gb,
        price_per_hour=gpu_type.on_demand_price,
        location=zone or "",
        gpu_count=gpu_type.gpu_count,
        gpu_vendor=gpu_type.gpu_vendor,
        instance_type=instance_type,
    )
