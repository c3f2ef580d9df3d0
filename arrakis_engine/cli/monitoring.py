"""``--metrics-port`` (or ``ARRAKIS_METRICS_PORT``) on the long-running processes: each may serve
its own ``/metrics`` (what it recorded since it started) for self-hosted scraping. On a PaaS, where
only the web process takes HTTP, scrape ``arrakis web``'s ``/metrics`` instead: it has the figures
of every process."""

from __future__ import annotations

import functools

import click


def metrics_port(command):
    """Add ``--metrics-port`` to a long-running command and serve the process's figures on it."""

    @click.option("--metrics-port", type=click.IntRange(1, 65535), envvar="ARRAKIS_METRICS_PORT", default=None,
                  help="Serve this process's own /metrics on this port (default: $ARRAKIS_METRICS_PORT; unset: off).")
    @functools.wraps(command)
    def wrapper(*args, metrics_port: int | None = None, **kwargs):
        if metrics_port:
            from ..adapters.prometheus import serve_process_metrics
            from .base import CliState

            state = click.get_current_context().find_object(CliState)
            try:
                serve_process_metrics(state.engine.metrics, metrics_port)
            except OSError as exc:
                raise click.ClickException(f"--metrics-port {metrics_port} cannot be used ({exc.strerror})") from None
        return command(*args, **kwargs)

    return wrapper
