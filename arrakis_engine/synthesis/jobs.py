"""What a worker runs for each job type.

The engine a job uses is the worker's own: :class:`~arrakis_engine.adapters.rq.queue.EngineWorker`
is built with it and hands it to each job it performs (``job.engine``), so nothing here keeps
a module-level engine.
"""

from __future__ import annotations

import math
import time
from datetime import datetime, timezone
from typing import Any

from rq import get_current_job

from .. import keys
from ..errors import RouteBusy
from ..logs import log_context


def _progress(done: int, total: int) -> None:
    """Steps done out of those planned, and the time left at the pace so far (for the console)."""
    job = get_current_job()
    if job is not None:
        job.meta["progress"] = progress_meta(done, total, job.started_at, datetime.now(timezone.utc))
        job.save_meta()


def progress_meta(done: int, total: int, started_at: datetime | None, now: datetime) -> dict:
    elapsed = (now - started_at.replace(tzinfo=started_at.tzinfo or timezone.utc)).total_seconds() \
        if started_at else None
    eta = round(elapsed / done * (total - done), 1) if elapsed is not None and done > 0 else None
    return {"done": done, "total": total, "eta_seconds": eta}


def _synthesize_slice(e, job, community_id: str, payload: dict) -> dict:
    """One slice of a community synthesis. Part 0 reads the guild and checks its caps; each later
    part makes up to ``synthesis_slice`` changes and queues the next part behind the other
    communities' work. A retried or recovered slice reads the guild again before changing it."""
    attempts = job.meta["attempts"] = job.meta.get("attempts", 0) + 1
    recovered = bool(job.meta.get("recovered"))
    job.save_meta()
    part, version = int(payload.get("part", 0)), int(payload["version"])
    applied = e.synthesizer.applied_version(community_id)
    if applied is not None and version < applied:
        # A newer plan is in the guild already: an older version's slice, left on the queue or
        # written there by hand, would roll the guild back to an old plan.
        return {"status": "superseded", "manifest_version": version, "applied": applied}
    report = e.synthesizer.apply(community_id, version=version, read_guild=part == 0 or attempts > 1 or recovered,
                                 budget=0 if part == 0 else e.settings.synthesis_slice, progress=_progress,
                                 patience=1.0)
    if not report.complete:
        e.queue.enqueue("SYNTHESIZE_COMMUNITY", community_id, {"version": version, "part": part + 1},
                        key=keys.synthesis_slice(community_id, version, part + 1), delay=report.retry_after)
    return report.as_dict()


MEMBER_PATIENCE = 1.0  # seconds a member update may wait in a worker for its guild's member bucket
ROUTE_SPACING = 1.0  # seconds between the turns given to live updates waiting for a guild's member route
                     # (Discord's member route: 10 calls per 10 s per guild)
LIVE_FIRST_WAIT = 1.0  # seconds a bulk member update steps aside while a live one of its community is on its way


def _come_back(e, job, job_type: str, community_id: str, payload: dict, wait: float,
               turn: float | None = None) -> dict:
    """The guild's member bucket (10 per 10 s on Discord) is empty for a while: rather than hold
    the worker (and, with a big community syncing, every worker) until it frees up, put the same
    delivery back on the queue for when it does, in the same lane, and serve other work
    meanwhile. The copy is safe: a delivery is made once per decision, whichever copy runs."""
    from ..adapters.rq.queue import BASE

    again = dict(payload, waits=int(payload.get("waits", 0)) + 1)
    if turn is not None:
        again["turn"] = turn
    seq = payload.get("seq")
    base_key = keys.member_roles(community_id, payload["discord_id"], seq) if seq is not None \
        else f"{community_id}:{payload['discord_id']}:{job.id if job is not None else 'now'}"
    live = getattr(job, "origin", None) == BASE
    e.queue.enqueue(job_type, community_id, again, key=f"{base_key}:w{again['waits']}", delay=max(wait, 0.05),
                    first_contact=live)
    if not live:  # the community's other updates wait on the same bucket: leave its queue alone meanwhile
        e.queue.pause(community_id, wait)
    if job is not None:
        job.meta["waiting"] = True  # handed on, not delivered (progress bars do not count it)
        job.save_meta()
    return {"status": "waiting", "retry_in": round(wait, 2), "roles": payload["roles"]}


def run(job_type: str, community_id: str, payload: dict) -> Any:
    job = get_current_job()
    with log_context(community_id=community_id, job_id=getattr(job, "id", None)):  # on this job's log lines
        return _run(job, job_type, community_id, payload)


def _run(job, job_type: str, community_id: str, payload: dict) -> Any:
    e = getattr(job, "engine", None)
    if e is None:
        raise RuntimeError("this job runs only in an Arrakis worker; start one with `arrakis worker`")
    if job_type == "SYNTHESIZE_COMMUNITY":
        return _synthesize_slice(e, job, community_id, payload)
    if job_type in ("ASSIGN_ROLE", "REMOVE_ROLE"):
        from ..adapters.rq.queue import BASE

        live = getattr(job, "origin", None) == BASE
        if not live and e.queue.live_waiting(community_id):
            # a live change of this community is on its way: the guild's member route is its first
            return _come_back(e, job, job_type, community_id, payload, LIVE_FIRST_WAIT)
        now = time.time()
        turn = payload.get("turn")
        if not (isinstance(turn, (int, float)) and not isinstance(turn, bool) and math.isfinite(turn)
                and abs(turn - now) <= 86400):
            turn = None  # none yet (or not one a worker could have given: ignored)
        if live and turn is None and e.queue.line_until(community_id) > now:
            # others wait for this guild's member route already: take the next turn behind them
            turn = e.queue.take_turn(community_id, now, ROUTE_SPACING)
            return _come_back(e, job, job_type, community_id, payload, turn - now, turn)
        if live and turn is not None and turn > now + 0.2:  # too early for its turn
            return _come_back(e, job, job_type, community_id, payload, turn - now, turn)
        # one decision, one delivery: dropped if a later decision superseded it, never older than
        # what Discord last got; an update naming no decision (written by hand) is refused
        try:
            out = e.member_sync.deliver(community_id, payload["guild_id"], payload["discord_id"], payload["roles"],
                                        payload.get("seq"), patience=MEMBER_PATIENCE)
        except RouteBusy as busy:
            if not live:
                return _come_back(e, job, job_type, community_id, payload, busy.wait)
            if turn is not None:  # its turn came and the call was not free yet: soon again
                return _come_back(e, job, job_type, community_id, payload, busy.wait, turn)
            turn = e.queue.take_turn(community_id, now + busy.wait, ROUTE_SPACING)
            return _come_back(e, job, job_type, community_id, payload, turn - now, turn)
        finally:
            if live and job is not None:
                e.queue.live_done(community_id, job.id)
        _progress(1, 1)
        return out
    if job_type in ("CREATE_ROLE", "UPDATE_ROLE", "DELETE_ROLE", "CREATE_CHANNEL", "UPDATE_CHANNEL",
                    "DELETE_CHANNEL", "CREATE_CATEGORY", "UPDATE_CATEGORY", "DELETE_CATEGORY", "SEND_MESSAGE"):
        e.reconciler.check_queued(community_id, job_type, payload)  # Arrakis queues none: written by hand
        return e.reconciler.run_action(community_id, job_type, payload)
    raise ValueError(f"unknown job type {job_type}")
