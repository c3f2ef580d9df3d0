"""The long-running processes of the Procfile: ``arrakis worker``, ``scheduler`` and ``watcher``
(``arrakis bot`` comes from ``arrakis_bot/cli.py`` and ``arrakis web`` from ``arrakis_web/cli.py``
through the ``arrakis.commands`` entry points)."""

from __future__ import annotations

import faulthandler
import logging
import os
import signal
import sys
import threading

import click

from .base import CliState, cli, pass_state
from .monitoring import metrics_port

log = logging.getLogger(__name__)


def say(line: str, err: bool = False) -> None:
    """What a long-running loop of the engine tells the person running it (``err``: about the
    process itself, on stderr)."""
    click.echo(line, err=err)


STOP_GRACE = 15.0  # seconds a stop may take before the process is ended without its clean-up


def stop_on_sigterm(grace: float = STOP_GRACE) -> None:
    """SIGTERM (honcho, systemd, a platform stopping the process) ends a long-running command
    cleanly: the engine is closed (embedded servers let go) and the exit status is 0.

    A stop that has not finished ``grace`` seconds later (a call that does not return, a clean-up
    that waits on something gone) is not left hanging until the platform kills the process: the
    stacks of every thread are written to stderr, for whoever looks into it, and the process ends
    with status 1. SIGUSR1 writes the same stacks at any time without stopping anything."""

    def late() -> None:
        say(f"the process did not stop within {grace:g} s of SIGTERM; where each thread was:", err=True)
        try:
            faulthandler.dump_traceback(file=sys.__stderr__, all_threads=True)
        finally:
            os._exit(1)

    stopping = threading.Event()

    def on_term(*_) -> None:
        if stopping.is_set():  # a second SIGTERM does not interrupt the clean-up the first one began
            return
        stopping.set()
        timer = threading.Timer(grace, late)
        timer.daemon = True
        timer.start()
        sys.exit(0)

    signal.signal(signal.SIGTERM, on_term)
    try:
        faulthandler.register(signal.SIGUSR1, file=sys.__stderr__, all_threads=True)
    except (AttributeError, ValueError, OSError, RuntimeError):  # no SIGUSR1 (Windows), or no real stderr to write to
        log.debug("SIGUSR1 stack dumps are not available here")


@cli.command()
@metrics_port
@click.option("--burst", is_flag=True, help="Stop when the queues are empty.")
@click.option("--name", default=None, help="Worker name.")
@pass_state
def worker(state: CliState, burst: bool, name: str | None) -> None:
    """Run a synthesis worker (RQ), serving every community's queue in turn. A failing job is one
    line (why, and the tries left); --debug adds its traceback."""
    from ..adapters.rq.queue import BASE, EngineWorker, recover_abandoned

    stop_on_sigterm()  # until RQ's own handler (a warm shutdown) takes over
    engine = state.engine
    restored = engine.freeze.check()  # the freeze flags are re-asserted from PostgreSQL first
    if restored:
        click.echo(f"freeze flags: Redis had lost {', '.join(restored)}; restored from the database", err=True)
    for job_id in recover_abandoned(engine.redis):
        click.echo(f"requeued {job_id}, abandoned by a worker that died", err=True)
    w = EngineWorker([BASE], connection=engine.redis, name=name, engine=engine, debug=state.debug)
    w.work(burst=burst, with_scheduler=True, logging_level=engine.settings.log_level)
    if burst:
        from ..adapters.rq.queue import SynthesisQueue

        left = SynthesisQueue(engine.redis).counts()
        if left["scheduled"]:  # a burst ends when nothing is ready, not when nothing is left
            click.echo(f"{left['scheduled']} job(s) wait for a later try or slice and were left for a running "
                       "worker (`arrakis worker`, or --burst again later); nothing is lost", err=True)


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
    stop_on_sigterm()
    state.engine.scheduler.run(interval=interval, flush_interval=flush_interval, once=once, say=say)


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
    from ..errors import ValidationError
    from ..domain.chain import CHAINS
    from ..domain.validation import shown

    unknown = [c for c in chains if c not in CHAINS]
    if unknown:  # a typo is not a missing endpoint
        raise ValidationError(f"unknown chain {shown(unknown[0])}; the chains are {', '.join(CHAINS)}", field="chain")
    stop_on_sigterm()
    state.engine.live_watch.run(chains, interval=interval, full_every=full_every, once=once, say=say)
