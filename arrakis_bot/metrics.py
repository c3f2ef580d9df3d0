"""The bot's figures: each command, button and form answered (ok or error) and how long it took
from arrival to the end of its answer, gateway reconnects per shard, and whether the gateway is
up. Recorded in the engine's recorder (memory only); its flusher sends them to Redis."""

from __future__ import annotations

import time

import interactions
from interactions import listen
from interactions.api.events import (CommandCompletion, CommandError, ComponentCompletion, ComponentError, Connect,
                                     Disconnect, ModalCompletion, ModalError, Ready, Resume)

MAX_TRACKED = 10_000  # interactions waiting for their answer; older ones are dropped


class BotMetrics(interactions.Extension):
    def __init__(self, bot, engine=None) -> None:
        self.metrics = engine.metrics
        self.arrived: dict[str, float] = {}
        self.connected_once = False

    def _shard(self, event) -> str:
        shard = getattr(event, "shard_id", None)
        return str(shard if shard is not None else getattr(self.bot, "shard_id", 0) or 0)

    @listen("raw_interaction_create")
    async def on_interaction(self, event) -> None:
        """When an interaction arrived (the raw gateway event, before interactions.py handles it)."""
        if len(self.arrived) >= MAX_TRACKED:
            self.arrived.clear()
        self.arrived[str(event.data.get("id"))] = time.monotonic()

    def _done(self, ctx, name: str, outcome: str) -> None:
        started = self.arrived.pop(str(getattr(ctx, "id", "")), None)
        self.metrics.bot(name, outcome, time.monotonic() - started if started is not None else None)

    @staticmethod
    def _command(ctx) -> str:
        return str(getattr(ctx, "invoke_target", None) or getattr(ctx, "custom_id", None) or "unknown")

    @listen(CommandCompletion)
    async def on_command_done(self, event) -> None:
        self._done(event.ctx, self._command(event.ctx), "ok")

    @listen(CommandError)
    async def on_command_error(self, event) -> None:
        self._done(event.ctx, self._command(event.ctx), "error")

    @listen(ComponentCompletion)
    async def on_component_done(self, event) -> None:
        self._done(event.ctx, self._command(event.ctx), "ok")

    @listen(ComponentError)
    async def on_component_error(self, event) -> None:
        self._done(event.ctx, self._command(event.ctx), "error")

    @listen(ModalCompletion)
    async def on_modal_done(self, event) -> None:
        self._done(event.ctx, self._command(event.ctx), "ok")

    @listen(ModalError)
    async def on_modal_error(self, event) -> None:
        self._done(event.ctx, self._command(event.ctx), "error")

    @listen(Ready)
    async def on_ready(self, event) -> None:
        """A new gateway session (after the first, a reconnect that could not resume)."""
        if self.connected_once:
            self.metrics.inc("arrakis_gateway_reconnects_total", self._shard(event))
        self.connected_once = True
        self.metrics.set("arrakis_gateway_connected", 1, self._shard(event))

    @listen(Connect)
    async def on_connect(self, event) -> None:  # a shard of the auto-sharded client
        self.metrics.set("arrakis_gateway_connected", 1, self._shard(event))

    @listen(Resume)
    async def on_resume(self, event) -> None:
        self.metrics.inc("arrakis_gateway_reconnects_total", self._shard(event))
        self.metrics.set("arrakis_gateway_connected", 1, self._shard(event))

    @listen(Disconnect)
    async def on_disconnect(self, event) -> None:
        self.metrics.set("arrakis_gateway_connected", 0, self._shard(event))
