"""The long-running processes of the Procfile: ``arrakis worker`` and ``arrakis scheduler``."""

from __future__ import annotations

import os
import signal
import sys
import time

import click

from .base import CliState, cli, pass_state
from .monitoring import metrics_port


def stop_on_sigterm() -> None:
    """SIGTERM (honcho, systemd, a platform stopping the process) ends a long-running command
    cleanly: the engine is closed (embedded servers let go) and the exit status is 0."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))


@cli.command()
@metrics_port
@click.option("--burst", is_flag=True, help="Stop when the queues are empty.")
@click.option("--name", default=None, help="Worker name.")
@pass_state
def worker(state: CliState, burst: bool, name: str | None) -> None:
    """Run a synthesis worker (RQ), serving every community's queue in turn. A failing job is one
    line (why, and the tries left); --debug adds its traceback."""
    from ..synthesis.rq_queue import BASE, EngineWorker, recover_abandoned

    stop_on_sigterm()  # until RQ's own handler (a warm shutdown) takes over
    engine = state.engine
    restored = engine.freeze.check()  # the freeze flags are re-asserted from PostgreSQL first
    if restored:
        click.echo(f"freeze flags: Redis had lost {', '.join(restored)}; restored from the database", err=True)
    for job_id in recover_abandoned(engine.redis):
        click.echo(f"requeued {job_id}, abandoned by a worker that died", err=True)
    w = EngineWorker([BASE], connection=engine.redis, name=name, engine=engine, debug=state.debug)
    w.work(burst=burst, with_scheduler=True, logging_level=engine.settings.log_level)


@cli.command()
@metrics_port
@click.option("--interval", type=int, default=6 * 3600, show_default=True, help="Seconds between reconcile rounds.")
@click.option("--flush-interval", type=int, default=30, show_default=True,
              help="Seconds between sends of the manifest outbox to the shadow store.")
@click.option("--once", is_flag=True, help="One round, then stop.")
@pass_state
def scheduler(state: CliState, interval: int, flush_interval: int, once: bool) -> None:
    """Reconcile every synthesized community every --interval seconds, keep sending the manifest
    outbox to the shadow store (so an S3 outage heals by itself), expire approval requests after 24
    hours and remind reviewers of those pending for 12. Signs an audit digest into the shadow store
    every ARRAKIS_AUDIT_DIGEST_INTERVAL seconds (300) and within seconds of a security event, and
    keeps the freeze flags in Redis equal to the kill switch's state in PostgreSQL."""
    from ..errors import ArrakisError

    stop_on_sigterm()
    engine = state.engine
    next_round = next_flush = 0.0
    tick = min(2.0, float(flush_interval))  # how soon a security event is anchored
    while True:
        now = time.monotonic()
        if now >= next_flush:
            try:
                restored = engine.freeze.check()
            except ArrakisError as exc:  # the Discord gate stays closed meanwhile if the cache is gone
                restored = []
                click.echo(f"freeze flags not checked: {exc}", err=True)
            if restored:
                click.echo(f"freeze flags: Redis had lost {', '.join(restored)}; restored from the database", err=True)
            flushed = engine.archive.try_flush()
            if flushed and (flushed["delivered"] or flushed["pending"] or once):
                click.echo(f"shadow store: sent {flushed['delivered']}, {flushed['pending']} waiting")
            elif once:
                click.echo("shadow store: not reached this round; new manifest versions wait in the outbox")
            approvals = engine.approvals
            expired, reminded = approvals.expire_due(), approvals.remind_due()
            if expired or reminded or once:
                click.echo(f"approvals: {len(expired)} expired, {len(reminded)} reminded")
            next_flush = now + flush_interval
        try:
            why = engine.audit_anchor.due()
            if why:
                digest = engine.audit_anchor.anchor(reason=why)
                if digest:
                    click.echo(f"audit digest #{digest['number']}: {digest['rows']} new row(s) in "
                               f"{digest['chains']} chain(s) ({why})")
                    for chain, problems in digest["refused"].items():
                        click.echo(f"audit digest: chain {chain} NOT extended, it no longer matches what was "
                                   f"anchored: {'; '.join(problems[:3])}", err=True)
        except ArrakisError as exc:
            click.echo(f"audit digest not written: {exc}", err=True)
        if now >= next_round:
            for line in engine.reconcile_round.run():
                click.echo(line)
            next_round = time.monotonic() + interval
        if once:
            return
        time.sleep(tick)


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=int, envvar="PORT", default=8080, show_default=True, help="Port (default: $PORT).")
@pass_state
def web(state: CliState, host: str, port: int) -> None:
    """Serve the wallet page members reach from /verify (GET /verify/<link>), and Slack's button
    presses for approval requests (POST /slack/interactions) when SLACK_SIGNING_SECRET is set;
    requests not signed by Slack, stale or replayed are refused. ARRAKIS_PUBLIC_URL is the address
    members reach this process at (it goes in /verify's links and in the signed messages); unset,
    they name the address served here (--port or $PORT)."""
    from dataclasses import replace

    from ..web import serve

    served = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::', '') else host}:{port}"
    # Without ARRAKIS_PUBLIC_URL, links and signed messages name the port actually served.
    state.adjust_settings = lambda s: s if s.public_url_explicit else replace(s, public_url=served)
    engine = state.engine
    engine.verification.announce(engine.settings.public_url)
    click.echo(f"wallet page on http://{host}:{port}/verify/… (links say {engine.settings.public_url})", err=True)
    if engine.settings.slack_signing_secret:
        click.echo(f"listening for Slack on http://{host}:{port}/slack/interactions", err=True)
    try:
        serve(engine, engine.settings.slack_signing_secret, host=host, port=port)
    finally:
        engine.verification.withdraw()


@cli.command()
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
    from arrakis_bot.sharding import ShardPlan

    from ..errors import ConfigError
    from ..settings import Settings

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
        from ..sandbox import SANDBOX_TOKEN

        engine = state.engine
        api_base, token = engine.discord.base_url, SANDBOX_TOKEN  # starts the sandbox if it is not running
        click.echo(f"no DISCORD_BOT_TOKEN: connecting to the local Discord sandbox at {api_base} (not real Discord)",
                   err=True)
    else:
        click.echo("connecting to Discord…", err=True)
    if plan.count is not None or plan.ids is not None:
        click.echo(f"shards: {plan.describe()}", err=True)
    from arrakis_bot.app import run_bot  # the engine itself never imports the bot

    run_bot(state.engine, token=token, api_base=api_base, plan=plan)


@cli.command()
@metrics_port
@click.option("--chain", "chains", multiple=True, help="Chains to follow (default: every chain with RPC_URLS_*).")
@click.option("--interval", type=float, default=1.0, show_default=True, help="Seconds between polls of each chain.")
@click.option("--full-every", type=float, default=6 * 3600, show_default=True,
              help="Seconds between full syncs of every community (the safety net).")
@click.option("--once", is_flag=True, help="One step per chain, then stop.")
@pass_state
def watcher(state: CliState, chains: tuple[str, ...], interval: float, full_every: float, once: bool) -> None:
    """Follow new blocks and turn tracked assets' transfers into role updates within seconds.

    Per chain: polls the head, waits CONFIRMATIONS_<CHAIN> blocks (default 2), reads the transfers
    of every community's assets in one request per step, undoes blocks a reorg took away, and
    re-ranks the communities that moved; their role updates go first in the queue. Every 15 s it
    plans the roles of communities that moved in the last 10 minutes again (no chain reads), so
    an update whose job was lost is queued again. Resumes from its last block after a restart."""
    from ..chain.watcher import ChainWatcher
    from ..errors import ArrakisError, ConfigError, ValidationError
    from ..settings import CHAINS
    from ..validation import shown

    unknown = [c for c in chains if c not in CHAINS]
    if unknown:  # a typo is not a missing endpoint
        raise ValidationError(f"unknown chain {shown(unknown[0])}; the chains are {', '.join(CHAINS)}", field="chain")
    stop_on_sigterm()
    engine = state.engine
    if not chains and not engine.chain_readers and not once:
        # Nothing to follow: say so once and wait to be stopped (so that a Procfile run of every
        # process on a machine with no chain keeps the others running). --once still refuses.
        click.echo("no chain is configured (RPC_URLS_<CHAIN>): nothing to watch; waiting until stopped", err=True)
        while True:
            time.sleep(3600)
    chosen = list(chains) or sorted(engine.chain_readers)
    missing = [c for c in chosen if c not in engine.chain_readers]
    if not chosen or missing:
        raise ConfigError("the watcher needs RPC endpoints for " + (", ".join(missing) or "a chain")
                          + " (RPC_URLS_<CHAIN>)")
    watchers = {c: ChainWatcher(c, engine.chain_readers[c], engine.db,
                                confirmations=engine.settings.confirmations_for(c)) for c in chosen}
    for c, w in watchers.items():
        click.echo(f"{c}: watching with {w.confirmations} confirmation(s), from block "
                   f"{w.position() if w.position() is not None else 'the head'}", err=True)
    from ..chain.heads import HeadSubscriber

    heads = [HeadSubscriber(c, engine.settings.rpc_urls.get(c, ())).start() for c in chosen] if not once else []
    next_full = time.monotonic() + full_every
    moved_at: dict[str, float] = {}  # community -> when it last moved: its roles are settled for 10 minutes
    next_settle = time.monotonic() + 15
    while True:
        for c, w in watchers.items():
            try:
                report = w.step()
                engine.live.record(c, report, engine.chain_readers[c].heads())
            except ArrakisError as exc:
                click.echo(f"{c}: step failed ({exc}); trying again", err=True)
                continue
            if report.rewound_to is not None:
                click.echo(f"{c}: reorg: went back to block {report.rewound_to} and undid what followed", err=True)
            if report.moved:
                moved_at.update({cid: time.monotonic() for cid in report.moved})
                for r in engine.live.react(report):
                    if "error" in r:
                        click.echo(f"{c}: community {r['community_id']}: {r['error']}", err=True)
                    else:
                        click.echo(f"{c}: blocks {report.from_block}..{report.to_block}: community "
                                   f"{r['community_id']}: {r['changed']} standing(s) changed, {r['updates']} role "
                                   f"update(s) queued" + (" (paused for approval)" if r["paused"] else ""))
        if time.monotonic() >= next_settle:
            recent = [cid for cid, at in moved_at.items() if time.monotonic() - at < 600]
            moved_at = {cid: moved_at[cid] for cid in recent}
            engine.live.settle(recent)
            next_settle = time.monotonic() + 15
        if time.monotonic() >= next_full:
            for c, w in watchers.items():
                missed = engine.live.safety_net(w.communities(), chain=c, block=w.position())
                click.echo(f"{c}: safety-net sync: {missed} change(s) the watcher had missed")
            next_full = time.monotonic() + full_every
        if once:
            return
        if heads:  # a new head on any chain wakes the loop at once; otherwise it polls
            deadline = time.monotonic() + interval
            while time.monotonic() < deadline and not any(h.wait(0.05) for h in heads):
                pass
        else:
            time.sleep(interval)
