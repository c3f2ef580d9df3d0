"""``arrakis wizard``: the onboarding wizard, step by step (what the bot drives)."""

from __future__ import annotations

import json

import click

from ..domain.wizard_session import WizardSession
from .base import CliState, command_group
from .output import Output, reports


wizard = command_group("wizard", "The onboarding wizard, step by step (the same engine the bot drives).")


STEP_DATA = """What --data holds at each step (JSON; the step the session is on is the one answered):

\b
  INIT               nothing (--data may be left out)
  CHAIN_SELECT       {"chain": "berachain"}
  ASSET_CONFIG       {"assets": [{"kind": "native"}]}, or up to 5 of
                     {"kind": "erc20", "address": "0x...", "decimals": 18},
                     {"kind": "erc721", "address": "0x..."},
                     {"kind": "erc1155", "address": "0x...", "token_id": 1};
                     the first ranks members, the others gate membership
  ELIGIBILITY_RULES  {"template": "basic"} (or "standard", "sietch"), or
                     {"template": "custom", "tiers": [{"name": "Gold", "min_rank": 1,
                     "max_rank": 10, "colour": "#FFD700"}, ...]} (ranges contiguous,
                     only the last max_rank may be null); either may add
                     "rule": {...}, a membership rule as for `arrakis gate set`
  ROLE_MAPPING       {"roles": {"Gold": "create", "Silver": "123456789012345678"}}:
                     every tier, to "create" or an existing role id
  CHANNEL_STRUCTURE  {"channel_template": "basic"} (or "none", "sietch"), or
                     {"channel_template": "custom", "categories": [{"name": "Holders",
                     "channels": ["general", "alpha-chat"]}]}
  REVIEW             nothing to submit: check `wizard show`, then `wizard deploy`
"""


def session_output(s: WizardSession, summary: list[str] = (), *, failed_exit: bool = False) -> Output:
    """The session for people: its step, then at REVIEW what a deploy would set up.
    ``failed_exit``: a session that ended FAILED exits 1 (a deploy that failed)."""
    lines = [f"session {s.id} in guild {s.guild_id}: {s.state}"
             + (" (already in progress: resumed)" if s.existing else "")]
    lines += [f"  {line}" for line in summary]
    lines += [f"  warning: {w}" for w in s.warnings or []]
    if s.error:
        lines.append(f"  error: {s.error}")
    if s.deploy:
        d = s.deploy
        lines.append(f"  deployed: community {d['community_id']}, manifest v{d['manifest_version']}, "
                     f"synthesis job {d['job_id']}")
    if s.state == "REVIEW":
        lines.append("  next: `arrakis wizard deploy` to set this up, or `arrakis wizard back` to change it")
    return Output({**s.as_dict(), "summary": list(summary)}, lines,
                  exit_code=1 if failed_exit and s.state == "FAILED" else 0)


def _summary(state: CliState, s: WizardSession) -> list[str]:
    if s.state == "ROLE_MAPPING":  # what the step asks for, all at once
        from ..wizard.model import tier_names

        return [f"tiers to map: {', '.join(tier_names(s.data['rules']))} (each to \"create\" or an existing "
                "role id: --data '{\"roles\": {\"TIER\": \"create\", ...}}')"]
    return state.engine.wizard.summary(s) if s.state in ("REVIEW", "DEPLOY", "FAILED", "COMPLETE") else []


def session_command(name: str, *arguments: str):
    """A wizard subcommand taking ``arguments`` and answering with the session."""
    def register(f):
        for argument in reversed(arguments):
            f = click.argument(argument)(f)
        return wizard.command(name)(reports(f))
    return register


@session_command("start", "guild_id", "user_id")
@click.option("--name", "community_name", default=None, help="Community name.")
def wizard_start(state: CliState, guild_id: str, user_id: str, community_name: str | None) -> Output:
    """Start a session (or get the one in progress)."""
    return session_output(state.engine.wizard.start(guild_id, user_id, community_name=community_name))


@session_command("step", "session_id", "user_id")
@click.option("--data", default="{}", help="The step's data as JSON (shapes below).")
@click.option("--submission-id", default=None, help="Idempotency key for this submission.")
@click.option("--expect", "expected_state", default=None, help="The step being answered (refused if it moved on).")
def wizard_step(state: CliState, session_id: str, user_id: str, data: str, submission_id: str | None,
                expected_state: str | None) -> Output:
    """Submit the current step and move forward."""
    try:
        payload = json.loads(data)
    except ValueError:
        raise click.BadParameter("--data must be JSON; see the shapes in `arrakis wizard step --help`") from None
    s = state.engine.wizard.step(session_id, user_id, payload, submission_id=submission_id,
                                 expected_state=expected_state)
    return session_output(s, _summary(state, s))


wizard_step.help = (wizard_step.help or "") + "\n\n" + STEP_DATA


@session_command("deploy", "session_id", "user_id")
@click.option("--update-existing", is_flag=True,
              help="The server already has a community: update it (its name stays) instead of refusing.")
def wizard_deploy(state: CliState, session_id: str, user_id: str, update_existing: bool) -> Output:
    """Deploy a reviewed session: community, manifest, queued synthesis. Exits 1 if the deploy
    failed (the session then says why; `wizard back` returns it to review)."""
    s = state.engine.wizard.deploy(session_id, user_id, update_existing=update_existing)
    out = session_output(s, _summary(state, s), failed_exit=True)
    if s.state == "COMPLETE" and s.deploy:
        d, workers = s.deploy, state.engine.queue.workers()
        assets = d.get("assets") or {}
        if d.get("updated_existing"):
            out.text.append("  updated the existing community: assets " + "; ".join(
                f"{what} {', '.join(keys)}" for what, keys in assets.items() if keys))
        out.text.append(f"  synthesis: {workers} worker(s) running will carry it out" if workers else
                        "  synthesis waits on the queue for a worker: none is running; start one with "
                        "`arrakis worker` (the Procfile's worker)")
        out.data["workers"] = workers
    return out


def _simple(name: str, first: str, doc: str) -> None:
    """``arrakis wizard NAME FIRST USER_ID``: one wizard call that answers with the session."""
    def command(state: CliState, user_id: str, **ids: str) -> Output:
        s = getattr(state.engine.wizard, name)(ids[first], user_id)
        return session_output(s, _summary(state, s))

    command.__doc__ = doc
    session_command(name, first, "user_id")(command)


for _name, _first, _doc in (
        ("back", "session_id", "Go back one step (a failed deploy goes back to review)."),
        ("show", "session_id", "The session as it stands: its step, data, warnings and any error."),
        ("resume", "guild_id", "The session in progress for this user in this guild."),
        ("abandon", "session_id", "Give up a session; the user can start a new one.")):
    _simple(_name, _first, _doc)
