"""Every Redis key and every queue job key the engine uses, built in one place.

Redis keys all start with ``arrakis:``; a reader of ``redis-cli --scan`` finds here what each
one holds. Job keys are the queue's idempotency keys: the same work asked for twice gets the
same key, so it is queued once.
"""

from __future__ import annotations

import uuid

Id = uuid.UUID | str

# --- Redis: Discord pacing and freezing -------------------------------------------------------

def bucket(name: str) -> str:
    """Hash: the global token bucket (tokens, refill time, counters) and its per-second history."""
    return f"arrakis:bucket:{name}"


def route(route_name: str) -> str:
    """Hash: one Discord route's bucket as its X-RateLimit-* headers last described it."""
    return f"arrakis:route:{route_name}"


def route_log(route_key: str) -> str:
    """Sorted set: our sends on one Discord route (by Redis time) within its last window, shared
    by every worker; ``route_key`` is the route's hash key (:func:`route`)."""
    return f"{route_key}:sent"


DISCORD_GLOBAL_PAUSE = "arrakis:discord:global_pause"  # string with a TTL: every worker waits it out


def discord_invalid(window: int) -> str:
    """Counter: invalid (401/403/429) Discord requests in one 10-minute window."""
    return f"arrakis:discord:invalid:{window}"


# Hash: the cache of the freezes PostgreSQL holds (table ``freezes``): '@gen' (the database
# generation it was built from), '@count' (how many flags follow), then one field per frozen scope,
# 'global' | 'community:<id>' | 'user:<id>' -> reason. Missing or not adding up = closed (see
# synthesis/freeze.py).
FREEZE_FLAGS = "arrakis:freeze:flags"


FREEZE_WAITING = "arrakis:freeze:waiting"  # hash: caller token -> what it waits for, since when


# --- Redis: synthesis queue ------------------------------------------------------------------

SYNTHESIS_QUEUES = "arrakis:synthesis:queues"  # set: names of the per-community sub-queues
# queue name -> time (epoch seconds) until which workers leave it alone: its next job waits on
# its guild's member bucket, so serving it sooner would only put the job back again
QUEUE_PAUSES = "arrakis:synthesis:paused"


def live_line(community_id: Id) -> str:
    """String: until when the turns at a community's guild member route are given out to live
    member updates waiting for it (unix seconds; expires when nobody waits)."""
    return f"arrakis:synthesis:line:{community_id}"


def live_waiting(community_id: Id) -> str:
    """Sorted set: live member updates of a community on their way (job id -> until when the
    mark holds, in case the job is lost): its bulk updates leave the guild's member route to them."""
    return f"arrakis:synthesis:live:{community_id}"
DEAD_LETTERS = "arrakis:dlq"  # list: jobs that failed for good, with their error
PROMOTING = "arrakis:synthesis:promoting"  # string (short TTL): the worker looking for due retries now


def synthesis_lock(community_id: Id) -> str:
    """String: the owner token of the community's running synthesis (TTL renewed per step)."""
    return f"arrakis:synthesis-lock:{community_id}"


# --- Redis: eligibility, wallets, drift ----------------------------------------------------------

def score(address: str) -> str:
    """String: a cached Score Service answer for one address, with when it was stored."""
    return f"arrakis:score:{address}"


SCORE_LAST_STORED = "arrakis:score:last_stored"


def unknown_members(community_id: Id) -> str:
    """String (JSON list): members the last eligibility sync could not read."""
    return f"arrakis:eligibility:unknown:{community_id}"


def siwe_nonce(nonce: str) -> str:
    """String: the one-time Sign-In with Ethereum challenge for a nonce."""
    return f"arrakis:siwe:{nonce}"


def verify_link(token: str) -> str:
    """String (JSON, 15-minute TTL): what a one-time /verify link names (community, guild, member)."""
    return f"arrakis:verify:link:{token}"


def verify_link_busy(token: str) -> str:
    """String (60 s TTL): a completion of this /verify link is under way (one at a time)."""
    return f"{verify_link(token)}:busy"


def member_sync_lock(community_id: Id) -> str:
    """Lock: one member-asked sync of a community at a time (/arrakis sync, refresh, /verify)."""
    return f"arrakis:members:sync:{community_id}"


def member_refresh(community_id: Id, discord_id: str) -> str:
    """String (TTL 5 min): a member asked for a refresh lately; the next waits it out."""
    return f"arrakis:members:refresh:{community_id}:{discord_id}"


def slack_seen(signature: str) -> str:
    """String (TTL): a Slack request signature already taken (a replay is refused)."""
    return f"arrakis:slack:seen:{signature}"


WEB_PUBLIC_URL = "arrakis:web:public_url"  # string: where `arrakis web` serves, when ARRAKIS_PUBLIC_URL is unset
DRIFT_CHECKS = "arrakis:drift:last"  # hash: community id -> the last drift check (JSON)


# --- Redis: wizard ----------------------------------------------------------------------------

def wizard_session(session_id: str) -> str:
    return f"arrakis:wizard:session:{session_id}"


def wizard_active(guild_id: str, user_id: str) -> str:
    """String: the session id a user has open in a guild (one at a time)."""
    return f"arrakis:wizard:active:{guild_id}:{user_id}"


# --- queue job keys ---------------------------------------------------------------------------

def synthesis_slice(community_id: Id, version: int, part: int) -> str:
    """One slice of the synthesis of one manifest version."""
    return f"{community_id}-v{version}-p{part}"


def member_roles(community_id: Id, discord_id: str, seq: int) -> str:
    """The delivery of one decision about a member's roles (its number, per member): queued once,
    however often it is planned; a later decision is a new key, even back to an earlier list."""
    return f"{community_id}:{discord_id}:d{int(seq)}"


# --- Redis: MFA, kill switch, signing ------------------------------------------------------------

def mfa_last_step(operator: str) -> str:
    """String: a copy of the newest TOTP time step accepted for an operator. PostgreSQL
    (``operators.totp_last_step``) decides; this copy is for reading only."""
    return f"arrakis:mfa:step:{operator}"


KILLSWITCH_DRILLS = "arrakis:killswitch:drills"  # list: past drill reports (JSON), newest first


def watcher_status(chain: str) -> str:
    """Hash: one chain watcher's last step (head, processed block, when, endpoints' heads) and
    how many changes the safety-net sync found that it had missed."""
    return f"arrakis:watcher:{chain}"


def signing_cutoff(key_name: str) -> str:
    """String: signing with this key (or, for 'all', any key) is cut off by the kill switch."""
    return f"arrakis:signing:cutoff:{key_name}"


def vault_accessors(key_name: str) -> str:
    """Set: accessors of the short-lived Vault tokens minted to sign with one key (revocable)."""
    return f"arrakis:vault:accessors:{key_name}"


def wizard_index(kind: str, value: str = "") -> str:
    """Sorted set: wizard session ids by guild ('guild', id), by user ('user', id) or all ('all')."""
    return f"arrakis:wizard:index:{kind}:{value}" if value else f"arrakis:wizard:index:{kind}"


# --- Redis: shared metrics (written by every process's flusher, read by `arrakis web`) ----------

METRICS_COUNTERS = "arrakis:metrics:counters"  # hash: "family\tlabels JSON" -> total since the start
METRICS_HISTOGRAMS = "arrakis:metrics:histograms"  # hash: "family\tlabels JSON\tbucket|sum|count" -> total
METRICS_GAUGES = "arrakis:metrics:gauges"  # hash: "family\tlabels JSON\tprocess id" -> JSON [value, time]


def metrics_hour(hour: int) -> str:
    """Hash: counter increments in one hour (hours since the epoch), kept 25 h: the last 24 h."""
    return f"arrakis:metrics:hour:{hour}"
