"""What the console shows, fetched through the engine's use cases and put into words (no Textual
here, so it can be tested and timed on its own)."""

from __future__ import annotations

from datetime import datetime, timezone

from arrakis_engine.errors import ArrakisError
from arrakis_engine.use_cases.operations import FleetEntry, Health
from arrakis_engine.themes import SUBSCRIPTIONS

PLANS = SUBSCRIPTIONS  # the subscription tiers, cheapest first (the fleet sorts by them)


def load_fleet(engine, limit: int | None = None) -> list[FleetEntry]:
    """Every community, or the first ``limit`` by name (what the fleet screen paints first)."""
    return engine.operations.fleet(limit)


def load_health(engine) -> Health:
    return engine.operations.health()


def matches(row: FleetEntry, text: str) -> bool:
    text = text.strip().lower()
    return not text or any(text in str(v).lower()
                           for v in (row.name, row.guild_id, row.theme, row.subscription, row.drift))


def search_text(row: FleetEntry) -> str:
    """The fields :func:`matches` looks in, lower-cased once and joined by a character nobody
    types: ``text in search_text(row)`` answers what ``matches(row, text)`` does."""
    return "\x00".join(str(v).lower() for v in (row.name, row.guild_id, row.theme, row.subscription, row.drift))


def fit(text: str, cells: int) -> str:
    """``text`` cut to at most ``cells`` terminal cells, with an ellipsis when it was cut. Measured
    in cells, not characters: a CJK character or an emoji takes two, a combining accent none, so
    a wide name is neither cut in the middle of a character nor allowed to push the next column."""
    from rich.cells import cell_len

    if cell_len(text) <= cells:
        return text
    end = 0
    # Measured as prefixes, not character by character: an emoji and the selector after it make
    # two cells together, whatever each is alone. One cell is kept for the ellipsis.
    while end < len(text) and cell_len(text[:end + 1]) <= cells - 1:
        end += 1
    while end < len(text) and cell_len(text[end]) == 0:  # keep a combining mark with its letter
        end -= 1
    return text[:end] + "…"


def ago(when: datetime | None, now: float) -> str:
    """'just now', '5 min ago', '3 h ago', or the date; 'never' for nothing."""
    if when is None:
        return "never"
    seconds = now - when.timestamp()
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{int(seconds // 60)} min ago"
    if seconds < 48 * 3600:
        return f"{int(seconds // 3600)} h ago"
    return when.astimezone(timezone.utc).strftime("%Y-%m-%d")


def describe_error(exc: BaseException, doing: str) -> str:
    """One readable line for a notification: the engine's own message, or the kind of failure."""
    if isinstance(exc, ArrakisError):
        return f"{doing}: {exc}"
    return f"{doing} failed ({type(exc).__name__}: {exc})"


STATE_MARK = {"ok": ("●", "success"), "degraded": ("▲", "warning"), "down": ("✖", "error"), "off": ("○", "muted")}
DRIFT_STYLE = {"high": "error", "medium": "warning", "low": "accent", "in sync": "success"}
DRIFT_COLOURS = {"high": "bold red", "medium": "yellow", "low": "cyan", "in sync": "green"}
