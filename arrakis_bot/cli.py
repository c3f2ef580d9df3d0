"""``arrakis bot``: contributed to the ``arrakis`` command through the ``arrakis.commands``
entry-point group (setup.cfg), so the engine never imports the bot or interactions.py."""

from __future__ import annotations

import os

import click

from arrakis_engine.cli.base import CliState, pass_state
from arrakis_engine.cli.monitoring import metrics_port
from arrakis_engine.errors import ConfigError, ValidationError
from arrakis_engine.settings import Settings


@click.command()
@metrics_port
@click.option("--shard-count", envvar="DISCORD_SHARD_COUNT", default=None, metavar="N",
              help="Number of gateway shards in all (default: the number Discord recommends, one per 1,000 "
                   "servers). [env: DISCORD_SHARD_COUNT]")
@click.option("--shard-ids", envvar="DISCORD_SHARD_IDS", default=None, metavar="IDS",
              help="The shards this process runs, as 0-3 or 0,2 (default: all), or dyno/K on K dynos of the "
                   "Procfile's bot (DYNO=bot.N runs the ids whose remainder by K is N-1); needs --shard-count, so "
                   "that several processes can split the shards. [env: DISCORD_SHARD_IDS]")
@pass_state
def bot(state: CliState, shard_count: str | None, shard_ids: str | None) -> None:
    """Run the Discord bot: slash commands for community admins and members. With
    DISCORD_BOT_TOKEN it connects to Discord (DISCORD_API_BASE points it at a test server); with
    neither set, to the local Discord sandbox. SIGTERM or Ctrl-C closes its sessions and exits 0.

    It runs the shards Discord recommends (GET /gateway/bot) unless --shard-count says how many;
    a server belongs to shard (server id >> 22) % shards, and only that shard answers there."""
    from .sharding import ShardPlan

    if shard_ids is not None and not shard_ids.strip():
        # `--shard-ids "$IDS"` with IDS unset would run every shard here as well as wherever they
        # were meant to run: each interaction answered twice. An empty DISCORD_SHARD_IDS is unset.
        raise ValidationError("--shard-ids names no shard (it is empty); give ids like 0-3 or 0,2, or leave the "
                              "flag out to run every shard", field="shard_ids")
    settings = Settings.from_env()
    # flags, else the environment (click reads it), else a .env file (the settings read it)
    plan = ShardPlan.parse(settings.discord_shard_count if shard_count is None else shard_count,
                           settings.discord_shard_ids if shard_ids is None else shard_ids,
                           os.environ.get("DYNO"))  # before anything connects
    token = api_base = None
    if not settings.discord_bot_token:
        if settings.discord_api_base:
            raise ConfigError("the bot needs DISCORD_BOT_TOKEN with DISCORD_API_BASE (or neither of them for "
                              "the local Discord sandbox)")
        from arrakis_engine.sandbox import SANDBOX_TOKEN

        engine = state.engine
        api_base, token = engine.discord.base_url, SANDBOX_TOKEN  # starts the sandbox if it is not running
        click.echo(f"no DISCORD_BOT_TOKEN: connecting to the local Discord sandbox at {api_base} (not real Discord)",
                   err=True)
    else:
        click.echo("connecting to Discord…", err=True)
    if plan.count is not None or plan.ids is not None:
        click.echo(f"shards: {plan.describe()}", err=True)
    from .app import run_bot

    run_bot(state.engine, token=token, api_base=api_base, plan=plan)
