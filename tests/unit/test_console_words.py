"""How the console puts times and failures into words (arrakis_tui.data has no Textual in it)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from arrakis_engine.errors import StorageError
from arrakis_tui.data import ago, describe_error

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=timezone.utc).timestamp()


def at(seconds_before: float) -> datetime:
    return datetime.fromtimestamp(NOW - seconds_before, tz=timezone.utc)


def test_ago():
    assert ago(None, NOW) == "never"
    assert ago(at(59), NOW) == "just now"
    assert ago(at(60), NOW) == "1 min ago"
    assert ago(at(3599), NOW) == "59 min ago"
    assert ago(at(3600), NOW) == "1 h ago"
    assert ago(at(47 * 3600), NOW) == "47 h ago"
    assert ago(at(48 * 3600), NOW) == "2026-11-22"
    assert ago(at(-5), NOW) == "just now"  # a clock a little ahead is not 'in the future'


def test_describe_error():
    assert describe_error(StorageError("PostgreSQL is not answering", hint="is it running?"), "Loading") == \
        "Loading: PostgreSQL is not answering (is it running?)"
    assert describe_error(KeyError("x"), "Loading") == "Loading failed (KeyError: 'x')"


def test_progress_of_a_running_job_in_words():
    from datetime import timedelta

    from arrakis_engine.synthesis.jobs import progress_meta
    from arrakis_tui.screens.community import running_words

    start = datetime(2026, 11, 24, 12, 0, tzinfo=timezone.utc)
    assert progress_meta(0, 20, start, start + timedelta(seconds=3)) == {"done": 0, "total": 20, "eta_seconds": None}
    meta = progress_meta(5, 20, start, start + timedelta(seconds=10))
    assert meta == {"done": 5, "total": 20, "eta_seconds": 30.0}  # 2 s a step, 15 steps left
    naive = progress_meta(5, 20, start.replace(tzinfo=None), start + timedelta(seconds=10))  # RQ's naive UTC
    assert naive["eta_seconds"] == 30.0
    assert running_words({"type": "SYNTHESIZE_COMMUNITY", "progress": meta}) == \
        "synthesis: 5 of 20 steps, about 30 s left"
    assert running_words({"type": "ASSIGN_ROLE", "progress": None}) == "member role update (starting)"


@pytest.mark.parametrize("name", ["砂丘の民のコミュニティ・アラキス", "a砂丘の民のコミュニティ", "🏜️🐛🏜️🐛🏜️🐛🏜️🐛🏜️🐛",
                                  "Fremen of the deep desert sietch", "e\u0301" * 20])
def test_the_signing_table_cuts_long_names_by_terminal_cells(name):
    """A community name longer than its column is cut to the column's width in terminal cells
    (wide characters count two) and ends with an ellipsis; a short one is left alone."""
    from rich.cells import cell_len

    from arrakis_tui.screens.signing import COLUMNS, key_row

    width = COLUMNS[1][1]
    status = {"key": "community-x", "cut_off": None, "reachable": True, "versions": [1], "latest_version": 1}
    shown = key_row(status, {"community-x": name}, {}, 0.0)[1]
    assert cell_len(shown) <= width and shown.endswith("…"), (shown, cell_len(shown))
    assert name.startswith(shown[:-1])
    assert cell_len(shown) >= width - 2  # cut at the column, not long before it
    assert key_row(status, {"community-x": "Caladan"}, {}, 0.0)[1] == "Caladan"
