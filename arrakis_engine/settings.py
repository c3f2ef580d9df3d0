"""Every setting Arrakis reads, read once from the environment (and an optional ``.env``).

Nothing else in the engine reads ``os.environ``. Build a :class:`Settings` with
:meth:`Settings.from_env` at the edge (CLI, bot, console) and pass it down.

| variable | meaning | when unset |
|---|---|---|
| ``DATABASE_URL`` | PostgreSQL as a role that may create roles and tables (migrations) | embedded PostgreSQL in the data folder |
| ``ARRAKIS_APP_DATABASE_URL`` | connection for tenant work (role ``arrakis_app``) | ``DATABASE_URL`` with the user swapped to ``arrakis_app`` and no password |
| ``ARRAKIS_ADMIN_DATABASE_URL`` | connection for platform work (role ``arrakis_admin``) | ``DATABASE_URL`` with the user swapped to ``arrakis_admin`` and no password |
| ``REDIS_URL`` | Redis for sessions, queue and rate limiting | embedded Redis in the data folder |
| ``ARRAKIS_DATA_DIR`` | local state (embedded servers, key file, local stores) | the platform's user-data folder |
| ``RPC_URLS_<CHAIN>`` | comma-separated JSON-RPC endpoints per chain | chain reads off for that chain |
| ``CONFIRMATIONS_<CHAIN>`` | blocks the live watcher stays behind the chain's head | 2 |
| ``SCORE_API_URL``, ``SCORE_API_KEY`` | Score Service | native ranking only |
| ``DISCORD_BOT_TOKEN``, ``DISCORD_API_BASE`` | Discord REST | local sandbox guild |
| ``VAULT_ADDR`` with ``VAULT_ROLE_ID`` + ``VAULT_SECRET_ID`` (AppRole) or ``VAULT_TOKEN``; ``VAULT_TRANSIT_MOUNT`` | Vault/OpenBao Transit signing (mount ``transit``) | local key file in the data folder |
| ``S3_ENDPOINT``, ``S3_ACCESS_KEY``, ``S3_SECRET_KEY``, ``S3_BUCKET`` | manifest shadow store | local folder |
| ``SLACK_BOT_TOKEN``, ``SLACK_API_BASE``, ``ALERT_WEBHOOK_URL`` | notifications | log only |
| ``SLACK_APPROVAL_CHANNEL`` | Slack channel where approval requests are posted (with the bot token) | not posted to Slack |
| ``SLACK_SIGNING_SECRET`` | checks that button presses reaching ``arrakis web`` come from Slack | ``arrakis web`` refuses to start |
| ``DISCORD_APPROVAL_WEBHOOK_URL`` | a Discord webhook where approval requests are posted as embeds | not posted to Discord |
| ``ARRAKIS_PUBLIC_URL`` | where members reach ``arrakis web`` (links, signed messages) | the address ``arrakis web`` serves on (``http://127.0.0.1:PORT``) |
| ``ARRAKIS_LOG_LEVEL`` | logging level | ``INFO`` |
| ``ARRAKIS_RPC_TIMEOUT`` | seconds per JSON-RPC request before trying the next endpoint | ``5`` |
| ``ARRAKIS_DISCORD_RATE`` | Discord's global limit: requests in any one second | ``50`` |
| ``ARRAKIS_DISCORD_HEADROOM`` / ``ARRAKIS_DISCORD_MARGIN_MS`` | requests kept under that limit / extra window length that absorbs grant-to-arrival jitter | ``1`` / ``60`` |
| ``ARRAKIS_RETRY_BACKOFF`` | seconds between a failed job's attempts, comma-separated | ``5,25,125`` |
| ``ARRAKIS_SYNTHESIS_SLICE`` | changes one synthesis job makes before the next community gets a turn | ``5`` |
| ``ARRAKIS_POLICY_BUDGET`` | the monthly cost increase (dollars) above which an infrastructure plan is rejected | ``5000`` |
| ``ARRAKIS_POLICY_PROFILE`` | the policy gate's tables: ``upstream`` (the design's) or ``strict`` | ``upstream`` |
| ``ARRAKIS_PLAN_MAX_BYTES`` / ``_MAX_VALUES`` / ``_MAX_DEPTH`` / ``_MAX_RESOURCES`` / ``_MAX_KINDS`` | the largest plan (or cost) file, JSON values in it, nesting depth, resource count and distinct kinds of change the gate accepts | 32 MiB / 4000000 / 100 / 20000 / 2000 |
| ``ARRAKIS_PLAN_TIME_BUDGET`` | seconds the gate may spend evaluating one plan | ``10`` |
| ``ARRAKIS_EMBEDDED_GRACE`` | seconds the embedded servers stay up after the last command using them ends (0: stop at once; the janitor still stops them) | ``60`` |
| ``ARRAKIS_MAX_STRIP_SHARE`` | share of tier holders a member sync may strip before it asks an operator | ``0.10`` |
| ``ARRAKIS_AUDIT_DIGEST_INTERVAL`` | seconds between the scheduler's signed audit digests (also written at once after a security event) | ``300`` |

``PRIVATE_KEY`` is refused: signing keys live in Vault or in the key file, never in the environment.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Mapping

from .domain.chain import CHAINS
from .errors import ConfigError


POLICY_PROFILES = ("upstream", "strict")  # arrakis_engine.policy.risk.PROFILES (a test checks)
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


@dataclass(frozen=True)
class _Env:
    """Where one setting comes from: its environment variable, and how its text is read.
    ``between``: a number within these bounds (in the variable's unit, divided by ``per``);
    ``read``: a function of the text (None when unset) for a setting with rules of its own;
    ``prefix``: the setting is every variable named ``<name><CHAIN>``, read with ``read``."""

    name: str
    between: tuple[float, float] | None = None
    per: float = 1
    read: Callable[..., Any] | None = None
    prefix: bool = False


def setting(name: str, default: Any = None, *, secret: bool = False, between=None, per: float = 1, read=None,
            prefix: bool = False, factory=None, required: bool = False) -> Any:
    """A field of :class:`Settings` read from the environment variable ``name`` (see :class:`_Env`);
    ``secret``: kept out of ``repr``; ``required``: a Settings built by hand must name it."""
    env = {"env": _Env(name, between, per, read, prefix)}
    if required:
        return field(repr=not secret, metadata=env)
    if factory is not None:
        return field(default_factory=factory, repr=not secret, metadata=env)
    return field(default=default, repr=not secret, metadata=env)


def _urls(name: str, schemes: tuple[str, ...], words: str) -> Callable[[str | None], str | None]:
    def read(raw: str | None) -> str | None:
        if raw and not raw.startswith(schemes):
            raise ConfigError(f"{name} must be {words}")
        return raw
    return read


def _database_url(name: str):
    return _urls(name, ("postgres://", "postgresql://"), "a postgresql:// URL")


def _data_dir(raw: str | None) -> Path:
    if raw is None:
        import platformdirs

        raw = platformdirs.user_data_dir("arrakis", appauthor=False)
    return Path(raw).expanduser()


def _chain(key: str, suffix: str) -> str:
    chain = suffix.lower()
    if chain not in CHAINS:
        raise ConfigError(f"{key} names an unknown chain '{chain}'",
                          hint="supported chains: " + ", ".join(sorted(CHAINS)))
    return chain


def _rpc_urls(found: dict[str, str]) -> dict[str, tuple[str, ...]]:
    rpc_urls: dict[str, tuple[str, ...]] = {}
    for key, raw in found.items():
        chain = _chain(key, key[len("RPC_URLS_"):])
        urls = tuple(u.strip() for u in raw.split(",") if u.strip())
        for url in urls:
            if not url.startswith(("http://", "https://", "ws://", "wss://")):
                raise ConfigError(f"{key} holds an endpoint that is not an http(s) or ws(s) URL")
        if urls:
            rpc_urls[chain] = urls
    return rpc_urls


def _confirmations(found: dict[str, str]) -> dict[str, int]:
    confirmations: dict[str, int] = {}
    for key, raw in found.items():
        chain = _chain(key, key[len("CONFIRMATIONS_"):])
        if not str(raw).strip().isdigit() or int(raw) > 1000:
            raise ConfigError(f"{key} must be a whole number of blocks from 0 to 1000")
        confirmations[chain] = int(raw)
    return confirmations


def _log_level(raw: str | None) -> str:
    level = (raw or "INFO").upper()
    if level not in LOG_LEVELS:
        raise ConfigError(f"ARRAKIS_LOG_LEVEL '{level}' is not a logging level")
    return level


def _log_format(raw: str | None) -> str:
    log_format = (raw or "text").lower()
    if log_format not in ("text", "json"):
        raise ConfigError(f"ARRAKIS_LOG_FORMAT '{log_format}' is not text or json")
    return log_format


def _metrics_port(raw: str | None) -> int | None:
    if raw is not None and (not raw.isdigit() or not 0 < int(raw) < 65536):
        raise ConfigError("ARRAKIS_METRICS_PORT must be a port number from 1 to 65535")
    return int(raw) if raw else None


def _metrics_on(raw: str | None) -> bool:
    value = (raw or "on").strip().lower()
    if value not in ("on", "off"):
        raise ConfigError(f"ARRAKIS_METRICS '{value}' is not on or off")
    return value == "on"


def _rpc_timeout(raw: str | None) -> float:
    try:
        rpc_timeout = float(raw or 5)
    except ValueError:
        raise ConfigError("ARRAKIS_RPC_TIMEOUT must be a number of seconds") from None
    if not 0 < rpc_timeout <= 120:
        raise ConfigError("ARRAKIS_RPC_TIMEOUT must be between 0 and 120 seconds")
    return rpc_timeout


def _retry_backoff(raw: str | None) -> tuple[int, ...]:
    try:
        backoff = tuple(int(x) for x in (raw or "5,25,125").split(","))
    except ValueError:
        raise ConfigError("ARRAKIS_RETRY_BACKOFF must be whole seconds separated by commas") from None
    if not backoff or any(b < 0 for b in backoff):
        raise ConfigError("ARRAKIS_RETRY_BACKOFF must be whole seconds separated by commas")
    return backoff


def _policy_profile(raw: str | None) -> str:
    profile = (raw or "upstream").strip().lower()
    if profile not in POLICY_PROFILES:
        raise ConfigError(f"ARRAKIS_POLICY_PROFILE '{profile[:40]}' is not a policy profile",
                          hint="use " + " or ".join(POLICY_PROFILES))
    return profile


def _public_url(raw: str | None) -> str:
    return (raw or "http://127.0.0.1:8080").rstrip("/")


def _number(name: str, raw: str, low, high) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number") from None
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low} and {high}")
    return value


@dataclass(frozen=True)
class Settings:
    """Configuration for one process, one line per setting: the field, its environment variable
    and how it is read (:func:`setting`). Secrets are kept out of ``repr``."""

    data_dir: Path = setting("ARRAKIS_DATA_DIR", read=_data_dir, required=True)
    database_url: str | None = setting("DATABASE_URL", secret=True, read=_database_url("DATABASE_URL"))
    app_database_url: str | None = setting("ARRAKIS_APP_DATABASE_URL", secret=True,
                                           read=_database_url("ARRAKIS_APP_DATABASE_URL"))
    admin_database_url: str | None = setting("ARRAKIS_ADMIN_DATABASE_URL", secret=True,
                                             read=_database_url("ARRAKIS_ADMIN_DATABASE_URL"))
    redis_url: str | None = setting("REDIS_URL", secret=True, read=_urls(
        "REDIS_URL", ("redis://", "rediss://", "unix://"), "a redis://, rediss:// or unix:// URL"))
    rpc_urls: Mapping[str, tuple[str, ...]] = setting("RPC_URLS_", secret=True, prefix=True, read=_rpc_urls,
                                                      factory=dict)
    # blocks the watcher waits per chain
    confirmations: Mapping[str, int] = setting("CONFIRMATIONS_", prefix=True, read=_confirmations, factory=dict)

    def confirmations_for(self, chain: str) -> int:
        """How many blocks the live watcher stays behind the head of ``chain`` (default 2)."""
        return int(self.confirmations.get(chain, 2))
    score_api_url: str | None = setting("SCORE_API_URL")
    score_api_key: str | None = setting("SCORE_API_KEY", secret=True)
    discord_bot_token: str | None = setting("DISCORD_BOT_TOKEN", secret=True)
    discord_api_base: str | None = setting("DISCORD_API_BASE")
    # The bot's gateway shards, as written (``arrakis bot`` checks them: arrakis_bot/sharding.py)
    discord_shard_count: str | None = setting("DISCORD_SHARD_COUNT")
    discord_shard_ids: str | None = setting("DISCORD_SHARD_IDS")
    vault_addr: str | None = setting("VAULT_ADDR")
    vault_token: str | None = setting("VAULT_TOKEN", secret=True)
    vault_role_id: str | None = setting("VAULT_ROLE_ID", secret=True)
    vault_secret_id: str | None = setting("VAULT_SECRET_ID", secret=True)
    vault_transit_mount: str = setting("VAULT_TRANSIT_MOUNT", "transit")
    s3_endpoint: str | None = setting("S3_ENDPOINT")
    s3_access_key: str | None = setting("S3_ACCESS_KEY", secret=True)
    s3_secret_key: str | None = setting("S3_SECRET_KEY", secret=True)
    s3_bucket: str | None = setting("S3_BUCKET")
    slack_bot_token: str | None = setting("SLACK_BOT_TOKEN", secret=True)
    slack_api_base: str | None = setting("SLACK_API_BASE")
    alert_webhook_url: str | None = setting("ALERT_WEBHOOK_URL", secret=True)
    slack_approval_channel: str | None = setting("SLACK_APPROVAL_CHANNEL")
    slack_signing_secret: str | None = setting("SLACK_SIGNING_SECRET", secret=True)
    discord_approval_webhook_url: str | None = setting("DISCORD_APPROVAL_WEBHOOK_URL", secret=True)
    # where members reach `arrakis web` (the wallet page)
    public_url: str = setting("ARRAKIS_PUBLIC_URL", "http://127.0.0.1:8080", read=_public_url)
    # ARRAKIS_PUBLIC_URL was set (else links follow the port served)
    public_url_explicit: bool = setting("ARRAKIS_PUBLIC_URL", False, read=lambda raw: bool(raw))
    log_level: str = setting("ARRAKIS_LOG_LEVEL", "INFO", read=_log_level)
    # text (for people) or json (one object per line)
    log_format: str = setting("ARRAKIS_LOG_FORMAT", "text", read=_log_format)
    # a long-running process's own /metrics
    metrics_port: int | None = setting("ARRAKIS_METRICS_PORT", read=_metrics_port)
    # seconds between sends of recorded figures to Redis
    metrics_flush: float = setting("ARRAKIS_METRICS_FLUSH", 2.0, between=(0.1, 60))
    # on, or off: this process records nothing (what the benchmarks compare recording with)
    metrics: bool = setting("ARRAKIS_METRICS", True, read=_metrics_on)
    rpc_timeout: float = setting("ARRAKIS_RPC_TIMEOUT", 5.0, read=_rpc_timeout)
    discord_rate: float = setting("ARRAKIS_DISCORD_RATE", 50.0, between=(0.1, 50))
    discord_headroom: int = setting("ARRAKIS_DISCORD_HEADROOM", 1, between=(0, 49))
    discord_margin: float = setting("ARRAKIS_DISCORD_MARGIN_MS", 0.06, between=(0, 1000), per=1000)
    retry_backoff: tuple[int, ...] = setting("ARRAKIS_RETRY_BACKOFF", (5, 25, 125), read=_retry_backoff)

    @property
    def discord_limit(self) -> int:
        """Requests let through in any one pacing window: Discord's limit less the headroom."""
        return max(1, int(self.discord_rate) - self.discord_headroom)

    @property
    def discord_window(self) -> float:
        """The pacing window in seconds: one second plus the margin."""
        return 1.0 + self.discord_margin
    max_strip_share: float = setting("ARRAKIS_MAX_STRIP_SHARE", 0.10, between=(0, 1))
    audit_digest_interval: int = setting("ARRAKIS_AUDIT_DIGEST_INTERVAL", 300, between=(1, 300))
    synthesis_slice: int = setting("ARRAKIS_SYNTHESIS_SLICE", 5, between=(1, 1000))
    policy_budget: float = setting("ARRAKIS_POLICY_BUDGET", 5000.0, between=(0, 10**9))
    policy_profile: str = setting("ARRAKIS_POLICY_PROFILE", "upstream", read=_policy_profile)
    plan_max_bytes: int = setting("ARRAKIS_PLAN_MAX_BYTES", 32 * 1024 * 1024, between=(1024, 2**31))
    plan_max_values: int = setting("ARRAKIS_PLAN_MAX_VALUES", 4_000_000, between=(100, 10**9))
    plan_max_depth: int = setting("ARRAKIS_PLAN_MAX_DEPTH", 100, between=(4, 500))
    plan_max_resources: int = setting("ARRAKIS_PLAN_MAX_RESOURCES", 20_000, between=(1, 10**6))
    plan_max_kinds: int = setting("ARRAKIS_PLAN_MAX_KINDS", 2_000, between=(1, 10**5))
    plan_time_budget: float = setting("ARRAKIS_PLAN_TIME_BUDGET", 10.0, between=(0.1, 3600))
    # seconds the embedded servers outlive their last user
    embedded_grace: float = setting("ARRAKIS_EMBEDDED_GRACE", 60.0, between=(0, 86_400))

    @property
    def embedded_database(self) -> bool:
        return not self.database_url

    @property
    def embedded_redis(self) -> bool:
        return not self.redis_url

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, *, env_file: str | Path | None = ".env") -> "Settings":
        """Read settings from ``environ`` (default ``os.environ``) over an optional ``.env`` file.

        Values in the real environment win over the file. Raises :class:`ConfigError` for a
        refused or malformed setting.
        """
        values: dict[str, str] = {}
        if env_file is not None and Path(env_file).is_file():
            from dotenv import dotenv_values

            values.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
        values.update(os.environ if environ is None else environ)

        if values.get("PRIVATE_KEY"):
            raise ConfigError(
                "PRIVATE_KEY is set in the environment, and Arrakis refuses to start with a raw key there",
                hint="remove it; signing keys live in Vault (VAULT_ADDR) or in the local key file",
            )

        def get(name: str) -> str | None:
            value = values.get(name, "").strip()
            return value or None

        read: dict[str, Any] = {}
        for f in fields(cls):
            env: _Env = f.metadata["env"]
            if env.prefix:
                read[f.name] = env.read({k: v for k, v in values.items() if k.startswith(env.name)})
            elif env.read is not None:
                read[f.name] = env.read(get(env.name))
            elif env.between is not None:
                raw = get(env.name)
                if raw is None:
                    read[f.name] = f.default
                else:
                    value = _number(env.name, raw, *env.between) / env.per
                    read[f.name] = int(value) if f.type == "int" else value
            else:
                read[f.name] = get(env.name) or f.default
        return cls(**read)

    def describe(self) -> dict[str, str]:
        """A secret-free summary for status screens and logs: which services are configured."""
        out: dict[str, str] = {"data_dir": str(self.data_dir)}
        out["database"] = "embedded" if self.embedded_database else "configured"
        out["redis"] = "embedded" if self.embedded_redis else "configured"
        out["chains"] = ",".join(sorted(self.rpc_urls)) or "none"
        for f in fields(self):
            if f.name.endswith(("_url", "_base", "_addr", "_endpoint")) and f.name not in {
                "database_url", "app_database_url", "admin_database_url", "redis_url", "alert_webhook_url"
            }:
                out[f.name] = "configured" if getattr(self, f.name) else "off"
        return out
