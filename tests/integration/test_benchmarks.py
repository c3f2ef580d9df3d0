"""Every benchmark in bench/ runs to the end in its quick mode (tiny sizes, the same code path),
so none can rot unnoticed: a benchmark added later is picked up by the glob below."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HELPERS = {"__init__.py", "harness.py"}
BENCHMARKS = sorted(p.name for p in (ROOT / "bench").glob("*.py") if p.name not in HELPERS)


def test_every_benchmark_is_found():
    """The glob sees the benchmarks the README lists (a rename would otherwise drop one)."""
    readme = (ROOT / "README.md").read_text()
    listed = {line.split("bench/")[1].split()[0] for line in readme.splitlines() if "python bench/" in line}
    assert listed and listed == set(BENCHMARKS)


@pytest.mark.slow
@pytest.mark.parametrize("name", BENCHMARKS)
def test_benchmark_quick_run(name, pg_server_url, redis_url, tmp_path):
    env = {**os.environ, "BENCH_DATABASE_URL": pg_server_url, "BENCH_REDIS_URL": redis_url,
           "TMPDIR": str(tmp_path)}
    done = subprocess.run([sys.executable, str(ROOT / "bench" / name), "--quick"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, f"{name} --quick exited {done.returncode}:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    assert done.stdout.strip(), f"{name} printed no figures"
