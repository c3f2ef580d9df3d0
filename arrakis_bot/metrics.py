"""The bot's figures: each command, button and form answered (ok or error) and how long it took
from arrival to the end of its answer, gateway reconnects per shard, and whether the gateway is
up. Recorded in the engine's recorder (memory only); its flusher sends them to Redis."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import interactions
from interactions import listen
from interactions.api.events import (CommandCompletion, CommandError, ComponentCompletion, ComponentError,
                                     Disconnect, ModalCompletion, ModalError, ShardDisconnect)

if TYPE_CHECKING:
    from arrakis_engine.bootstrap import Engine

MAX_TRACKED = 10_000  # interactions waiting for their answer; older ones are dropped


class BotMetrics(interactions.Extension):
    def __init__(self, bot: interactions.Client, engine: Engine | None = None) -> None:
        self.metrics = engine.metrics
        self.arrived: dict[str, float] = {}
        self.ready_shards: set[int] = set()
        listeners = getattr(bot, "session_listeners", None)
        if listeners is not None:
            listeners.append(self.on_session)

    def _shard(self, event) -> str:
        shard = getattr(event, "shard_id", None)
        return str(shard if shard is not None else 0)

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

    def on_session(self, shard_id: int, what: str) -> None:
        """A shard's session began (READY: after its first, a reconnect that could not resume)
        or was resumed (RESUMED)."""
        shard = str(shard_id)
        if what == "resumed" or (what == "ready" and shard_id in self.ready_shards):
            self.metrics.inc("arrakis_gateway_reconnects_total", shard)
        self.ready_shards.add(shard_id)
        self.metrics.set("arrakis_gateway_connected", 1, shard)

    @listen(Disconnect)
    async def on_disconnect(self, event) -> None:  # the only shard of a one-shard bot
        self.metrics.set("arrakis_gateway_connected", 0, self._shard(event))

    @listen(ShardDisconnect)
    async def on_shard_disconnect(self, event) -> None:
        self.metrics.set("arrakis_gateway_connected", 0, self._shard(event))
