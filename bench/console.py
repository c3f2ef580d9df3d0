"""The console's fleet overview with many communities, driven by Textual's pilot.

    python bench/console.py [--communities 1000] [--members 20] [--filters 20]

Seeds a scratch database (BENCH_DATABASE_URL names the server) with ``--communities``
communities, about ``--members`` members each, an eligibility sync entry and a manifest for every
third one, on a Redis database of its own (BENCH_REDIS_URL, default loopback database 12,
emptied first). Then, in one run:

* time to first paint: from starting the console to the fleet table painted with every
  community (target < 1 s), over ``--runs`` starts;
* time to apply a filter: from a key press in the filter box to the table repainted with the
  matching rows (target < 100 ms), over ``--filters`` key presses.

Prints the figures (BENCH_VERBOSE=1: every key press); exits non-zero if a target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import parse_args, scratch_database, verdict  # noqa: E402

from arrakis_engine.bootstrap import build_engine  # noqa: E402
from arrakis_engine.settings import Settings  # noqa: E402

SIZE = (160, 50)
WORDS = ("Arrakeen", "Caladan", "Giedi", "Ix", "Kaitain", "Salusa", "Tleilax", "Richese", "Ecaz", "Gammu")


def seed(engine, communities: int, members: int) -> None:
    with engine.db.platform() as tx:
        rows = tx.all(
            """INSERT INTO communities (name, guild_id, theme_id, subscription_tier)
               SELECT (%s::text[])[1 + i %% 10] || ' ' || i, (100000000000000000 + i)::text,
                      CASE WHEN i %% 2 = 0 THEN 'sietch' ELSE 'basic' END,
                      (ARRAY['free', 'premium', 'enterprise'])[1 + i %% 3]
               FROM generate_series(1, %s) AS i RETURNING id""", (list(WORDS), communities))
        ids = [r["id"] for r in rows]
        tx.execute("""INSERT INTO profiles (community_id, discord_id, rank)
                      SELECT c, (200000000000000000 + n)::text, n
                      FROM unnest(%s::uuid[]) AS c, generate_series(1, %s) AS n""", (ids, members))
    for i, cid in enumerate(ids):
        if i % 3 == 0:
            with engine.db.tenant(cid):
                engine.repos.audit.append("bench", "eligibility.synced", {"members": members})
            engine.manifests.publish(cid, actor="bench")


async def first_paint(engine, runs: int) -> list[float]:
    """From creating the console to the first frame painted with the fleet table filled in."""
    from textual.widgets import DataTable

    from arrakis_tui.app import ArrakisConsole

    out = []
    for _ in range(runs):
        started = time.perf_counter()
        app = ArrakisConsole(engine, health_every=None)
        frames: list[float] = []
        display = app._display

        def painted(screen, renderable, app=app, display=display, frames=frames):
            display(screen, renderable)
            tables = screen.query(DataTable) if hasattr(screen, "rows") else []
            if tables and tables.first().row_count and not frames:
                frames.append(time.perf_counter())

        app._display = painted
        async with app.run_test(size=SIZE):
            while not frames:
                if time.perf_counter() - started > 30:
                    raise SystemExit("the fleet was not painted within 30 s")
                await asyncio.sleep(0.001)
        out.append(frames[0] - started)
    return out


async def filtering(engine, presses: int) -> tuple[list[float], list[float], list[float], int]:
    """Per key press: (key to painted frame, measured inside the app; the pilot's own round trip
    for the same press; the pilot's round trip for a key that does nothing, its floor)."""
    from textual import events
    from textual.widgets import DataTable, Input

    from arrakis_tui.app import ArrakisConsole
    from arrakis_tui.data import matches

    app = ArrakisConsole(engine, health_every=None)
    paints: list[tuple[float, int | None]] = []
    display = app._display

    def painted(screen, renderable):  # every frame the app writes to its (headless) terminal
        display(screen, renderable)
        shown = getattr(app.screen, "shown", None)
        tables = app.screen.query(DataTable)
        # A frame counts once the filtered rows are in the table and measured (DataTable sizes
        # new rows when idle, then repaints): the frame shows the filtered table, not just the box.
        settled = bool(tables) and not tables.first()._require_update_dimensions
        paints.append((time.perf_counter(), id(shown) if shown is not None and settled else None))

    app._display = painted
    to_paint, round_trips, floor = [], [], []
    async with app.run_test(size=SIZE) as pilot:
        # every community loaded (the first page is painted before the rest arrives)
        while not (app.screen.query(DataTable) and app.screen.query_one(DataTable).row_count
                   and not getattr(app.screen, "partial", False)):
            await asyncio.sleep(0.01)
        screen = app.screen
        table = screen.query_one(DataTable)
        box = screen.query_one("#filter", Input)
        box.focus()
        await pilot.pause(0.1)  # focus selects the box's text; let that happen before typing
        total = len(screen.rows)
        texts = [w.lower()[:k] for w in WORDS for k in (2, 4)]

        async def reset(prefix: str) -> None:
            box.value = prefix
            box.cursor_position = len(prefix)
            await pilot.pause(0.05)

        for i in range(presses):
            text = texts[i % len(texts)]
            expected = sum(1 for r in screen.rows if matches(r, text))
            assert 0 < expected < total, text
            # 1. Inside the app: the key event is sent as the terminal driver sends it; the clock
            #    stops at the first frame painted with the filtered table.
            await reset(text[:-1])
            before = id(screen.shown)  # the filter builds a new list: a frame with another one is new
            paints.clear()
            started = time.perf_counter()
            key = events.Key(text[-1], text[-1])
            key.set_sender(app)
            app._driver.send_message(key)
            deadline = started + 10
            while not any(n not in (None, before) for _, n in paints):
                if time.perf_counter() > deadline:
                    raise SystemExit(f"no frame with the filtered table after 10 s ({text!r}: "
                                     f"{len(screen.shown)} shown, {expected} expected, box {box.value!r})")
                await asyncio.sleep(0.0005)
            to_paint.append(next(t for t, n in paints if n not in (None, before)) - started)
            assert len(screen.shown) == expected, (text, len(screen.shown), expected)
            if os.environ.get("BENCH_VERBOSE"):
                print(f"  {text!r}: {expected} rows, {to_paint[-1] * 1000:.1f} ms")
            assert table.row_count == min(expected, screen.PAGE)
            # 2. The same press through the pilot, and 3. a key that changes nothing.
            await reset(text[:-1])
            started = time.perf_counter()
            await pilot.press(text[-1])
            round_trips.append(time.perf_counter() - started)
            started = time.perf_counter()
            await pilot.press("end")
            floor.append(time.perf_counter() - started)
    return to_paint, round_trips, floor, total


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--communities", type=int, default=1000)
    ap.add_argument("--members", type=int, default=20)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--filters", type=int, default=20)
    args = parse_args(ap, communities=20, members=2, runs=1, filters=2)

    redis_url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")
    with scratch_database() as url, tempfile.TemporaryDirectory() as data:
        settings = Settings.from_env({"DATABASE_URL": url, "REDIS_URL": redis_url, "ARRAKIS_DATA_DIR": data})
        engine = build_engine(settings)
        try:
            engine.redis.flushdb()
            engine.migrator.upgrade()
            t = time.perf_counter()
            seed(engine, args.communities, args.members)
            print(f"seeded {args.communities} communities x {args.members} members in {time.perf_counter() - t:.1f} s")
            t = time.perf_counter()
            fleet = engine.operations.fleet()
            print(f"fleet query alone: {len(fleet)} rows in {(time.perf_counter() - t) * 1000:.1f} ms")
            paints = asyncio.run(first_paint(engine, args.runs))
            filters, trips, floor, total = asyncio.run(filtering(engine, args.filters))
        finally:
            engine.close()

    p = sorted(paints)
    f = sorted(filters)
    p90 = f[min(len(f) - 1, int(len(f) * 0.9))]
    ms = lambda xs: statistics.median(xs) * 1000  # noqa: E731
    print(f"time to first paint ({total} communities, {args.runs} starts): median {ms(p):.0f} ms, "
          f"worst {p[-1] * 1000:.0f} ms (target < 1000 ms)")
    print(f"time to apply a filter, key press to painted frame ({args.filters} presses): median {ms(f):.1f} ms, "
          f"p90 {p90 * 1000:.1f} ms, worst {f[-1] * 1000:.1f} ms (target < 100 ms)")
    print(f"  for comparison, the pilot's own round trip: {ms(trips):.1f} ms for a filter key, "
          f"{ms(floor):.1f} ms for a key that does nothing (the pilot waits for the process to go idle)")
    ok = statistics.median(p) < 1.0 and statistics.median(f) < 0.1
    print("targets met" if ok else "TARGET MISSED")
    return verdict(args, ok)


if __name__ == "__main__":
    sys.exit(main())
