"""The Discord bot: a thin front end (parse -> engine -> render) on interactions.py.

:func:`arrakis_bot.app.build_bot` makes the client from an engine built by
:func:`arrakis_engine.bootstrap.build_engine` (the one composition root) and loads one extension
per feature, each handed the engine (``load_extension(name, engine=...)``). Engine calls run on
threads, never on the event loop, so the gateway's heartbeat never waits on the database.
"""
