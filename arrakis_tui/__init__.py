"""Operator console (Textual).

Not built yet: the console arrives with its own issue. It will be built from the same
:func:`arrakis_engine.bootstrap.build_engine` as the CLI.
"""
