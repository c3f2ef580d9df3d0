"""The ``discord-synthesis`` queue on RQ, with one sub-queue per community.

* Queue names: ``discord-synthesis:{community_id}``; the set ``arrakis:synthesis:queues`` lists
  those that exist. :class:`FairWorker` refreshes its queue list from that set and takes jobs
  round-robin across communities, so 5,000 pending operations of one community never hold back
  the 5 of another by more than a job or two.
* Job id = the idempotency key: enqueueing a key that is queued, running, scheduled or done is a
  no-op that returns the existing job.
* 3 attempts with backoff (default 5, 25, 125 s). A job whose error is not retryable, or that has
  used its attempts, goes to the dead-letter queue ``arrakis:dlq`` with its type, payload and
  error -- nothing is dropped.
* Progress in ``job.meta["progress"]``.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from typing import TYPE_CHECKING, Any, Callable, Sequence

from rq import Callback, Queue, Retry, SimpleWorker, Worker
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer
from rq.worker import DequeueStrategy

from ... import keys
from ...errors import ValidationError

if TYPE_CHECKING:
    from redis import Redis

    from ...bootstrap import Engine

log = logging.getLogger(__name__)

BASE = "discord-synthesis"
# Jobs are stored as JSON, never pickles: a pickle read from Redis runs whatever code it names,
# so anyone who could write to Redis could run code in every worker. And a worker performs only
# Arrakis's own job function with Arrakis's own failure callback (see EngineWorker.perform_job).
SERIALIZER = JSONSerializer
JOB_FUNCTION = "arrakis_engine.synthesis.jobs.run"
FAILURE_CALLBACKS = ("arrakis_engine.adapters.rq.queue.on_failure", "arrakis_engine.synthesis.rq_queue.on_failure")
QUEUES_KEY = keys.SYNTHESIS_QUEUES
DLQ_KEY = keys.DEAD_LETTERS
QUEUE_PAUSES = keys.QUEUE_PAUSES
JOB_TYPES = (
    "CREATE_ROLE", "UPDATE_ROLE", "DELETE_ROLE", "CREATE_CHANNEL", "UPDATE_CHANNEL", "DELETE_CHANNEL",
    "CREATE_CATEGORY", "UPDATE_CATEGORY", "DELETE_CATEGORY", "ASSIGN_ROLE", "REMOVE_ROLE", "SEND_MESSAGE",
    "SYNTHESIZE_COMMUNITY",
)
_SAFE = re.compile(r"[^A-Za-z0-9_-]")
MEMBER_UPDATES = ("ASSIGN_ROLE", "REMOVE_ROLE")
ENQUEUE_BATCH = 1000  # jobs written per pipelined round trip by enqueue_many
LIVE_MARK_TTL = 120.0  # seconds a live update's mark holds back bulk work at most (a lost job's mark lapses)


def queue_name(community_id: uuid.UUID | str) -> str:
    return f"{BASE}:{community_id}"


class SynthesisQueue:
    def __init__(self, redis: Redis, *, backoff: Sequence[int] = (5, 25, 125), job_timeout: int = 3600) -> None:
        self.redis = redis
        self.backoff = list(backoff)
        self.job_timeout = job_timeout

    def queue(self, community_id) -> Queue:
        return Queue(queue_name(community_id), connection=self.redis, serializer=SERIALIZER)

    def enqueue(self, job_type: str, community_id: uuid.UUID | str, payload: dict, *, key: str,
                delay: float = 0.0, first_contact: bool = False) -> Job:
        """Enqueue once per idempotency ``key`` (after ``delay`` seconds, if given).

        ``first_contact`` puts the job in the shared ``discord-synthesis`` lane that every worker
        serves before the community queues: a community's first step (reading its guild) then
        never waits behind a round of everybody else's work.
        """
        if job_type not in JOB_TYPES:
            raise ValidationError(f"unknown job type {job_type}", field="job_type")
        job_id = self.job_id(job_type, key)
        try:
            existing = Job.fetch(job_id, connection=self.redis, serializer=SERIALIZER)
            if existing.get_status(refresh=True) not in (JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED):
                return existing
        except Exception:  # no such job: enqueue below
            pass
        self.redis.sadd(QUEUES_KEY, queue_name(community_id))
        queue = Queue(BASE, connection=self.redis, serializer=SERIALIZER) if first_contact else self.queue(community_id)
        if delay > 0:
            from datetime import timedelta

            from rq.registry import ScheduledJobRegistry

            due = time.time() + delay

            def submit(*a, **k):
                job = queue.enqueue_in(timedelta(seconds=delay), *a, **k)
                # RQ keeps whole seconds; a turn at the member route is to the tenth of a second
                self.redis.zadd(ScheduledJobRegistry(queue=queue).key, {job.id: due}, xx=True)
                return job
        else:
            submit = queue.enqueue
        if first_contact and job_type in MEMBER_UPDATES:
            # a live update: the community's bulk updates leave its guild's member route to it
            self.redis.zadd(keys.live_waiting(community_id), {job_id: time.time() + delay + LIVE_MARK_TTL})
        return submit(
            "arrakis_engine.synthesis.jobs.run", job_type, str(community_id), payload,
            job_id=job_id, retry=Retry(max=len(self.backoff), interval=self.backoff),
            on_failure=Callback("arrakis_engine.adapters.rq.queue.on_failure"),
            job_timeout=self.job_timeout, result_ttl=86400, failure_ttl=7 * 86400,
            meta={"type": job_type, "community": str(community_id), "progress": None},
            description=f"{job_type} for {community_id}")

    def job_id(self, job_type: str, key: str) -> str:
        return _SAFE.sub("_", f"{job_type}-{key}")[:200]

    def enqueue_many(self, items: Sequence[tuple[str, Any, dict, str]], *, first_contact: bool = False) -> list[str]:
        """Enqueue (job type, community, payload, key) items; returns their job ids. Which of them
        are already queued, running, scheduled or done is asked in one pipelined round trip, so
        re-queueing 100,000 updates still on their way costs one read, not 100,000; the new ones
        are written in pipelined batches of 1,000 (a first sync of 100,000 members is 100 round
        trips, not several per member)."""
        for job_type, _, _, _ in items:
            if job_type not in JOB_TYPES:
                raise ValidationError(f"unknown job type {job_type}", field="job_type")
        ids = [self.job_id(t, k) for t, _, _, k in items]
        pipe = self.redis.pipeline(transaction=False)
        for job_id in ids:
            pipe.hget(Job.key_for(job_id), "status")
        gone = {b"failed", b"stopped", b"canceled", "failed", "stopped", "canceled", None}
        fresh = [(item, job_id) for item, job_id, status in zip(items, ids, pipe.execute()) if status in gone]
        for start in range(0, len(fresh), ENQUEUE_BATCH):
            batch = fresh[start:start + ENQUEUE_BATCH]
            pipe = self.redis.pipeline(transaction=False)
            by_queue: dict[str, list] = {}
            for (job_type, community_id, payload, _), job_id in batch:
                pipe.sadd(QUEUES_KEY, queue_name(community_id))
                if first_contact and job_type in MEMBER_UPDATES:
                    pipe.zadd(keys.live_waiting(community_id), {job_id: time.time() + LIVE_MARK_TTL})
                name = BASE if first_contact else queue_name(community_id)
                by_queue.setdefault(name, []).append(Queue.prepare_data(
                    "arrakis_engine.synthesis.jobs.run", (job_type, str(community_id), payload), job_id=job_id,
                    retry=Retry(max=len(self.backoff), interval=self.backoff),
                    on_failure=Callback("arrakis_engine.adapters.rq.queue.on_failure"),
                    timeout=self.job_timeout, result_ttl=86400, failure_ttl=7 * 86400,
                    meta={"type": job_type, "community": str(community_id), "progress": None},
                    description=f"{job_type} for {community_id}"))
            for name, datas in by_queue.items():
                Queue(name, connection=self.redis, serializer=SERIALIZER).enqueue_many(datas, pipeline=pipe)
            pipe.execute()
        return ids

    def pending(self) -> dict[str, int]:
        out = {"first-contact": Queue(BASE, connection=self.redis).count}
        for name in sorted(self.redis.smembers(QUEUES_KEY)):
            name = name.decode() if isinstance(name, bytes) else name
            out[name.split(":", 1)[1]] = Queue(name, connection=self.redis).count
        return out

    def workers(self) -> int:
        """How many synthesis workers are registered now (0: queued work waits for one)."""
        from rq import Worker

        return len(Worker.all(connection=self.redis))

    def counts(self) -> dict[str, int]:
        """Jobs over every synthesis queue: ``queued`` (waiting for a worker), ``scheduled`` (a retry
        in its backoff, or a later slice) and ``running``. One pipelined round trip for all the
        queues (status, the console's health panel and the metrics ask this every few seconds,
        and there is a queue per community ever synthesized); a running entry whose time is up
        (its worker died) does not count, as RQ's own cleanup would have removed it."""
        from rq.registry import ScheduledJobRegistry, StartedJobRegistry

        queues = [Queue(name, connection=self.redis) for name in sorted(_queue_names(self.redis))]
        now = time.time()
        pipe = self.redis.pipeline(transaction=False)
        for queue in queues:
            pipe.llen(queue.key)
            pipe.zcard(ScheduledJobRegistry(queue=queue).key)
            pipe.zcount(StartedJobRegistry(queue=queue).key, f"({now}", "+inf")
        answers = pipe.execute()
        return {"queued": sum(answers[0::3]), "scheduled": sum(answers[1::3]), "running": sum(answers[2::3])}

    def running(self, community_id) -> list[dict]:
        """This community's jobs a worker is running now, with their progress (steps done, planned,
        seconds left at the pace so far) as the job last recorded it."""
        from rq.registry import StartedJobRegistry

        out = []
        for name in (BASE, queue_name(community_id)):
            registry = StartedJobRegistry(name, connection=self.redis, serializer=SERIALIZER)
            for job in Job.fetch_many(registry.get_job_ids(), connection=self.redis, serializer=SERIALIZER):
                if job is not None and job.meta.get("community") == str(community_id):
                    out.append({"job_id": job.id, "type": job.meta.get("type"), "progress": job.meta.get("progress")})
        return out

    def live_waiting(self, community_id) -> bool:
        """Whether a live member update of this community is on its way (its bulk updates then
        wait, so that the guild's member route, 10 calls per 10 s, goes to the live one first)."""
        return bool(self.redis.zcount(keys.live_waiting(community_id), f"({time.time()}", "+inf"))

    def live_done(self, community_id, job_id: str) -> None:
        key = keys.live_waiting(community_id)
        pipe = self.redis.pipeline(transaction=False)
        pipe.zrem(key, job_id)
        pipe.zremrangebyscore(key, "-inf", time.time())
        pipe.execute()

    # A turn at the guild's member route: one after the last turn given out, and not before
    # ``earliest``. Atomic, so that two workers never get the same turn.
    _TURN = """
    local last = tonumber(redis.call('GET', KEYS[1]) or '0')
    local turn = math.max(tonumber(ARGV[1]), last + tonumber(ARGV[2]))
    redis.call('SET', KEYS[1], tostring(turn), 'PX', math.floor((turn - tonumber(ARGV[3])) * 1000) + 60000)
    return tostring(turn)
    """

    def line_until(self, community_id) -> float:
        """Until when turns at this community's guild member route are given out to live
        updates already waiting (0: nobody waits)."""
        return float(self.redis.get(keys.live_line(community_id)) or 0)

    def take_turn(self, community_id, earliest: float, spacing: float) -> float:
        """A turn (unix time) at the community's guild member route for a live update that must
        wait for it: the first free one at or after ``earliest``, ``spacing`` seconds after the
        last one given out. Updates that wait are then served in the order they began waiting,
        whichever worker takes them, instead of racing for each freed call."""
        return float(self.redis.eval(self._TURN, 1, keys.live_line(community_id), repr(earliest), repr(spacing),
                                     repr(time.time())))

    def pause(self, community_id, seconds: float) -> None:
        """Leave this community's queue alone for ``seconds`` (its guild's member bucket is empty:
        its next update could not go out sooner). Live updates in the shared lane are not held."""
        self.redis.hset(QUEUE_PAUSES, queue_name(community_id), repr(time.time() + max(0.0, seconds)))

    def dead_letter_count(self) -> int:
        return int(self.redis.llen(DLQ_KEY))

    def dead_letters(self, limit: int = 100) -> list[dict]:
        return [json.loads(x) for x in self.redis.lrange(DLQ_KEY, 0, limit - 1)]


def promote_due(redis, queues: Sequence[Queue]) -> int:
    """Move retries whose backoff has passed back onto their queue.

    RQ's own scheduler only serves the queues a worker started with; community sub-queues come
    and go, so workers do this themselves (at most once a second, see :class:`FairWorker`). The
    due ids of every queue are read in one pipelined round trip, however many queues there are.
    Removing the id from the scheduled set first (ZREM answers 1 to one caller only) keeps two
    workers from enqueueing the same retry twice.
    """
    from rq.registry import ScheduledJobRegistry

    queues = list(queues)
    if not queues:
        return 0
    now = time.time()
    registries = [ScheduledJobRegistry(queue=queue) for queue in queues]
    pipe = redis.pipeline(transaction=False)
    for registry in registries:
        pipe.zrangebyscore(registry.key, 0, now)
    moved = 0
    for queue, registry, due in zip(queues, registries, pipe.execute()):
        # Live updates whose turn came (or whose retry is due) go ahead of the lane's newer work,
        # the first due at the very front (reversed: each goes in ahead of the one before).
        front = queue.name == BASE
        for job_id in (reversed(due) if front else due):
            job_id = job_id.decode() if isinstance(job_id, bytes) else job_id
            if redis.zrem(registry.key, job_id) != 1:
                continue
            try:
                job = Job.fetch(job_id, connection=redis, serializer=SERIALIZER)
            except Exception:
                continue
            queue.enqueue_job(job, at_front=front)
            moved += 1
    return moved


def on_failure(job: Job, connection, exc_type, exc_value, traceback) -> None:
    """RQ failure callback: stop retrying what cannot succeed; dead-letter what has no tries left."""
    retryable = getattr(exc_value, "retryable", True)
    if not retryable:
        job.retries_left = 0
    if job.retries_left:
        log.warning("job %s failed (%s); %d tries left", job.id, exc_value, job.retries_left)
        return
    entry = {"job_id": job.id, "type": job.meta.get("type"), "community": job.meta.get("community"),
             "args": list(job.args), "error": f"{exc_type.__name__}: {exc_value}", "retryable": retryable,
             "failed_at": time.time()}
    connection.lpush(DLQ_KEY, json.dumps(entry, default=str))
    log.error("job %s dead-lettered: %s", job.id, entry["error"])


def untrusted(job: Job) -> str | None:
    """Why a job is not one Arrakis queued (None when it is): its function, its callbacks and its
    webhooks must be Arrakis's own, and its data must read as JSON."""
    try:
        func = job.func_name
    except Exception:  # noqa: BLE001 - a pickle (an older release) or bytes someone wrote
        return "its data is not JSON (queued by an older release, or written into Redis by hand)"
    if func != JOB_FUNCTION:
        return f"it names {str(func)[:80]!r}, not Arrakis's job function"
    if getattr(job, "_failure_callback_name", None) not in (None, *FAILURE_CALLBACKS):
        return "it names a failure callback that is not Arrakis's"
    if getattr(job, "_success_callback_name", None) is not None or getattr(job, "_stopped_callback_name", None):
        return "it names a callback Arrakis never sets"
    if getattr(job, "webhooks", None):
        return "it names webhooks Arrakis never sets"
    return None


class FairWorker(SimpleWorker):
    """An RQ worker that serves every community's sub-queue in turn, picking up new ones as
    they appear.

    It runs jobs in its own process (no fork per job): a job is one or a few Discord calls, and a
    fork per job cost more than the job -- and would share the parent's database connections
    with each child. Run several worker processes for parallelism.
    """

    WINDOW = 256  # queues looked at per round trip when finding the next one with a job
    PROMOTE_EVERY = 1.0  # seconds between looks for retries whose backoff has passed (at least)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("serializer", SERIALIZER)  # JSON: see SERIALIZER
        super().__init__(*args, **kwargs)

    def work(self, *args: Any, **kwargs: Any) -> bool:
        kwargs["dequeue_strategy"] = DequeueStrategy.ROUND_ROBIN  # fairness is the point of this worker
        return super().work(*args, **kwargs)

    # The next fair job costs the same with 10 or 10,000 communities waiting: the worker keeps
    # its own ring of community queues and a cursor into it; one Lua call looks at the
    # first-contact lane and the next 16 queues from the cursor (then WINDOW at a time) and names
    # the first with a job, which is then taken from that queue alone. Only when every queue is empty does it
    # wait on all of them at once (RQ's BLPOP), which is when nothing is waiting anyway.

    def _ring_state(self) -> None:
        if not hasattr(self, "_ring"):
            self._ring: list[Queue] = [q for q in self.queues if q.name != BASE]
            self._lane = next((q for q in self.queues if q.name == BASE), Queue(BASE, connection=self.connection, serializer=SERIALIZER))
            self._cursor = 0
            self._seen = -1  # how many community queues the set had when last read
            self._promoted_at = 0.0
            self._first_ready = self.connection.register_script(
                "for i, k in ipairs(KEYS) do if redis.call('LLEN', k) > 0 then return i end end return 0")

    def reorder_queues(self, reference_queue: Queue) -> None:
        """Nothing to do: the ring's cursor is the round robin (see :meth:`_next_ready`)."""

    def prepare_job_execution(self, job: Job, remove_from_intermediate_queue: bool = False) -> None:
        """RQ's own, always taking the job off its queue's intermediate list. RQ moves a job taken
        from a single queue to that list (so a worker dying right then loses nothing) and takes
        it off again only when the worker serves one queue; this worker serves many but takes
        each job from the one queue found, so RQ would leave every job on the list (and its
        maintenance would later fail jobs that had finished). In the same pipeline: no extra
        round trip; a job popped from several queues at once is on no such list, and removing
        it is a no-op."""
        super().prepare_job_execution(job, True)

    def _wait_order(self, paused: set[str] = frozenset()) -> list[Queue]:
        """Every queue not paused, the first-contact lane first and the ring from its cursor, for
        RQ's BLPOP."""
        return [self._lane] + [q for q in self._ring[self._cursor:] + self._ring[:self._cursor]
                               if q.name not in paused]

    def _refresh_queues(self) -> None:
        """Pick up community queues made since the last look (the set only grows: SCARD says
        whether to read it), and, at most once a second, put due retries back on their queue."""
        self._ring_state()
        count = self.connection.scard(QUEUES_KEY)
        if count != self._seen:
            names = sorted(n.decode() if isinstance(n, bytes) else n for n in self.connection.smembers(QUEUES_KEY))
            known = {q.name for q in self.queues}
            added = [Queue(n, connection=self.connection, serializer=SERIALIZER) for n in names if n not in known]
            if added:
                self.queues = self.queues + added
                self._ring = self._ring + added
            self._seen = count
        # One worker at a time looks (a short lock), every second up to 2,000 queues and less
        # often past that (10,000 queues: every 5 s), so the look stays a small share of the work.
        every = max(self.PROMOTE_EVERY, len(self._ring) / 2000)
        now = time.monotonic()
        if now - self._promoted_at >= every:
            self._promoted_at = now
            if self.connection.set(keys.PROMOTING, self.name, nx=True, px=int(every * 1000)):
                promote_due(self.connection, [self._lane] + self._ring)

    def _next_ready(self, paused: set[str] = frozenset()) -> Queue | None:
        """The first-contact lane if it has a job, else the next community queue from the cursor
        that has one and is not paused (the cursor moves past it), else None."""
        ring, n = self._ring, len(self._ring)
        looked, size = 0, 16  # the next queue usually has a job: look at a few first, then at more
        while True:
            window = [ring[(self._cursor + k) % n] for k in range(min(size, n - looked))] if n else []
            size = self.WINDOW
            open_ = [q for q in window if q.name not in paused] if paused else window
            found = int(self._first_ready(keys=[self._lane.key] + [q.key for q in open_]))
            if found == 1:
                return self._lane
            if found > 1:
                queue = open_[found - 2]
                self._cursor = (self._cursor + window.index(queue) + 1) % n
                return queue
            looked += len(window)
            if looked >= n:
                return None
            self._cursor = (self._cursor + len(window)) % n

    def _take_ready(self, paused: set[str] = frozenset()):
        """Take the next fair job without waiting (RQ's own dequeue on the one queue found)."""
        while True:
            queue = self._next_ready(paused)
            if queue is None:
                return None
            # RQ's dequeue names every queue of the worker (its process title, its log line):
            # for this one call the worker's queues are the one found, so that costs nothing
            everything, self.queues, self._ordered_queues = self.queues, [queue], [queue]
            try:
                result = super().dequeue_job_and_maintain_ttl(None)
            finally:
                self.queues = everything
            if result is not None:
                return result
            # another worker took it first: look again

    def _paused(self) -> set[str]:
        """Queues paused now (see :meth:`SynthesisQueue.pause`); pauses that ended are removed."""
        pauses = self.connection.hgetall(QUEUE_PAUSES)
        if not pauses:
            return set()
        now, out, ended = time.time(), set(), []
        for name, until in pauses.items():
            name = name.decode() if isinstance(name, bytes) else name
            (out.add(name) if float(until) > now else ended.append(name))
        if ended:
            self.connection.hdel(QUEUE_PAUSES, *ended)
        return out

    def dequeue_job_and_maintain_ttl(self, timeout, max_idle_time=None):
        self._ring_state()
        if timeout is None:  # burst mode: take what is there, else stop
            self._refresh_queues()
            return self._take_ready(self._paused())
        waited = 0
        while True:
            self._refresh_queues()
            paused = self._paused()
            result = self._take_ready(paused)
            if result is not None:
                return result
            self._ordered_queues = self._wait_order(paused)
            result = super().dequeue_job_and_maintain_ttl(1, 1)  # every queue is empty: wait on all
            if result is not None:
                return result
            waited += 1
            if max_idle_time is not None and waited >= max_idle_time:
                return None


class EngineWorker(FairWorker):
    """The worker ``arrakis worker`` runs: a :class:`FairWorker` that holds its own engine and
    hands it to every job it performs (read by :func:`arrakis_engine.synthesis.jobs.run`)."""

    def __init__(self, *args: Any, engine: Engine, after_job: Callable[[Job], None] | None = None, debug: bool = False,
                 **kwargs: Any) -> None:
        """``debug``: log each failing job's traceback (else the one plain line of :func:`on_failure`)."""
        super().__init__(*args, **kwargs)
        self.engine = engine
        self.after_job = after_job
        self.debug = debug

    def subscribe(self) -> None:
        """RQ's own, with the command listener polling every second instead of every 60: with
        redis-py 8 stopping that thread waits for its poll to end, so RQ's 60 made every warm
        shutdown (SIGTERM, Ctrl-C under honcho) take up to a minute."""
        self.log.info("Worker %s: subscribing to channel %s", self.name, self.pubsub_channel_name)
        self.pubsub = self.connection.pubsub()
        self.pubsub.subscribe(**{self.pubsub_channel_name: self.handle_payload})
        self.pubsub_thread = self.pubsub.run_in_thread(
            sleep_time=1, daemon=True, exception_handler=self._pubsub_exception_handler)

    def handle_exception(self, job: Job, *exc_info) -> None:
        """RQ logs every failure with its whole traceback; operators get :func:`on_failure`'s one
        line ("failed (why); N tries left" or "dead-lettered: why") unless the worker runs with
        ``--debug``."""
        if self.debug:
            return super().handle_exception(job, *exc_info)
        for handler in self._exc_handlers:
            if handler(job, *exc_info) is False:
                break

    def perform_job(self, job: Job, queue: Queue) -> bool:
        why = untrusted(job)
        if why is not None:
            # Someone wrote this job into Redis by hand: nothing of it runs (not its function, not
            # its callbacks, not its webhooks); it fails for good and is dead-lettered.
            log.error("job %s refused: %s", job.id, why)
            self.connection.lrem(queue.intermediate_queue_key, 0, job.id)  # as prepare_job_execution would
            self.handle_job_failure(job=job, queue=queue, started_job_registry=queue.started_job_registry,
                                    exc_string=f"refused: {why}")
            self.connection.lpush(DLQ_KEY, json.dumps({
                "job_id": job.id, "type": None, "community": None, "args": [], "retryable": False,
                "error": f"refused: {why}", "failed_at": time.time()}))
            return False
        job.engine = self.engine  # in memory only: never saved with the job
        try:
            return super().perform_job(job, queue)
        finally:
            if self.engine.metrics.enabled:  # (ARRAKIS_METRICS=off: not even the status is looked at)
                self.engine.metrics.job(job.meta.get("type"), job.get_status(refresh=False))  # no round trip
            if self.after_job is not None:
                self.after_job(job)


def outstanding(redis) -> int:
    """Jobs still to run on the synthesis queues: queued, scheduled (a later slice, a retry in
    its backoff) or running in some worker. A job a worker is moving from its wait onto its
    queue is in neither for an instant, so "none" is only said when a second look agrees."""
    left = sum(SynthesisQueue(redis).counts().values())
    if left:
        return left
    time.sleep(0.2)
    return sum(SynthesisQueue(redis).counts().values())


def _queue_names(redis) -> set[str]:
    """The first-contact queue and every community's sub-queue."""
    return {n.decode() if isinstance(n, bytes) else n for n in redis.smembers(QUEUES_KEY)} | {BASE}


def work_until_done(engine, *, timeout: float = 900.0, after_job: Callable[[Job], None] | None = None,
                    poll: float = 0.2) -> None:
    """Serve the synthesis queues in this process until nothing is left to run (what ``arrakis
    demo`` does when no worker is running). Waits out scheduled slices and retries; gives up with
    a clear error after ``timeout`` seconds (whatever is left stays on the queue for a worker)."""
    from ...errors import ArrakisError

    deadline = time.monotonic() + timeout
    while True:
        recover_abandoned(engine.redis)  # a job a dead worker held would otherwise never finish
        worker = EngineWorker([BASE], connection=engine.redis, engine=engine, after_job=after_job)
        worker.work(burst=True, logging_level="WARNING")
        left = outstanding(engine.redis)
        if not left:
            return
        if time.monotonic() > deadline:
            raise ArrakisError(f"{left} job(s) are still on the synthesis queue after {timeout:.0f} s; "
                               "start `arrakis worker` to finish them")
        time.sleep(poll)


def recover_abandoned(redis) -> list[str]:
    """Put back on their queue the jobs whose worker died mid-job (killed, crashed, machine lost).

    A job counts as abandoned when its worker is gone from Redis, or is registered on this host
    with a process that no longer exists. The job resumes where its work was recorded (synthesis
    resumes from the shadow state), so nothing is lost and nothing is done twice.
    """
    import socket

    from rq.registry import StartedJobRegistry

    from ...processes import pid_alive

    host = socket.gethostname()
    names = {n.decode() if isinstance(n, bytes) else n for n in redis.smembers(QUEUES_KEY)} | {BASE}
    recovered = []
    for name in sorted(names):
        queue = Queue(name, connection=redis, serializer=SERIALIZER)
        registry = StartedJobRegistry(queue=queue)
        for job_id in registry.get_job_ids():
            try:
                job = Job.fetch(job_id, connection=redis, serializer=SERIALIZER)
            except Exception:
                continue
            worker = Worker.find_by_key(f"{Worker.redis_worker_namespace_prefix}{job.worker_name}",
                                        connection=redis) if job.worker_name else None
            dead = worker is None or (worker.hostname == host and worker.pid and not pid_alive(worker.pid))
            if not dead:
                continue
            if worker is not None:
                worker.register_death()
            registry.remove_executions(job)
            job.meta["recovered"] = True
            job.save_meta()
            job.set_status(JobStatus.QUEUED)
            queue.enqueue_job(job)
            recovered.append(job.id)
            log.warning("job %s was abandoned by a dead worker; queued again", job.id)
    return recovered
