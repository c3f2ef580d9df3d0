"""How commands print: one :class:`Output` per command, rendered as text for people or as JSON
for scripts (``--json``), and progress bars on stderr.

A command that reports is decorated with :func:`reports`: it gets the engine state as its first
argument and the ``--json`` option for free, and returns an :class:`Output`; it never decides how
to print. Errors are the error edge's business (``base.ArrakisGroup``)."""

from __future__ import annotations

import functools
import inspect
import json
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

import click

from .base import CliState


# Exit statuses every command keeps to (the README lists them): 0 done; 1 refused or failed, or a
# check that found a problem; 2 wrong usage or an unexpected failure; 3 done in part (some input
# was refused and the rest was applied, as listed); 10 waiting for an approver.
EXIT_PARTIAL = 3
EXIT_WAITING = 10  # waits for an approver (as `plan status` of a pending request)


@dataclass
class Output:
    """``data``: what ``--json`` prints. ``text``: lines for people, or a callable that prints
    them (a table). ``exit_code``: non-zero when the report found a problem (a broken chain, a
    checksum mismatch), after printing it."""

    data: Any
    text: Iterable[str] | Callable[[], None] = ()
    exit_code: int = 0


def emit(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


def render(out: Output, as_json: bool) -> None:
    if as_json:
        emit(out.data)
    elif callable(out.text):
        out.text()
    else:
        for line in out.text:
            click.echo(line)
    if out.exit_code:
        raise click.exceptions.Exit(out.exit_code)


def reports(f: Callable[..., Output | None]) -> Callable:
    """The shared options of every command that reports: ``--json`` and the engine state.

    ``f(state, **options)`` returns an :class:`Output` (or None when it printed already, as a
    long-running command does). It is handed ``as_json`` too if it asks for it (to keep a
    progress bar off a JSON answer)."""
    wants_json = "as_json" in inspect.signature(f).parameters

    @functools.wraps(f)
    def command(**kwargs: Any) -> None:
        as_json = kwargs.pop("as_json")
        if wants_json:
            kwargs["as_json"] = as_json
        out = f(click.get_current_context().find_object(CliState), **kwargs)
        if out is not None:
            render(out, as_json)

    return click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")(command)


def progress_bar():
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                    transient=False, console=Console(stderr=True))


@contextmanager
def phases(as_json: bool, *, label: str = "") -> Iterator[Callable | None]:
    """A ``progress(phase, done, total)`` callback drawing a bar on stderr, or None with ``--json``
    (the answer on stdout stays clean). The bar appears with the first report of progress, so a
    command that fails while checking its input shows only its error."""
    if as_json:
        yield None
        return
    shown: list = []  # [bar, task] once the first report arrives

    def update(phase: str, done: int, total: int) -> None:
        if not shown:
            bar = progress_bar()
            bar.start()
            shown.extend([bar, bar.add_task(f"{label}{phase}", total=total or None)])
        bar, task = shown
        bar.update(task, description=f"{label}{phase}", completed=done, total=total or None)

    try:
        yield update
    finally:
        if shown:
            bar, task = shown
            state = bar.tasks[0] if bar.tasks else None
            if state is None or state.total is None or state.completed < state.total:
                bar.live.transient = True  # a bar that did not finish is erased, not left half-way
            bar.stop()
