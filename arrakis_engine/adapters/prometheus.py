"""Prometheus exposition: ``arrakis web``'s ``/metrics`` (the platform's figures: what every
process flushed to Redis, plus gauges read from the platform's state at scrape time), and the
``--metrics-port`` endpoint of a long-running process (what that process recorded itself).

Every family of :data:`arrakis_engine.metrics.FAMILIES` is always exposed (a counter nobody
incremented yet shows no series, a label-less one shows 0), so alert rules can tell "zero" from
"not scraped".
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Callable, Iterable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from ..metrics import COUNTER, FAMILIES, HISTOGRAM, Batch, Metrics
from ..storage.metrics_store import GAUGE_FRESH, MetricsStore, Snapshot

log = logging.getLogger(__name__)


def _families(counters: dict, histograms: dict, gauges: dict) -> Iterable:
    """Prometheus metric families from (family, labels) -> value maps."""
    for spec in FAMILIES.values():
        names = list(spec.labels)
        if spec.kind == COUNTER:
            fam = CounterMetricFamily(spec.name.removesuffix("_total"), spec.help, labels=names)
            seen = {labels: v for (f, labels), v in counters.items() if f == spec.name and len(labels) == len(names)}
            for labels in spec.known + (((),) if not names else ()):
                seen.setdefault(labels, 0.0)
            rows = list(seen.items())
            for labels, v in sorted(rows):
                fam.add_metric(list(labels), v)
        elif spec.kind == HISTOGRAM:
            fam = HistogramMetricFamily(spec.name, spec.help, labels=names)
            rows = [(labels, cells) for (f, labels), cells in histograms.items() if f == spec.name]
            if not rows and not names:
                rows = [((), [0] * (len(spec.buckets) + 1) + [0.0, 0])]
            for labels, cells in sorted(rows):
                running, buckets = 0.0, []
                for bound, n in zip(list(spec.buckets) + [float("inf")], cells[:-2]):
                    running += n
                    buckets.append(("+Inf" if bound == float("inf") else repr(float(bound)), running))
                fam.add_metric(list(labels), buckets, cells[-2])
        else:
            fam = GaugeMetricFamily(spec.name, spec.help, labels=names)
            rows = [(labels, v) for (f, labels), v in gauges.items() if f == spec.name]
            if not rows and not names:
                rows = [((), 0.0)]
            for labels, v in sorted(rows):
                fam.add_metric(list(labels), v)
        yield fam


def shared_gauges(snapshot: Snapshot) -> dict:
    """Gauges the processes report: the worst breaker over the processes that report now; a
    gateway shard is up only if a bot says so now (a bot that stopped reporting is down)."""
    out = {}
    for (family, labels), reports in snapshot.gauges.items():
        fresh = [v for v, age in reports if age <= GAUGE_FRESH]
        if family == "arrakis_gateway_connected":
            out[(family, labels)] = max(fresh, default=0.0)
        elif fresh:
            out[(family, labels)] = max(fresh)
    return out


class PlatformCollector:
    """The platform-wide figures for ``arrakis web``: ``store``'s shared counters, histograms and
    process-reported gauges, and ``scraped()``'s gauges ((family, labels) -> value), read now."""

    def __init__(self, store: MetricsStore, scraped: Callable[[], dict]) -> None:
        self.store = store
        self.scraped = scraped

    def collect(self):
        snapshot = self.store.snapshot()
        gauges = shared_gauges(snapshot)
        try:
            gauges.update(self.scraped())
        except Exception as exc:  # a scrape reports what it can
            log.warning("some platform gauges could not be read (%s)", type(exc).__name__)
        return _families(snapshot.counters, snapshot.histograms, gauges)


class ProcessCollector:
    """What one process recorded since it started (``--metrics-port``)."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self):
        totals: Batch = self.metrics.totals()
        return _families(totals.counters, totals.histograms, totals.gauges)


def platform_registry(store: MetricsStore, scraped: Callable[[], dict]) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(PlatformCollector(store, scraped))
    return registry


def add_metrics_route(app, engine) -> None:
    """``GET /metrics`` on an aiohttp app (``arrakis web``): the platform-wide figures."""
    from aiohttp import web

    registry = platform_registry(engine.metrics_store, engine.platform_gauges)

    async def metrics(request):
        body = await asyncio.to_thread(generate_latest, registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app.router.add_get("/metrics", metrics)


def serve_process_metrics(metrics: Metrics, port: int | None, *, host: str = "0.0.0.0"):
    """Serve this process's own /metrics on ``port`` (None or 0: not at all). Returns the server."""
    if not port:
        return None
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ProcessCollector(metrics))
    server, _thread = start_http_server(int(port), addr=host, registry=registry)
    log.info("metrics of this process on http://%s:%d/metrics", host, int(port))
    return server


def queue_figures(redis) -> tuple[int, int, int, int]:
    """(jobs waiting in the first-contact lane, in the community queues, scheduled for later, dead
    letters), in two round trips however many communities have a queue."""
    from rq import Queue
    from rq.registry import ScheduledJobRegistry

    from .. import keys
    from .rq.queue import BASE

    names = sorted({n.decode() if isinstance(n, bytes) else n for n in redis.smembers(keys.SYNTHESIS_QUEUES)}
                   | {BASE})
    pipe = redis.pipeline(transaction=False)
    for name in names:
        queue = Queue(name, connection=redis)
        pipe.llen(queue.key)
        pipe.zcard(ScheduledJobRegistry(queue=queue).key)
    pipe.llen(keys.DEAD_LETTERS)
    answers = pipe.execute()
    waiting = dict(zip(names, answers[0:-1:2]))
    scheduled = sum(answers[1:-1:2])
    first = waiting.pop(BASE, 0)
    return int(first), int(sum(waiting.values())), int(scheduled), int(answers[-1])


def platform_gauges(*, queue, approvals_figures, killswitch, live, chains, vault_configured: bool,
                    clock: Callable[[], float] = time.time) -> dict:
    """The gauges read from the platform's state at scrape time."""
    out: dict = {("arrakis_vault_configured", ()): 1.0 if vault_configured else 0.0}
    first, normal, scheduled, dead = queue_figures(queue.redis)
    out[("arrakis_queue_depth", ("first",))] = float(first)
    out[("arrakis_queue_depth", ("normal",))] = float(normal)
    out[("arrakis_queue_depth", ("scheduled",))] = float(scheduled)
    out[("arrakis_dead_letters", ())] = float(dead)
    waiting, soon = approvals_figures()
    out[("arrakis_approvals_pending", ())] = float(waiting)
    out[("arrakis_approvals_expiring_soon", ())] = float(soon)
    scopes = {"global": 0, "community": 0, "user": 0}
    for entry in killswitch.status()["active"]:
        scopes[entry["scope"]] = scopes.get(entry["scope"], 0) + 1
    for scope, n in scopes.items():
        out[("arrakis_killswitch_active", (scope,))] = float(n)
    for chain in chains:
        status = live.status(chain)
        if status is not None and status.get("behind") is not None:
            out[("arrakis_watcher_lag_blocks", (chain,))] = float(status["behind"])
    return out
