"""``arrakis synthesize``, ``members sync``, ``reconcile``, ``drift``, ``bucket stats``, ``dlq list``."""

from __future__ import annotations

import click

from .base import CliState, cli, command_group
from ..errors import ValidationError
from .security import ask_code, identity, prove
from .output import EXIT_WAITING, Output, phases, reports


def freeze_options(f):
    """``--wait`` and ``--wait-timeout``: what a command does when the kill switch holds its
    community (refuse at once, exit 1; or wait for the release, saying so)."""
    f = click.option("--wait-timeout", type=click.FloatRange(min=1), default=600, show_default=True,
                     metavar="SECONDS", help="With --wait: give up (exit 1) if the freeze lasts longer.")(f)
    return click.option("--wait", is_flag=True,
                        help="If the kill switch holds the community, wait for its release instead of refusing.")(f)


def not_frozen(state: CliState, community_id: str, wait: bool, wait_timeout: float) -> None:
    """Refuse at once (exit 1) if the kill switch holds this community's Discord work, or with
    ``--wait`` say so in one line on stderr and wait for the release (up to ``wait_timeout``)."""
    state.engine.killswitch.check_not_frozen(
        community_id, wait=wait_timeout if wait else 0,
        on_wait=lambda said: click.echo(f"waiting: {said}; giving up in {wait_timeout:g} s (Ctrl-C stops)",
                                        err=True))


@cli.command()
@click.argument("community_id")
@click.option("--dry-run", is_flag=True, help="Show what would be created; change nothing.")
@click.option("--now", "inline", is_flag=True, help="Run here instead of on the queue.")
@freeze_options
@reports
def synthesize(state: CliState, community_id: str, dry_run: bool, inline: bool, as_json: bool, wait: bool,
               wait_timeout: float) -> Output:
    """Publish the community's manifest and make its guild match it. With --now, a progress bar
    shows the steps done out of those planned and the time left at the current pace. A community
    the kill switch holds is refused at once (its manifest cannot be signed, nor its guild
    changed), or, with --wait, waited for."""
    not_frozen(state, community_id, wait, wait_timeout)
    with phases(as_json or not inline or dry_run) as bar:
        out = state.engine.synthesis.synthesize(community_id, dry_run=dry_run, queued=not inline,
                                                progress=_steps(bar, "synthesis"))
    if "job_id" in out:
        line = (f"manifest v{out['manifest_version']}{' (new)' if out['new_version'] else ''}: "
                f"synthesis job {out['job_id']} is {out['status']}")
    elif out.get("manifest") is None and dry_run and "created" not in out:
        line = out["note"]
    else:
        line = (f"{'would create' if dry_run else 'created'} {len(out['created'])}, adopted {len(out['adopted'])}, "
                f"kept {len(out['kept'])}; {out['calls']} Discord calls")
    return Output(out, [line])


def _steps(bar, phase: str):
    """``progress(done, total)`` for the engine, drawn on ``bar`` (None: no bar)."""
    return None if bar is None else (lambda done, total: bar(phase, done, total))


members = command_group("members", "Members' Discord roles.")


@members.command("sync")
@click.argument("community_id")
@click.option("--approve", is_flag=True, help="Go ahead even if many members would lose their tier role.")
@click.option("--now", "inline", is_flag=True, help="Run here instead of on the queue.")
@click.option("--dry-run", is_flag=True, help="Show which members' roles would change; decide and send nothing.")
@freeze_options
@identity
@reports
def members_sync(state: CliState, community_id: str, approve: bool, inline: bool, dry_run: bool, as_json: bool,
                 as_name, code, wait: bool, wait_timeout: float) -> Output:
    """One role update per member whose roles should change. With --now, a progress bar shows the
    updates done out of those planned and the time left at the current pace. A change that would
    strip many members waits for approval; --approve approves the one waiting (an approver who did
    not run the paused sync: --as NAME and a code), then syncs. --as NAME names who runs the sync:
    with --code (which proves it) that operator can then never approve the strip it pauses for;
    without --as and --code a sync that would pause is refused (nobody could tell its approver
    from whoever ran it, or from whoever they named), and nothing changes. --dry-run shows who would get which
    roles (from Discord's last answers) and decides and sends nothing."""
    actor = "cli"
    if as_name and (code or dry_run):  # a name alone proves nothing: bob could name alice, then approve
        actor = f"operator:{state.engine.operators.get(as_name).name}"
    if dry_run:
        out = state.engine.synthesis.sync_members(community_id, dry_run=True, actor=actor)
        return Output(out.as_dict(), [f"would update {out.changes} member(s)"
                                      + (f", {out.strips} of {out.tier_holders} losing their tier role (would "
                                         "wait for an approver)" if out.would_pause else "")]
                      + [f"  {m['discord_id']}: +{', '.join(m['added_names']) or '-'} "
                         f"-{', '.join(m['removed_names']) or '-'}" for m in out.members[:50]]
                      + ([f"  … and {len(out.members) - 50} more (--json lists them all)"] if len(out.members) > 50
                         else []))
    if approve:
        if not as_name:
            raise ValidationError("say who approves: --as NAME or ARRAKIS_OPERATOR", field="as")
        state.engine.approvals.approve_strip_of(community_id, by=as_name, carry_out=False,
                                                code=lambda: ask_code(code))
    elif as_name and code:
        state.engine.mfa.verify(as_name, code, action="MEMBER_SYNC")
    if inline:
        not_frozen(state, community_id, wait, wait_timeout)
    with phases(as_json or not inline) as bar:
        out = state.engine.synthesis.sync_members(community_id, queued=not inline, actor=actor,
                                                  progress=_steps(bar, "member roles"))
    if out.status == "paused":
        line = (f"paused: {out.strips} of {out.tier_holders} members would lose their tier role. "
                f"Approval {out.approval} is waiting for an approver who did not run this sync: "
                f"arrakis approvals approve {out.approval} --as NAME (or members sync --approve).")
        return Output(out.as_dict(), [line], exit_code=EXIT_WAITING)  # nothing was synced: scripts must not read "done"
    line = f"{out.status}: {out.changes} member update(s)"
    return Output(out.as_dict(), [line])


@cli.command()
@click.argument("community_id")
@click.option("--dry-run", is_flag=True, help="Show the plan; change nothing.")
@click.option("--destructive", is_flag=True, help="Also delete orphans that Arrakis created (--as NAME and a code).")
@freeze_options
@identity
@reports
def reconcile(state: CliState, community_id: str, dry_run: bool, destructive: bool, as_name, code, wait: bool,
              wait_timeout: float) -> Output:
    """Compare manifest, shadow and guild; fix what drifted. A community the kill switch holds is
    refused at once (or, with --wait, waited for)."""
    not_frozen(state, community_id, wait, wait_timeout)
    if destructive and not dry_run:
        from ..storage.database import validate_tenant_id

        if not as_name:
            raise ValidationError("say who is acting: --as NAME or ARRAKIS_OPERATOR", field="as")
        validate_tenant_id(community_id)  # a typo is an input error and costs no attempt
        prove(state, as_name, code, "DELETE_ROLE")
    report = state.engine.reconciler.run(community_id, dry_run=dry_run, destructive=destructive)
    return Output(report.as_dict(), [report.summary()] + [
        f"  [{a.severity}] {a.op} {a.kind} {a.manifest_id}" + (f": {', '.join(a.changes)}" if a.op == "update" else "")
        for a in report.actions])


@cli.command("drift")
@click.argument("community_id")
@freeze_options
@reports
def drift_cmd(state: CliState, community_id: str, wait: bool, wait_timeout: float) -> Output:
    """Desired vs applied vs actual, item by item, worst first. A community the kill switch holds
    is refused at once (or, with --wait, waited for): the guild cannot be read while it is."""
    not_frozen(state, community_id, wait, wait_timeout)
    d = state.engine.operations.drift(community_id).as_dict()
    where = " (in the local Discord sandbox, not real Discord)" if d["sandbox"] else ""
    return Output(d, [f"manifest v{d['manifest_version']}, applied v{d['shadow_version']}: {d['status']}{where}"] + [
        f"  [{i['severity']}] {i['kind']} {i['manifest_id'] or i['discord_id']}: {i['problem']}" for i in d["items"]])


bucket = command_group("bucket", "The global Discord limit: calls in the last window, waits and 429s.")


@bucket.command("stats")
@reports
def bucket_stats(state: CliState) -> Output:
    """Tokens now, calls granted, waits, 429s, and the last minute's use."""
    s = state.engine.bucket.stats()
    return Output(s.as_dict(), [
        f"at most {s.capacity:g} calls in any {s.window:.2f} s ({s.rate:.1f}/s); {s.tokens:g} could go now",
        f"granted {s.granted}, refused {s.refused}, waited {s.waited_seconds:.1f} s in all, "
        f"429s from Discord {s.rate_limited}",
        "last 10 s: " + " ".join(str(x) for x in s.per_second[-10:])])


dlq = command_group("dlq", "Jobs that failed for good (dead letters).")


@dlq.command("list")
@reports
def dlq_list(state: CliState) -> Output:
    """Every dead letter: job, type, community and the error it failed with."""
    entries = state.engine.queue.dead_letters()
    return Output(entries, [f"{x['job_id']}  {x['type'] or '-'}  {x['community'] or '-'}  {x['error']}" for x in entries]
                  or ["no dead letters"])
