"""What every console screen shares: the engine, a clock, and readable failures."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from rich.text import Text
from textual import work
from textual.screen import Screen
from textual.widgets import DataTable, Static
from textual.worker import Worker, WorkerState

from ..data import describe_error

if TYPE_CHECKING:
    from arrakis_engine.bootstrap import Engine


class EngineScreen(Screen):
    RESULT = "#result"  # the Static where a screen says how its last operation went

    def __init__(self, engine: Engine, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.engine = engine

    def now(self) -> float:
        return self.app.clock()

    def ui(self, fn: Callable, *args, **kwargs) -> None:
        """From a worker thread: run ``fn`` on the UI thread, unless this screen has been left
        meanwhile (the operator went back while the engine was busy) or the console is closing."""
        def guarded() -> None:
            if self.is_attached:
                fn(*args, **kwargs)
        try:
            self.app.call_from_thread(guarded)
        except RuntimeError:  # the app stopped while the worker finished
            pass

    def _say(self, text: str) -> None:
        """From a worker thread: put ``text`` in the screen's result line."""
        self.ui(self._say_now, text)

    def _say_now(self, text: str) -> None:
        self.query_one(self.RESULT, Static).update(Text(text))

    def tell(self, message: str, *, severity: str = "information", timeout: float = 5) -> None:
        """From a worker thread: a notification, shown even if the operator has left this screen."""
        try:
            self.app.call_from_thread(self.app.notify, message, severity=severity, timeout=timeout)
        except RuntimeError:  # the app stopped meanwhile
            pass

    def report_failure(self, exc: BaseException, doing: str) -> None:
        """From a worker thread: an engine error becomes a notification, never a traceback."""
        self.tell(describe_error(exc, doing), severity="error", timeout=8)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """Workers here do not stop the console when they fail (exit_on_error=False); a failure
        nobody caught still reaches the operator as a notification."""
        if event.state == WorkerState.ERROR and event.worker.error is not None:
            self.app.notify(describe_error(event.worker.error, "Something went wrong"), severity="error", timeout=8)


def add_columns(table: DataTable, spec) -> None:
    """Columns of fixed widths: ``spec`` is (label, width) pairs. Fixed, so a picture never
    depends on what the table held before."""
    for label, width in spec:
        table.add_column(label, width=width)


class LoadedScreen(EngineScreen):
    """A screen that reads the engine on a worker thread: :meth:`fetch` (off the UI thread) returns
    the arguments of :meth:`show` (on it). ``r`` (``action_refresh``) reads again; a failure is a
    notification saying ``FAILED_TO_LOAD``."""

    FAILED_TO_LOAD = "Could not load"

    def fetch(self) -> tuple:  # pragma: no cover - each screen says what it reads
        raise NotImplementedError

    def show(self, *data) -> None:  # pragma: no cover
        raise NotImplementedError

    def action_refresh(self) -> None:
        self.load()

    @work(thread=True, exit_on_error=False, exclusive=True, group="load")
    def load(self) -> None:
        try:
            data = self.fetch()
        except Exception as exc:
            self.report_failure(exc, self.FAILED_TO_LOAD)
            return
        self.ui(self.show, *data)
