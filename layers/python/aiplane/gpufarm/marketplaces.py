"""GPU marketplace providers, reached over their HTTP APIs with keys from Secrets Manager.

Base URLs can be overridden (AIPLANE_VASTAI_API_URL, AIPLANE_IONET_API_URL) for a regional
endpoint or a stand-in, within the outbound-URL policy for marketplaces; the key secret holding no
value disables the provider with a clear error.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from typing import Any

from aiplane import outbound, outbound_policy
from aiplane.data.secrets import get_json_secret
from aiplane.gpufarm import gpu_models
from aiplane.gpufarm.offers import Offer
from aiplane.settings import get_settings
from aiplane_shared import resources

MARKETPLACE_TIMEOUT_S = 10.0


class MarketplaceError(Exception):
    """A marketplace call failed; the message says which provider and why."""


class Marketplace(ABC):
    name: str
    secret: resources.Secret
    url_setting: str  # the settings field that may point it elsewhere (a stand-in in tests)
    default_url: str

    @property
    def base_url(self) -> str:
        return (getattr(get_settings(), self.url_setting) or self.default_url).rstrip("/")

    def api_key(self) -> str:
        try:
            key = get_json_secret(self.secret.name).get("api_key")
        except Exception as error:  # Powertools wraps the ClientError of a missing or unreadable secret
            raise MarketplaceError(f"{self.name}: API key secret unreadable ({type(error).__name__})") from error
        if not key:
            raise MarketplaceError(f"{self.name}: no API key configured")
        return key

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = outbound.send(
                outbound_policy.MARKETPLACES,
                method,
                f"{self.base_url}{path}",
                headers=self.headers(self.api_key()),
                timeout=MARKETPLACE_TIMEOUT_S,
                **kwargs,
            )
            return outbound.json_of(response)
        except outbound.BadStatus as error:
            raise MarketplaceError(f"{self.name}: HTTP {error.status}: {error.text[:200]}") from error
        except outbound.BadResponse as error:
            raise MarketplaceError(f"{self.name}: answer is not JSON") from error
        except outbound.OutboundError as error:
            raise MarketplaceError(f"{self.name}: {error.cause_name}: {error}") from error

    @abstractmethod
    def headers(self, key: str) -> dict[str, str]:
        """How the provider wants its API key presented."""

    @abstractmethod
    def offers(self) -> list[Offer]:
        """Every offer the provider lists now."""

    @abstractmethod
    def rent(self, offer_id: str, duration_hours: float | None) -> str:
        """Rent the offer; returns the provider's id of the rental."""

    @abstractmethod
    def release(self, rental_id: str) -> None:
        """End the rental."""


class VastAi(Marketplace):
    """vast.ai REST API v0: /bundles search, /asks/{id} rent, /instances/{id} destroy."""

    name = "vastai"
    secret = resources.VASTAI_API_KEY_SECRET
    url_setting = "vastai_api_url"
    default_url = "https://console.vast.ai"

    def headers(self, key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"}

    def offers(self) -> list[Offer]:
        query = {"rentable": {"eq": True}, "verified": {"eq": True}, "type": "on-demand"}
        answer = self.request("GET", "/api/v0/bundles/", params={"q": json.dumps(query)})
        offers = []
        for item in answer.get("offers", []):
            offers.append(
                Offer(
                    id=str(item["id"]),
                    provider=self.name,
                    gpu_model=item.get("gpu_name", "unknown"),
                    vram_gb=gpu_models.nominal_vram_gb(float(item.get("gpu_ram", 0))),  # MiB
                    price_per_hour=round(float(item.get("dph_total", 0)), 4),
                    location=str(item.get("geolocation") or "unknown"),
                    available=bool(item.get("rentable", True)),
                    gpu_count=int(item.get("num_gpus", 1)),
                )
            )
        return offers

    def rent(self, offer_id: str, duration_hours: float | None) -> str:
        answer = self.request(
            "PUT", f"/api/v0/asks/{offer_id}/", json={"client_id": "me", "image": "pytorch/pytorch:latest", "disk": 32}
        )
        if not answer.get("success") or "new_contract" not in answer:
            raise MarketplaceError(f"{self.name}: rent refused: {answer.get('msg') or answer}")
        return str(answer["new_contract"])

    def release(self, rental_id: str) -> None:
        self.request("DELETE", f"/api/v0/instances/{rental_id}/")


class IoNet(Marketplace):
    """io.net IO Cloud API: device listing, deployments."""

    name = "ionet"
    secret = resources.IONET_API_KEY_SECRET
    url_setting = "ionet_api_url"
    default_url = "https://api.io.solutions"

    def headers(self, key: str) -> dict[str, str]:
        return {"x-api-key": key}

    def offers(self) -> list[Offer]:
        answer = self.request("GET", "/enterprise/v1/io-cloud/devices")
        offers = []
        for item in (answer.get("data") or {}).get("devices", []):
            offers.append(
                Offer(
                    id=str(item["device_id"]),
                    provider=self.name,
                    gpu_model=item.get("name", "unknown"),
                    vram_gb=round(float(item.get("vram_gb", 0))),
                    price_per_hour=round(float(item.get("price_per_hour", 0)), 4),
                    location=str(item.get("location") or "unknown"),
                    available=item.get("available", True) is True,
                    gpu_count=int(item.get("gpu_count", 1)),
                )
            )
        return offers

    def rent(self, offer_id: str, duration_hours: float | None) -> str:
        answer = self.request(
            "POST",
            "/enterprise/v1/io-cloud/deployments",
            json={"device_id": offer_id, "duration_hours": duration_hours or 1},
        )
        deployment = (answer.get("data") or {}).get("deployment_id")
        if not deployment:
            raise MarketplaceError(f"{self.name}: deployment refused: {answer}")
        return str(deployment)

    def release(self, rental_id: str) -> None:
        self.request("DELETE", f"/enterprise/v1/io-cloud/deployments/{rental_id}")


MARKETPLACES: dict[str, Marketplace] = {market.name: market for market in (VastAi(), IoNet())}
