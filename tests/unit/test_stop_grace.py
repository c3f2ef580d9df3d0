"""A long-running command stops on SIGTERM; a stop that hangs ends within its grace period and
says where each thread was (``arrakis_engine/cli/processes.py:stop_on_sigterm``)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

SCRIPT = """
import sys, time
from arrakis_engine.cli.processes import stop_on_sigterm
stop_on_sigterm(grace={grace})
try:
    print("ready", flush=True)  # inside the try: a SIGTERM right after it still meets the clean-up
    while True:
        time.sleep(0.05)
finally:
    if {hang}:
        def clean_up_that_never_returns():
            time.sleep(3600)
        clean_up_that_never_returns()
"""


def _run(hang: bool, grace: float = 1.0):
    p = subprocess.Popen([sys.executable, "-c", SCRIPT.format(grace=grace, hang=hang)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "ready"
    started = time.monotonic()
    p.send_signal(signal.SIGTERM)
    p.send_signal(signal.SIGTERM)  # a second one (a platform repeating itself) changes nothing
    try:
        out, err = p.communicate(timeout=30)
    finally:
        p.kill()
    return p.returncode, err, time.monotonic() - started


def test_a_clean_stop_exits_0_at_once():
    code, err, took = _run(hang=False)
    assert code == 0 and "did not stop" not in err
    assert took < 5


def test_a_stop_that_hangs_ends_after_the_grace_period_with_every_threads_stack():
    code, err, took = _run(hang=True, grace=1.0)
    assert code == 1
    assert "did not stop within 1 s of SIGTERM" in err
    assert "clean_up_that_never_returns" in err  # the stack says where it was stuck
    assert 1.0 <= took < 10
