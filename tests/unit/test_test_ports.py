"""The port allocator and server runner every test server goes through (tests/fixtures/ports.py)."""

from __future__ import annotations

import socket
import sys

import pytest

from tests.fixtures.ports import ServerFailed, ServerProcess, reserve, still_running


def test_a_block_never_collides_with_itself_or_its_derived_ports():
    block = reserve([f"p{i}" for i in range(10)], derived=(10000,))
    try:
        own = list(block.ports.values())
        every = own + [p + 10000 for p in own]
        assert len(set(every)) == len(every)
        with pytest.raises(OSError):  # held until released
            with socket.socket() as s:
                s.bind(("127.0.0.1", own[0]))
    finally:
        block.release()
    with socket.socket() as s:
        s.bind(("127.0.0.1", own[0]))


def test_blocks_never_hand_out_a_port_twice_in_one_run():
    first = reserve(["a", "b"], derived=(10000,))
    first.release()
    second = reserve(["a", "b"], derived=(10000,))
    second.release()
    one = set(first.ports.values()) | {p + 10000 for p in first.ports.values()}
    two = set(second.ports.values()) | {p + 10000 for p in second.ports.values()}
    assert not one & two


def test_a_server_that_dies_says_why_with_its_log(tmp_path):
    server = ServerProcess("broken", [sys.executable, "-c", "print('Port allocation failed: 1234'); raise SystemExit(3)"],
                           tmp_path / "broken.log")
    with pytest.raises(ServerFailed) as err:
        server.start(lambda: False, timeout=10)
    assert "status 3" in str(err.value) and "Port allocation failed: 1234" in str(err.value)
    assert not server.alive() and "broken" not in " ".join(still_running())


def test_a_server_that_never_answers_is_stopped(tmp_path):
    server = ServerProcess("silent", [sys.executable, "-c", "import time; print('listening soon'); time.sleep(60)"],
                           tmp_path / "silent.log")
    with pytest.raises(ServerFailed, match="did not answer within 1 s"):
        server.start(lambda: False, timeout=1)
    assert server.proc is None and "silent" not in " ".join(still_running())
