"""What Arrakis measures: the metric families (names and labels are a contract, listed in the
README's "Monitoring" section), and the recorder every process writes to.

Recording costs no round trip. :class:`Metrics` keeps counts and observations in memory; a
flusher (:class:`~arrakis_engine.storage.metrics_store.MetricsFlusher`, started by bootstrap)
sends what piled up to Redis in one pipeline every couple of seconds and when the engine closes,
so a Discord call or a job adds a dictionary update, not a request. ``arrakis web`` reads the
shared figures back for its ``/metrics``; a process started with ``--metrics-port`` also serves
its own (what it recorded since it started).

Labels are bounded: a route label is the route's template (``/guilds/{guild_id}/roles``), never
an id, and any label value that still looks like an id (a long number, a wallet, a UUID) is
recorded as ``other``. Per-community figures stay in ``arrakis status`` and the console.

This module does no I/O (it is imported by use cases).
"""

from __future__ import annotations

import re
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Iterable, Mapping

COUNTER, HISTOGRAM, GAUGE = "counter", "histogram", "gauge"
# Where a family's figures come from: recorded by the processes (kept in Redis), or read by the
# exporter at scrape time from the platform's state (queue, approvals, kill switch, watchers).
RECORDED, SCRAPED = "recorded", "scraped"

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
LIVE_SYNC_BUCKETS = (0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0)
BOT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0)


@dataclass(frozen=True)
class Family:
    name: str
    kind: str
    labels: tuple[str, ...]
    help: str
    source: str = RECORDED
    buckets: tuple[float, ...] = ()
    # Label sets always exposed (0 until counted), so that the first increment shows as an
    # increase to Prometheus (a series that starts at 1 has no increase to show).
    known: tuple[tuple[str, ...], ...] = ()


HARD_BLOCK_RULES = ("HARD_BLOCK_DELETE_PV", "HARD_BLOCK_DELETE_DATABASE", "HARD_BLOCK_DELETE_PROD_NAMESPACE",
                    "HARD_BLOCK_DELETE_VAULT_POLICY", "HARD_BLOCK_DISABLE_RLS")

FAMILIES: dict[str, Family] = {f.name: f for f in (
    Family("arrakis_discord_requests_total", COUNTER, ("route", "status"),
           "Discord REST requests sent, by route template and HTTP status"),
    Family("arrakis_discord_429_total", COUNTER, ("scope",),
           "429 answers from Discord, by X-RateLimit-Scope (user, global, shared)",
           known=(("user",), ("global",), ("shared",))),
    Family("arrakis_discord_bucket_wait_seconds", HISTOGRAM, (),
           "Time a Discord request waited at the pacing gate before it was sent", buckets=LATENCY_BUCKETS),
    Family("arrakis_jobs_total", COUNTER, ("type", "outcome"),
           "Queue jobs run, by job type and outcome (ok, retried, dead_lettered)"),
    Family("arrakis_queue_depth", GAUGE, ("priority",),
           "Jobs waiting on the synthesis queues: first (the first-contact lane), normal (community "
           "queues), scheduled (retries in their backoff and later slices)", source=SCRAPED),
    Family("arrakis_dead_letters", GAUGE, (), "Jobs on the dead-letter list", source=SCRAPED),
    Family("arrakis_chain_reads_total", COUNTER, ("chain", "outcome"),
           "Wallet balance reads from a chain, by outcome (ok, unknown: the read failed)"),
    Family("arrakis_score_reads_total", COUNTER, ("source",),
           "Score Service lookups by where the answer came from (score; cached, native_degraded, degraded: "
           "the service did not answer)", known=(("score",), ("cached",), ("native_degraded",), ("degraded",))),
    Family("arrakis_score_breaker_state", GAUGE, (),
           "The Score Service circuit breaker, worst over the processes: 0 closed, 1 half-open, 2 open"),
    Family("arrakis_watcher_lag_blocks", GAUGE, ("chain",),
           "Blocks between a chain's head and the last block its watcher processed", source=SCRAPED),
    Family("arrakis_live_sync_latency_seconds", HISTOGRAM, (),
           "From a block being mined to the role change it caused being sent to Discord",
           buckets=LIVE_SYNC_BUCKETS),
    Family("arrakis_wizard_sessions_total", COUNTER, ("step", "event"),
           "Onboarding wizard sessions: started, completed, abandoned, failed, at the step it happened"),
    Family("arrakis_signing_operations_total", COUNTER, ("backend", "outcome"),
           "Signatures made, by signer (vault, local) and outcome (ok, failed, refused)",
           known=tuple((b, o) for b in ("vault", "local") for o in ("ok", "failed", "refused"))),
    Family("arrakis_vault_configured", GAUGE, (), "1 when VAULT_ADDR is set (signing must go through Vault)",
           source=SCRAPED),
    Family("arrakis_policy_decisions_total", COUNTER, ("decision",),
           "Policy pre-gate decisions over infrastructure plans (approve, review, reject)"),
    Family("arrakis_policy_hard_blocks_total", COUNTER, ("rule",), "Hard-block findings, by rule",
           known=tuple((r,) for r in HARD_BLOCK_RULES)),
    Family("arrakis_policy_hard_blocks_passed_total", COUNTER, ("rule",),
           "Hard-block findings whose plan was not rejected or was approved by a person (must stay 0)",
           known=tuple((r,) for r in HARD_BLOCK_RULES + ("unknown",))),
    Family("arrakis_approvals_pending", GAUGE, (), "Approval requests waiting for a person", source=SCRAPED),
    Family("arrakis_approvals_expiring_soon", GAUGE, (),
           "Pending approval requests that expire within the hour", source=SCRAPED),
    Family("arrakis_killswitch_active", GAUGE, ("scope",),
           "Kill switch entries in force, by scope (global, community, user)", source=SCRAPED),
    Family("arrakis_mfa_failures_total", COUNTER, (), "Refused second-factor codes"),
    Family("arrakis_bot_interactions_total", COUNTER, ("command", "outcome"),
           "Slash commands, buttons and forms the bot answered, by command and outcome (ok, error)"),
    Family("arrakis_bot_response_seconds", HISTOGRAM, (),
           "From Discord creating an interaction to the bot finishing its answer", buckets=BOT_BUCKETS),
    Family("arrakis_gateway_reconnects_total", COUNTER, ("shard",), "Gateway sessions the bot had to resume or redo"),
    Family("arrakis_gateway_connected", GAUGE, ("shard",),
           "1 while the bot's gateway session for a shard is up; 0 when it is down or the bot stopped reporting"),
)}

_ID_LIKE = re.compile(r"\d{5,}|0x[0-9a-fA-F]{6,}|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-|[0-9a-fA-F]{24,}")
# Path segments after which an id follows, and the name its template gives it.
_ID_NAMES = {"guilds": "guild_id", "members": "user_id", "roles": "role_id", "channels": "channel_id",
             "messages": "message_id", "users": "user_id", "webhooks": "webhook_id", "interactions": "interaction_id",
             "applications": "application_id", "commands": "command_id"}
_SEGMENT = re.compile(r"^@?[a-z][a-z_-]{0,30}$")  # a route's own words (guilds, members, @original)


def route_template(path: str) -> str:
    """``/guilds/123/members/456`` -> ``/guilds/{guild_id}/members/{user_id}``: the label a route
    is counted under (no ids, so the number of series stays bounded)."""
    parts = path.split("?", 1)[0].strip("/").split("/")
    out = []
    for i, part in enumerate(parts):
        before = parts[i - 1] if i else ""
        if before in _ID_NAMES and not part.startswith("@"):
            out.append("{" + _ID_NAMES[before] + "}")
        elif before == "{webhook_id}" or (i > 1 and parts[i - 2] == "webhooks"):
            out.append("{webhook_token}")
        elif _SEGMENT.match(part):
            out.append(part)
        else:
            out.append("{id}")
    return "/" + "/".join(out)


def bounded(value) -> str:
    """A label value with no member, wallet or community id in it (those become ``other``)."""
    text = str(value)[:64]
    return "other" if _ID_LIKE.search(text) else text


BREAKER_STATES = {"closed": 0, "half-open": 1, "half_open": 1, "open": 2}


def rate_limit_scope(headers: Mapping[str, str], body_global: bool = False) -> str:
    scope = (headers.get("X-RateLimit-Scope") or "").lower()
    if scope in ("user", "global", "shared"):
        return scope
    return "global" if body_global or headers.get("X-RateLimit-Global") == "true" else "user"


@dataclass
class Batch:
    """What piled up since the last flush: counter increments, histogram observations (per-bucket
    counts, sum, count) and the latest value of each gauge this process reports."""

    counters: dict = field(default_factory=dict)  # (family, labels) -> amount
    histograms: dict = field(default_factory=dict)  # (family, labels) -> [bucket counts..., sum, count]
    gauges: dict = field(default_factory=dict)  # (family, labels) -> value

    def __bool__(self) -> bool:
        return bool(self.counters or self.histograms)


class Metrics:
    """The recorder one process writes to (thread-safe, memory only). ``drain()`` hands the
    flusher what piled up; ``totals()`` is what this process recorded since it started."""

    enabled = True

    def __init__(self, process: str = "arrakis") -> None:
        self.process = process
        self._lock = threading.Lock()
        self._pending = Batch()
        self._counters: dict = defaultdict(float)
        self._histograms: dict = {}
        self._gauges: dict = {}

    # --- the three primitives --------------------------------------------------------------------

    def inc(self, family: str, *labels, amount: float = 1.0) -> None:
        key = (family, tuple(bounded(v) for v in labels))
        with self._lock:
            pending = self._pending.counters
            pending[key] = pending.get(key, 0.0) + amount
            self._counters[key] += amount

    def observe(self, family: str, value: float, *labels) -> None:
        buckets = FAMILIES[family].buckets
        key = (family, tuple(bounded(v) for v in labels))
        index = next((i for i, b in enumerate(buckets) if value <= b), len(buckets))
        with self._lock:
            for store in (self._pending.histograms, self._histograms):
                h = store.get(key)
                if h is None:
                    h = store[key] = [0] * (len(buckets) + 1) + [0.0, 0]
                h[index] += 1
                h[-2] += value
                h[-1] += 1

    def set(self, family: str, value: float, *labels) -> None:
        key = (family, tuple(bounded(v) for v in labels))
        with self._lock:
            self._gauges[key] = float(value)

    def drain(self) -> Batch:
        with self._lock:
            batch, self._pending = self._pending, Batch()
            batch.gauges = dict(self._gauges)
        return batch

    def totals(self) -> Batch:
        with self._lock:
            return Batch(dict(self._counters), {k: list(v) for k, v in self._histograms.items()}, dict(self._gauges))

    # --- what the hooks call (one line each where they are) --------------------------------------

    def discord(self, method: str, path: str, status: int, headers: Mapping[str, str] = None) -> None:
        """One Discord REST answer (a 429 is also counted by its scope)."""
        self.inc("arrakis_discord_requests_total", route_template(path), str(status))
        if status == 429:
            self.inc("arrakis_discord_429_total", rate_limit_scope(headers or {}))

    def bucket_wait(self, seconds: float) -> None:
        self.observe("arrakis_discord_bucket_wait_seconds", max(0.0, seconds))

    def job(self, job_type: str | None, status: str | None) -> None:
        """A job run ended: RQ's status after it (finished, scheduled/queued for a retry, failed)."""
        outcome = {"finished": "ok", "scheduled": "retried", "queued": "retried", "deferred": "retried",
                   "failed": "dead_lettered"}.get(str(status or "").lower().rsplit(".", 1)[-1], "failed")
        self.inc("arrakis_jobs_total", job_type or "unknown", outcome)

    def chain_reads(self, chain: str, values: Iterable, unknown: object) -> None:
        ok = bad = 0
        for v in values:
            if v is unknown:
                bad += 1
            else:
                ok += 1
        if ok:
            self.inc("arrakis_chain_reads_total", chain, "ok", amount=ok)
        if bad:
            self.inc("arrakis_chain_reads_total", chain, "unknown", amount=bad)

    def score_reads(self, answers: Iterable, breaker_state: str | None = None) -> None:
        """Score lookups by source (the orchestrator's ``(score, source)`` pairs), and the breaker."""
        counts: dict[str, int] = {}
        for _, source in answers:
            counts[source] = counts.get(source, 0) + 1
        for source, n in counts.items():
            self.inc("arrakis_score_reads_total", source, amount=n)
        if breaker_state is not None:
            self.set("arrakis_score_breaker_state", BREAKER_STATES.get(breaker_state, 2))

    def wizard(self, step: str, event: str) -> None:
        self.inc("arrakis_wizard_sessions_total", step, event)

    def signing(self, backend: str, outcome: str) -> None:
        """``backend``: the signer's kind ("Vault Transit" counts as vault, the key file as local)."""
        kind = str(backend).lower()
        label = "vault" if "vault" in kind else "local" if "local" in kind else kind
        self.inc("arrakis_signing_operations_total", label, outcome)

    def policy(self, decision: str, hard_blocks: Iterable[Mapping]) -> None:
        """A pre-gate decision; every hard block it found; any of them not rejected is a bypass."""
        self.inc("arrakis_policy_decisions_total", decision)
        for block in hard_blocks:
            self.inc("arrakis_policy_hard_blocks_total", block.get("id", "unknown"))
            if decision != "reject":
                self.inc("arrakis_policy_hard_blocks_passed_total", block.get("id", "unknown"))

    def approval(self, status: str, gate_decision: str, reasons: Iterable[str] = ()) -> None:
        """A request was answered. Approving one whose plan the gate rejected or found a hard block
        in (no rule lets that happen: only a request written around the engine could) counts as a
        hard block passed."""
        rules = {str(r).split(":", 1)[0] for r in reasons or () if str(r).startswith("HARD_BLOCK_")}
        if status != "approved" or not (rules or gate_decision == "reject"):
            return
        for rule in sorted(rules or {"unknown"}):
            self.inc("arrakis_policy_hard_blocks_passed_total", rule)

    def mfa_failure(self) -> None:
        self.inc("arrakis_mfa_failures_total")

    def bot(self, command: str, outcome: str, seconds: float | None) -> None:
        self.inc("arrakis_bot_interactions_total", command_label(command), outcome)
        if seconds is not None:
            self.observe("arrakis_bot_response_seconds", max(0.0, seconds))

    def live_sync(self, mined_at: float | None, now: float | None = None) -> None:
        if mined_at:
            self.observe("arrakis_live_sync_latency_seconds", max(0.0, (now or time.time()) - float(mined_at)))


class NullMetrics(Metrics):
    """Records nothing: the default of a class that bootstrap did not hand a recorder."""

    enabled = False

    def inc(self, family: str, *labels, amount: float = 1.0) -> None:
        pass

    def observe(self, family: str, value: float, *labels) -> None:
        pass

    def set(self, family: str, value: float, *labels) -> None:
        pass

    def _nothing(self, *args, **kwargs) -> None:
        pass

    # the hooks too (no label work at all: what ARRAKIS_METRICS=off costs is nothing)
    discord = bucket_wait = job = chain_reads = score_reads = wizard = signing = policy = approval = _nothing
    mfa_failure = bot = live_sync = _nothing


NULL_METRICS = NullMetrics("none")

_COMMAND = re.compile(r"[^a-z0-9_ -]")


def command_label(name: str) -> str:
    """A bot command's label: its name (``arrakis status``), or a component's prefix (``wiz``)."""
    text = _COMMAND.sub("", str(name or "unknown").lower().split(":", 1)[0])[:40].strip()
    return text or "unknown"


# --- the seed's success metrics over a window -------------------------------------------------

@dataclass(frozen=True)
class SuccessMetric:
    name: str
    value: float | None  # None: nothing to measure yet (or not applicable)
    target: str
    met: bool | None
    detail: str

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def success_metrics(counts: Mapping[tuple[str, tuple], float], *, vault_configured: bool,
                    hours: int = 24) -> list[SuccessMetric]:
    """The five figures the platform is judged by, from counter increments over the last
    ``hours`` (``(family, labels) -> amount``)."""
    def total(family: str, **where) -> float:
        names = FAMILIES[family].labels
        return sum(v for (f, labels), v in counts.items() if f == family
                   and all(dict(zip(names, labels)).get(k) in (w if isinstance(w, tuple) else (w,))
                           for k, w in where.items()))

    span = f"last {hours} h"
    out = []
    reads = total("arrakis_score_reads_total")
    degraded = reads - total("arrakis_score_reads_total", source="score")
    share = degraded / reads if reads else None
    out.append(SuccessMetric("Score Service degraded", share, "< 1 %", None if share is None else share < 0.01,
                             f"{degraded:.0f} of {reads:.0f} lookups not fresh ({span})" if reads
                             else f"no Score Service lookups ({span})"))
    limited = total("arrakis_discord_429_total")
    out.append(SuccessMetric("Discord 429s", limited, "0", limited == 0,
                             f"{limited:.0f} in {total('arrakis_discord_requests_total'):.0f} requests ({span})"))
    started = total("arrakis_wizard_sessions_total", event="started")
    completed = total("arrakis_wizard_sessions_total", event="completed")
    rate = completed / started if started else None
    out.append(SuccessMetric("wizard completion", rate, "> 80 %", None if rate is None else rate > 0.8,
                             f"{completed:.0f} of {started:.0f} sessions completed ({span})" if started
                             else f"no wizard sessions ({span})"))
    signed = total("arrakis_signing_operations_total", outcome="ok")
    vault = total("arrakis_signing_operations_total", outcome="ok", backend="vault")
    if vault_configured:
        via = vault / signed if signed else None
        out.append(SuccessMetric("signing via Vault", via, "100 %", None if via is None else vault == signed,
                                 f"{vault:.0f} of {signed:.0f} signatures by Vault ({span})" if signed
                                 else f"nothing signed ({span})"))
    else:
        out.append(SuccessMetric("signing via Vault", None, "100 %", None,
                                 f"Vault is not configured: {signed:.0f} signature(s) by the local key file ({span})"))
    blocks = total("arrakis_policy_hard_blocks_total")
    passed = total("arrakis_policy_hard_blocks_passed_total")
    held = (blocks - passed) / blocks if blocks else None
    out.append(SuccessMetric("dangerous operations blocked", held, "100 %", passed == 0,
                             f"{blocks - passed:.0f} of {blocks:.0f} hard-block findings stopped ({span})" if blocks
                             else f"no dangerous operation attempted ({span})"))
    return out


def success_lines(metrics: Iterable[SuccessMetric], *, detail: bool = True) -> list[str]:
    """One line per success metric: name, value, target, met or not, and (``detail``) what it counts."""
    out = []
    for m in metrics:
        if m.value is None:
            value = "-"
        elif m.name == "Discord 429s":
            value = f"{m.value:.0f}"
        else:
            value = f"{m.value:.1%}"
        verdict = "met" if m.met else "NOT MET" if m.met is not None else "no data"
        out.append(f"{m.name:<29} {value:>7}  target {m.target:<6} {verdict:<8} {m.detail if detail else ''}".rstrip())
    return out
