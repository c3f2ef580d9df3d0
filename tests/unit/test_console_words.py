"""How the console puts times and failures into words (arrakis_tui.data has no Textual in it)."""

from __future__ import annotations

from datetime import datetime, timezone

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
