"""Platform health: one line per part, and sparklines of Discord calls and 429s."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Label, Sparkline, Static

from arrakis_engine.metrics import success_lines
from arrakis_engine.use_cases.operations import Health

from ..data import STATE_MARK


class HealthPanel(Horizontal):
    """Shows a :class:`Health`; the screen that owns it fetches one off the UI thread."""

    def compose(self) -> ComposeResult:
        yield Static("checking the platform…", id="health-items")
        with Vertical(id="health-graphs"):
            yield Label("Discord calls", id="use-label")
            yield Sparkline([], id="use", summary_function=max)
            yield Label("Discord 429s", id="limited-label")
            yield Sparkline([], id="limited", summary_function=max)

    def show(self, health: Health) -> None:
        lines = []
        for item in health.items:
            mark, colour = STATE_MARK.get(item.state, ("?", "warning"))
            detail = f"[dim]{_escape(item.detail)}[/]" if item.detail else ""
            lines.append(f"[${colour}]{mark}[/] [b]{_escape(item.name).ljust(15)}[/]{item.state.ljust(9)}{detail}")
        if health.success:  # the seed's success metrics over the last 24 h, each against its target
            lines.append("[b]success metrics, last 24 h[/]")
            for m, text in zip(health.success, success_lines(health.success, detail=False)):
                mark, colour = STATE_MARK["ok" if m.met else "down" if m.met is not None else "off"]
                lines.append(f"[${colour}]{mark}[/] {_escape(text)}")
        self.query_one("#health-items", Static).update("\n".join(lines))
        minutes = len(health.bucket_use) * health.step_seconds // 60
        self.query_one("#health-graphs").tooltip = f"the last {minutes} minutes, oldest on the left"
        peak = max(health.bucket_use, default=0)
        share = peak / (health.bucket_rate * health.step_seconds) if health.bucket_rate else 0
        self.query_one("#use-label", Label).update(
            f"Discord calls/{health.step_seconds} s: peak {peak} ({share:.0%} of limit)")
        self.query_one("#use", Sparkline).data = health.bucket_use or [0]
        self.query_one("#limited-label", Label).update(
            f"Discord 429s/{health.step_seconds} s: {sum(health.rate_limited)} in {minutes} min")
        self.query_one("#limited", Sparkline).data = health.rate_limited or [0]


def _escape(text: str) -> str:
    return text.replace("[", r"\[")
