"""What every console screen shares: the engine, a clock, and readable failures."""

from __future__ import annotations

from textual.screen import Screen

from ..data import describe_error


class EngineScreen(Screen):
    def __init__(self, engine, **kwargs) -> None:
        super().__init__(**kwargs)
        self.engine = engine

    def now(self) -> float:
        return self.app.clock()

    def report_failure(self, exc: BaseException, doing: str) -> None:
        """From a worker thread: an engine error becomes a notification, never a traceback."""
        self.app.call_from_thread(self.app.notify, describe_error(exc, doing), severity="error", timeout=8)
