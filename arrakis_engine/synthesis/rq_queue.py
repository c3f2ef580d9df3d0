"""Where the queue adapter used to be (it is now ``adapters/rq/queue.py``).

RQ stores a job's failure callback in Redis by its dotted name. Jobs enqueued by an older release
name ``arrakis_engine.synthesis.rq_queue.on_failure``; this keeps that name importable so they
still resolve. New jobs name the callback at its new place.
"""

from ..adapters.rq.queue import on_failure

__all__ = ["on_failure"]
