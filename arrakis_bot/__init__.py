"""Discord front end (interactions.py extensions).

Not built yet: the bot arrives with its own issue. It will call the same engine use cases as the
CLI and the console, wired by :func:`arrakis_engine.bootstrap.build_engine`.
"""
