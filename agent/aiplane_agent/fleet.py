"""The gpufarm component: joins its contract's fleet (register at the listener's URL with the
GPU inventory), heartbeats the load, rejoins when dropped, and deregisters when stopped."""

from __future__ import annotations

import time

import httpx

from aiplane_agent.api import ApiError
from aiplane_agent.components import AgentContext, BaseComponent
from aiplane_agent.listener import LoadMeter
from aiplane_agent.log import log


class GpufarmMembership(BaseComponent):
    name = "gpufarm"

    def __init__(self, ctx: AgentContext, meter: LoadMeter) -> None:
        self.ctx = ctx
        self.meter = meter
        self.registered = False
        self.next_beat = 0.0

    def tick(self, ctx: AgentContext) -> None:
        if time.monotonic() < self.next_beat:
            return
        self.next_beat = time.monotonic() + ctx.config.heartbeat_s
        try:
            if not self.registered:
                # Refused until the contract turns running, a moment after its instance does.
                ctx.api.gpufarm_register(ctx.instance_id, ctx.url, [gpu.as_dict() for gpu in ctx.inventory.gpus])
                self.registered = True
                log("registered with gpufarm", instance_id=ctx.instance_id, url=ctx.url)
                return
            ctx.inventory.refresh()
            ctx.api.gpufarm_heartbeat(ctx.instance_id, self.meter.snapshot(ctx.inventory.gpu_utilization()))
        except ApiError as error:
            if error.status_code == 404:  # dropped out (missed heartbeats): join again at once
                self.registered, self.next_beat = False, 0.0
            log("gpufarm refused", status=error.status_code, error=error.body[:300])
        except httpx.HTTPError as error:
            log("gpufarm unreachable", error=type(error).__name__)  # the next beat tries again

    def status(self) -> dict:
        return {"registered": self.registered}

    def stop(self) -> None:
        if not self.registered:
            return
        try:
            self.ctx.api.gpufarm_deregister(self.ctx.instance_id)
        except (ApiError, httpx.HTTPError) as error:
            log("gpufarm deregistration failed", error=str(error))
