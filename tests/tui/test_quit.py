"""`q` closes the console at once, even while an engine call is still waiting on a slow service."""

from __future__ import annotations

import socket
import threading
from dataclasses import replace

import pytest

from arrakis_engine.bootstrap import build_engine
from arrakis_tui.app import make_console
from tests.conftest import make_settings
from tests.tui.conftest import SIZE


@pytest.mark.anyio
async def test_quit_does_not_wait_for_a_health_probe_in_flight(database_url, redis_url, tmp_path):
    # An RPC endpoint that takes the connection and never answers: the probe waits for its timeout.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    called = threading.Event()
    held = []

    def accept() -> None:
        conn, _ = silent.accept()
        held.append(conn)
        called.set()

    threading.Thread(target=accept, daemon=True).start()
    settings = replace(make_settings(database_url, redis_url, tmp_path),
                       rpc_urls={"berachain": [f"http://127.0.0.1:{silent.getsockname()[1]}"]}, rpc_timeout=30)
    engine = build_engine(settings)
    try:
        app = make_console(engine, health_every=60)
        async with app.run_test(size=SIZE) as pilot:
            while not called.is_set():
                await pilot.pause(0.05)
            await pilot.press("q")
        # The console has closed; the probe is still waiting on the silent endpoint (it was not
        # waited for), on a daemon thread that does not hold the process open.
        probes = [t for t in threading.enumerate() if t.name == "console-engine-call"]
        assert probes and all(t.daemon for t in probes) and any(t.is_alive() for t in probes)
    finally:
        engine.close()
        for conn in held:
            conn.close()
        silent.close()
