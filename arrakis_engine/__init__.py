"""Arrakis engine: the headless core shared by the Discord bot and the operator console.

Nothing here imports interactions.py or Textual. Build an engine with
:func:`arrakis_engine.bootstrap.build_engine`.
"""

__version__ = "0.1.0"
