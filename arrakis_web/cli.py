"""``arrakis web``: contributed to the ``arrakis`` command through the ``arrakis.commands``
entry-point group (setup.cfg), like ``arrakis bot``, so the engine never imports the web front end."""

from __future__ import annotations

import click

from arrakis_engine.cli.base import CliState, pass_state


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=int, envvar="PORT", default=8080, show_default=True, help="Port (default: $PORT).")
@pass_state
def web(state: CliState, host: str, port: int) -> None:
    """Serve the wallet page members reach from /verify (GET /verify/<link>), and Slack's button
    presses for approval requests (POST /slack/interactions) when SLACK_SIGNING_SECRET is set;
    requests not signed by Slack, stale or replayed are refused. ARRAKIS_PUBLIC_URL is the address
    members reach this process at (it goes in /verify's links and in the signed messages); unset,
    they name the address served here (--port or $PORT)."""
    from dataclasses import replace

    from .app import serve

    served = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::', '') else host}:{port}"
    # Without ARRAKIS_PUBLIC_URL, links and signed messages name the port actually served.
    state.adjust_settings = lambda s: s if s.public_url_explicit else replace(s, public_url=served)
    engine = state.engine
    engine.verification.announce(engine.settings.public_url)
    click.echo(f"wallet page on http://{host}:{port}/verify/… (links say {engine.settings.public_url})", err=True)
    if engine.settings.slack_signing_secret:
        click.echo(f"listening for Slack on http://{host}:{port}/slack/interactions", err=True)
    try:
        serve(engine, engine.settings.slack_signing_secret, host=host, port=port)
    finally:
        engine.verification.withdraw()
