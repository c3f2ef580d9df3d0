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
from typing import Mapping

from .errors import ConfigError

CHAINS: dict[str, int] = {
    "berachain": 80094,
    "ethereum": 1,
    "arbitrum": 42161,
    "base": 8453,
    "polygon": 137,
    "optimism": 10,
    "avalanche": 43114,
}

_SECRET = {"repr": False}
POLICY_PROFILES = ("upstream", "strict")  # arrakis_engine.policy.risk.PROFILES (a test checks)


@dataclass(frozen=True)
class Settings:
    """Configuration for one process. Secrets are kept out of ``repr``."""

    data_dir: Path
    database_url: str | None = field(default=None, **_SECRET)
    app_database_url: str | None = field(default=None, **_SECRET)
    admin_database_url: str | None = field(default=None, **_SECRET)
    redis_url: str | None = field(default=None, **_SECRET)
    rpc_urls: Mapping[str, tuple[str, ...]] = field(default_factory=dict, **_SECRET)
    confirmations: Mapping[str, int] = field(default_factory=dict)  # blocks the watcher waits per chain

    def confirmations_for(self, chain: str) -> int:
        """How many blocks the live watcher stays behind the head of ``chain`` (default 2)."""
        return int(self.confirmations.get(chain, 2))
    score_api_url: str | None = None
    score_api_key: str | None = field(default=None, **_SECRET)
    discord_bot_token: str | None = field(default=None, **_SECRET)
    discord_api_base: str | None = None
    vault_addr: str | None = None
    vault_token: str | None = field(default=None, **_SECRET)
    vault_role_id: str | None = field(default=None, **_SECRET)
    vault_secret_id: str | None = field(default=None, **_SECRET)
    vault_transit_mount: str = "transit"
    s3_endpoint: str | None = None
    s3_access_key: str | None = field(default=None, **_SECRET)
    s3_secret_key: str | None = field(default=None, **_SECRET)
    s3_bucket: str | None = None
    slack_bot_token: str | None = field(default=None, **_SECRET)
    slack_api_base: str | None = None
    alert_webhook_url: str | None = field(default=None, **_SECRET)
    slack_approval_channel: str | None = None
    slack_signing_secret: str | None = field(default=None, **_SECRET)
    discord_approval_webhook_url: str | None = field(default=None, **_SECRET)
    public_url: str = "http://127.0.0.1:8080"  # where members reach `arrakis web` (the wallet page)
    public_url_explicit: bool = False  # ARRAKIS_PUBLIC_URL was set (else links follow the port served)
    log_level: str = "INFO"
    log_format: str = "text"  # ARRAKIS_LOG_FORMAT: text (for people) or json (one object per line)
    metrics_port: int | None = None  # ARRAKIS_METRICS_PORT: a long-running process's own /metrics
    metrics_flush: float = 2.0  # ARRAKIS_METRICS_FLUSH: seconds between sends of recorded figures to Redis
    metrics: bool = True  # ARRAKIS_METRICS: on (default) or off (this process records nothing)
    rpc_timeout: float = 5.0
    discord_rate: float = 50.0
    discord_headroom: int = 1
    discord_margin: float = 0.06
    retry_backoff: tuple[int, ...] = (5, 25, 125)

    @property
    def discord_limit(self) -> int:
        """Requests let through in any one pacing window: Discord's limit less the headroom."""
        return max(1, int(self.discord_rate) - self.discord_headroom)

    @property
    def discord_window(self) -> float:
        """The pacing window in seconds: one second plus the margin."""
        return 1.0 + self.discord_margin
    max_strip_share: float = 0.10
    audit_digest_interval: int = 300
    synthesis_slice: int = 5
    policy_budget: float = 5000.0
    policy_profile: str = "upstream"
    plan_max_bytes: int = 32 * 1024 * 1024
    plan_max_values: int = 4_000_000
    plan_max_depth: int = 100
    plan_max_resources: int = 20_000
    plan_max_kinds: int = 2_000
    plan_time_budget: float = 10.0
    embedded_grace: float = 60.0  # seconds the embedded servers outlive their last user

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

        data_dir = get("ARRAKIS_DATA_DIR")
        if data_dir is None:
            import platformdirs

            data_dir = platformdirs.user_data_dir("arrakis", appauthor=False)

        rpc_urls: dict[str, tuple[str, ...]] = {}
        for key, raw in values.items():
            if not key.startswith("RPC_URLS_"):
                continue
            chain = key[len("RPC_URLS_"):].lower()
            if chain not in CHAINS:
                raise ConfigError(
                    f"{key} names an unknown chain '{chain}'",
                    hint="supported chains: " + ", ".join(sorted(CHAINS)),
                )
            urls = tuple(u.strip() for u in raw.split(",") if u.strip())
            for url in urls:
                if not url.startswith(("http://", "https://", "ws://", "wss://")):
                    raise ConfigError(f"{key} holds an endpoint that is not an http(s) or ws(s) URL")
            if urls:
                rpc_urls[chain] = urls
        confirmations: dict[str, int] = {}
        for key, raw in values.items():
            if key.startswith("CONFIRMATIONS_"):
                chain = key[len("CONFIRMATIONS_"):].lower()
                if chain not in CHAINS:
                    raise ConfigError(f"{key} names an unknown chain '{chain}'",
                                      hint="supported chains: " + ", ".join(sorted(CHAINS)))
                if not str(raw).strip().isdigit() or int(raw) > 1000:
                    raise ConfigError(f"{key} must be a whole number of blocks from 0 to 1000")
                confirmations[chain] = int(raw)

        for name in ("DATABASE_URL", "ARRAKIS_APP_DATABASE_URL", "ARRAKIS_ADMIN_DATABASE_URL"):
            url = get(name)
            if url and not url.startswith(("postgres://", "postgresql://")):
                raise ConfigError(f"{name} must be a postgresql:// URL")
        redis_url = get("REDIS_URL")
        if redis_url and not redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise ConfigError("REDIS_URL must be a redis://, rediss:// or unix:// URL")

        level = (get("ARRAKIS_LOG_LEVEL") or "INFO").upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ConfigError(f"ARRAKIS_LOG_LEVEL '{level}' is not a logging level")

        log_format = (get("ARRAKIS_LOG_FORMAT") or "text").lower()
        if log_format not in ("text", "json"):
            raise ConfigError(f"ARRAKIS_LOG_FORMAT '{log_format}' is not text or json")
        metrics_on = (get("ARRAKIS_METRICS") or "on").strip().lower()
        if metrics_on not in ("on", "off"):
            raise ConfigError(f"ARRAKIS_METRICS '{metrics_on}' is not on or off")
        metrics_port = get("ARRAKIS_METRICS_PORT")
        if metrics_port is not None and (not metrics_port.isdigit() or not 0 < int(metrics_port) < 65536):
            raise ConfigError("ARRAKIS_METRICS_PORT must be a port number from 1 to 65535")

        try:
            rpc_timeout = float(get("ARRAKIS_RPC_TIMEOUT") or 5)
        except ValueError:
            raise ConfigError("ARRAKIS_RPC_TIMEOUT must be a number of seconds") from None
        if not 0 < rpc_timeout <= 120:
            raise ConfigError("ARRAKIS_RPC_TIMEOUT must be between 0 and 120 seconds")

        def number(name: str, default: float, low: float, high: float) -> float:
            try:
                value = float(get(name) or default)
            except ValueError:
                raise ConfigError(f"{name} must be a number") from None
            if not low <= value <= high:
                raise ConfigError(f"{name} must be between {low} and {high}")
            return value

        try:
            backoff = tuple(int(x) for x in (get("ARRAKIS_RETRY_BACKOFF") or "5,25,125").split(","))
        except ValueError:
            raise ConfigError("ARRAKIS_RETRY_BACKOFF must be whole seconds separated by commas") from None
        if not backoff or any(b < 0 for b in backoff):
            raise ConfigError("ARRAKIS_RETRY_BACKOFF must be whole seconds separated by commas")

        profile = (get("ARRAKIS_POLICY_PROFILE") or "upstream").strip().lower()
        if profile not in POLICY_PROFILES:
            raise ConfigError(f"ARRAKIS_POLICY_PROFILE '{profile[:40]}' is not a policy profile",
                              hint="use " + " or ".join(POLICY_PROFILES))

        return cls(
            rpc_timeout=rpc_timeout,
            discord_rate=number("ARRAKIS_DISCORD_RATE", 50, 0.1, 50),
            discord_headroom=int(number("ARRAKIS_DISCORD_HEADROOM", 1, 0, 49)),
            discord_margin=number("ARRAKIS_DISCORD_MARGIN_MS", 60, 0, 1000) / 1000,
            retry_backoff=backoff,
            max_strip_share=number("ARRAKIS_MAX_STRIP_SHARE", 0.10, 0, 1),
            audit_digest_interval=int(number("ARRAKIS_AUDIT_DIGEST_INTERVAL", 300, 1, 300)),
            policy_budget=number("ARRAKIS_POLICY_BUDGET", 5000, 0, 10**9),
            policy_profile=profile,
            plan_max_bytes=int(number("ARRAKIS_PLAN_MAX_BYTES", 32 * 1024 * 1024, 1024, 2**31)),
            plan_max_values=int(number("ARRAKIS_PLAN_MAX_VALUES", 4_000_000, 100, 10**9)),
            plan_max_depth=int(number("ARRAKIS_PLAN_MAX_DEPTH", 100, 4, 500)),
            plan_max_resources=int(number("ARRAKIS_PLAN_MAX_RESOURCES", 20_000, 1, 10**6)),
            plan_max_kinds=int(number("ARRAKIS_PLAN_MAX_KINDS", 2_000, 1, 10**5)),
            plan_time_budget=number("ARRAKIS_PLAN_TIME_BUDGET", 10, 0.1, 3600),
            synthesis_slice=int(number("ARRAKIS_SYNTHESIS_SLICE", 5, 1, 1000)),
            embedded_grace=number("ARRAKIS_EMBEDDED_GRACE", 60, 0, 86_400),
            data_dir=Path(data_dir).expanduser(),
            database_url=get("DATABASE_URL"),
            app_database_url=get("ARRAKIS_APP_DATABASE_URL"),
            admin_database_url=get("ARRAKIS_ADMIN_DATABASE_URL"),
            redis_url=redis_url,
            rpc_urls=rpc_urls,
            confirmations=confirmations,
            score_api_url=get("SCORE_API_URL"),
            score_api_key=get("SCORE_API_KEY"),
            discord_bot_token=get("DISCORD_BOT_TOKEN"),
            discord_api_base=get("DISCORD_API_BASE"),
            vault_addr=get("VAULT_ADDR"),
            vault_token=get("VAULT_TOKEN"),
            vault_role_id=get("VAULT_ROLE_ID"),
            vault_secret_id=get("VAULT_SECRET_ID"),
            vault_transit_mount=get("VAULT_TRANSIT_MOUNT") or "transit",
            s3_endpoint=get("S3_ENDPOINT"),
            s3_access_key=get("S3_ACCESS_KEY"),
            s3_secret_key=get("S3_SECRET_KEY"),
            s3_bucket=get("S3_BUCKET"),
            slack_bot_token=get("SLACK_BOT_TOKEN"),
            slack_api_base=get("SLACK_API_BASE"),
            alert_webhook_url=get("ALERT_WEBHOOK_URL"),
            slack_approval_channel=get("SLACK_APPROVAL_CHANNEL"),
            slack_signing_secret=get("SLACK_SIGNING_SECRET"),
            discord_approval_webhook_url=get("DISCORD_APPROVAL_WEBHOOK_URL"),
            public_url=(get("ARRAKIS_PUBLIC_URL") or "http://127.0.0.1:8080").rstrip("/"),
            public_url_explicit=bool(get("ARRAKIS_PUBLIC_URL")),
            log_level=level,
            log_format=log_format,
            metrics_port=int(metrics_port) if metrics_port else None,
            metrics_flush=number("ARRAKIS_METRICS_FLUSH", 2, 0.1, 60),
            metrics=metrics_on == "on",
        )

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
