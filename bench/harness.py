"""What the benchmarks share: a throwaway PostgreSQL database for one run (BENCH_DATABASE_URL
names the server), percentiles, and the ``--quick`` mode the test suite runs every benchmark in."""

from __future__ import annotations

import argparse
import os
import uuid
from contextlib import contextmanager
from typing import Iterator
from urllib.parse import urlsplit, urlunsplit

import psycopg2

DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"


@contextmanager
def scratch_database() -> Iterator[str]:
    """Create a fresh database, yield its URL, and drop it again whatever happens."""
    server = os.environ.get("BENCH_DATABASE_URL", DEFAULT_SERVER)
    name = f"arrakis_bench_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(server)
    admin.autocommit = True
    admin.cursor().execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(urlsplit(server)._replace(path=f"/{name}"))
    finally:
        with admin.cursor() as cur:
            cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s "
                        "AND pid <> pg_backend_pid()", (name,))
            cur.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    from pathlib import Path

    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(values, p):
    """The ``p``-th percentile of ``values`` (nearest rank)."""
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def parse_args(ap: argparse.ArgumentParser, **quick) -> argparse.Namespace:
    """Parse the benchmark's options, plus ``--quick``: the sizes in ``quick`` for every option
    left at its default (the same code path on tiny sizes). Targets are still printed, but a
    quick run's exit status says only whether it ran to the end: tiny sizes on a busy machine
    measure nothing (tests/integration/test_benchmarks.py runs every benchmark so, so none rots)."""
    ap.add_argument("--quick", action="store_true",
                    help="tiny sizes, same code path; exit 0 if it ran to the end, whatever the figures")
    args = ap.parse_args()
    if args.quick:
        for name, value in quick.items():
            if getattr(args, name) == ap.get_default(name):
                setattr(args, name, value)
    return args


def verdict(args: argparse.Namespace, ok: bool) -> int:
    """The exit status: 0 when the targets were met (or in a quick run), else 1."""
    return 0 if ok or getattr(args, "quick", False) else 1
