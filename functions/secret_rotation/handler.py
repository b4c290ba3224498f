"""Secrets Manager rotation function for the JWT signing keys and the admin API key."""

from typing import Any

from aiplane.cold_start import init_done
from aiplane.data.rotation import rotate
from aiplane.observability import logger


def handler(event: dict[str, Any], context: Any) -> None:
    logger.info("rotation step", extra={"step": event["Step"], "secret": event["SecretId"]})
    rotate(event["Step"], event["SecretId"], event["ClientRequestToken"])


init_done()  # the end of init (aiplane.cold_start)
