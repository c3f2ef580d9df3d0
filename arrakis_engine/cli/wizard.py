"""``arrakis wizard``: the onboarding wizard, step by step (what the bot drives)."""

from __future__ import annotations

import json

import click

from .base import CliState, command_group
from .output import Output, reports


wizard = command_group("wizard", "The onboarding wizard, step by step (the same engine the bot drives).")


def session_output(s: dict) -> Output:
    lines = [f"session {s['id']} in guild {s['guild_id']}: {s['state']}"
             + (" (already in progress: resumed)" if s.get("existing") else "")]
    lines += [f"  warning: {w}" for w in s.get("warnings") or []]
    if s.get("error"):
        lines.append(f"  error: {s['error']}")
    if s.get("deploy"):
        d = s["deploy"]
        lines.append(f"  deployed: community {d['community_id']}, manifest v{d['manifest_version']}, "
                     f"synthesis job {d['job_id']}")
    return Output(s, lines)


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
@click.option("--data", default="{}", help="The step's data as JSON.")
@click.option("--submission-id", default=None, help="Idempotency key for this submission.")
@click.option("--expect", "expected_state", default=None, help="The step being answered (refused if it moved on).")
def wizard_step(state: CliState, session_id: str, user_id: str, data: str, submission_id: str | None,
                expected_state: str | None) -> Output:
    """Submit the current step and move forward."""
    try:
        payload = json.loads(data)
    except ValueError:
        raise click.BadParameter("--data must be JSON") from None
    return session_output(state.engine.wizard.step(session_id, user_id, payload, submission_id=submission_id,
                                                   expected_state=expected_state))


def _simple(name: str, first: str, doc: str) -> None:
    """``arrakis wizard NAME FIRST USER_ID``: one wizard call that answers with the session."""
    def command(state: CliState, user_id: str, **ids: str) -> Output:
        return session_output(getattr(state.engine.wizard, name)(ids[first], user_id))

    command.__doc__ = doc
    session_command(name, first, "user_id")(command)


for _name, _first, _doc in (
        ("back", "session_id", "Go back one step (a failed deploy goes back to review)."),
        ("show", "session_id", "The session as it stands: its step, data, warnings and any error."),
        ("resume", "guild_id", "The session in progress for this user in this guild."),
        ("abandon", "session_id", "Give up a session; the user can start a new one."),
        ("deploy", "session_id", "Deploy a reviewed session: community, manifest, queued synthesis.")):
    _simple(_name, _first, _doc)
