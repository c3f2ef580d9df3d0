"""The shared metrics in Redis: every process's flusher adds what it recorded; ``arrakis web``
(and ``arrakis status``) read the sums.

Key layout (names in :mod:`arrakis_engine.keys`):

    arrakis:metrics:counters        hash  "family<TAB>labels JSON" -> total since the first flush
    arrakis:metrics:histograms      hash  "family<TAB>labels JSON<TAB>i|sum|count" -> total (i: bucket
                                          index, not cumulative; the last index is +Inf)
    arrakis:metrics:gauges          hash  "family<TAB>labels JSON<TAB>process" -> JSON [value, unix time]
    arrakis:metrics:hour:{h}        hash  counter increments in hour h (kept 25 h): the last 24 h

A flush is one pipeline (no transaction): HINCRBYFLOAT per counter and histogram cell, the same
for the hour's hash, HSET of the gauges this process reports. Nothing is read back.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from .. import keys
from ..metrics import FAMILIES, Batch, Metrics

if TYPE_CHECKING:
    from redis import Redis

log = logging.getLogger(__name__)

HOUR_TTL = 25 * 3600
GAUGE_FRESH = 90  # seconds: a gauge not reported for longer is the process gone


def _field(family: str, labels: tuple) -> str:
    return f"{family}\t{json.dumps(list(labels), separators=(',', ':'))}"


def _parse(field) -> tuple[str, tuple, list[str]]:
    text = field.decode() if isinstance(field, bytes) else field
    family, labels, *rest = text.split("\t")
    return family, tuple(json.loads(labels)), rest


@dataclass
class Snapshot:
    """The shared figures: counters and histograms as :class:`Batch` holds them, and each
    reported gauge with its age in seconds."""

    counters: dict
    histograms: dict
    gauges: dict  # (family, labels) -> list of (value, age seconds), one per reporting process


class MetricsStore:
    def __init__(self, redis: Redis, *, clock: Callable[[], float] = time.time) -> None:
        self.redis = redis
        self.clock = clock
        self.process_id = f"{socket.gethostname()}:{os.getpid()}"

    def flush(self, batch: Batch) -> None:
        """Add ``batch`` to the shared figures in one round trip."""
        now = self.clock()
        hour = keys.metrics_hour(int(now // 3600))
        pipe = self.redis.pipeline(transaction=False)
        for (family, labels), amount in batch.counters.items():
            f = _field(family, labels)
            pipe.hincrbyfloat(keys.METRICS_COUNTERS, f, amount)
            pipe.hincrbyfloat(hour, f, amount)
        if batch.counters:
            pipe.expire(hour, HOUR_TTL)
        for (family, labels), cells in batch.histograms.items():
            base = _field(family, labels)
            for i, n in enumerate(cells[:-2]):
                if n:
                    pipe.hincrbyfloat(keys.METRICS_HISTOGRAMS, f"{base}\t{i}", n)
            pipe.hincrbyfloat(keys.METRICS_HISTOGRAMS, f"{base}\tsum", cells[-2])
            pipe.hincrbyfloat(keys.METRICS_HISTOGRAMS, f"{base}\tcount", cells[-1])
        if batch.gauges:
            pipe.hset(keys.METRICS_GAUGES, mapping={
                f"{_field(family, labels)}\t{self.process_id}": json.dumps([value, now])
                for (family, labels), value in batch.gauges.items()})
        pipe.execute()

    def snapshot(self) -> Snapshot:
        pipe = self.redis.pipeline(transaction=False)
        pipe.hgetall(keys.METRICS_COUNTERS)
        pipe.hgetall(keys.METRICS_HISTOGRAMS)
        pipe.hgetall(keys.METRICS_GAUGES)
        raw_counters, raw_hists, raw_gauges = pipe.execute()
        counters = {}
        for field, value in raw_counters.items():
            family, labels, _ = _parse(field)
            if family in FAMILIES:
                counters[(family, labels)] = float(value)
        histograms: dict = {}
        for field, value in raw_hists.items():
            family, labels, rest = _parse(field)
            spec = FAMILIES.get(family)
            if spec is None or not rest:
                continue
            cells = histograms.setdefault((family, labels), [0.0] * (len(spec.buckets) + 1) + [0.0, 0.0])
            where = rest[0]
            index = -2 if where == "sum" else -1 if where == "count" else int(where)
            if index < len(spec.buckets) + 1:
                cells[index] = float(value)
        now = self.clock()
        gauges: dict = {}
        stale = []
        for field, value in raw_gauges.items():
            family, labels, _ = _parse(field)
            reported, at = json.loads(value)
            if now - at > 86400:
                stale.append(field)
                continue
            gauges.setdefault((family, labels), []).append((float(reported), now - at))
        if stale:
            self.redis.hdel(keys.METRICS_GAUGES, *stale)
        return Snapshot(counters, histograms, gauges)

    def window(self, hours: int = 24) -> dict:
        """Counter increments over the last ``hours`` whole-or-current hours: (family, labels) -> sum."""
        now_hour = int(self.clock() // 3600)
        pipe = self.redis.pipeline(transaction=False)
        for h in range(now_hour - hours + 1, now_hour + 1):
            pipe.hgetall(keys.metrics_hour(h))
        out: dict = {}
        for raw in pipe.execute():
            for field, value in raw.items():
                family, labels, _ = _parse(field)
                out[(family, labels)] = out.get((family, labels), 0.0) + float(value)
        return out

    def reset(self) -> None:
        """Forget every shared figure (tests and benchmarks)."""
        names = [keys.METRICS_COUNTERS, keys.METRICS_HISTOGRAMS, keys.METRICS_GAUGES]
        names += list(self.redis.scan_iter(keys.metrics_hour(0).rsplit(":", 1)[0] + ":*"))
        self.redis.delete(*names)


class MetricsFlusher:
    """Sends a process's recorded figures to Redis every ``interval`` seconds, on a daemon
    thread, and once more when stopped. A failed flush keeps nothing back from the process (the
    figures are lost for the shared view, never the work): it is logged once a minute at most."""

    def __init__(self, metrics: Metrics, store: MetricsStore, *, interval: float = 2.0) -> None:
        self.metrics = metrics
        self.store = store
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_error = 0.0

    def start(self) -> "MetricsFlusher":
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="arrakis-metrics", daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.flush()

    def flush(self) -> None:
        batch = self.metrics.drain()
        if not batch and not batch.gauges:
            return
        try:
            self.store.flush(batch)
        except Exception as exc:  # never let figures break the work
            if time.monotonic() - self._last_error > 60:
                self._last_error = time.monotonic()
                log.warning("metrics could not be sent to Redis (%s); they are kept in this process only",
                            type(exc).__name__)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self.flush()


def approval_figures(db, now) -> tuple[int, int]:
    """(approval requests pending, those of them that expire within the hour)."""
    with db.platform() as tx:
        row = tx.one("""SELECT count(*) AS pending,
                               count(*) FILTER (WHERE expires_at <= %s + interval '1 hour') AS soon
                          FROM approval_requests WHERE status = 'pending' AND expires_at > %s""", (now, now))
    return int(row["pending"]), int(row["soon"])
