"""Second factor: TOTP (RFC 6238 through pyotp) and single-use backup codes.

- A code of the current 30-second step, or one step either side, is accepted.
- A step once accepted is never accepted again, nor any older step (shared in Redis, so two
  processes cannot both accept the same code).
- 5 failed attempts within 5 minutes lock the operator out until the oldest of them is 5 minutes
  old; while locked, no code is even checked.
- 10 backup codes, shown once at enrolment and stored salted and hashed; each works once.
- Every attempt is audited (operator, what it was for, the outcome), never the code itself.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone

import pyotp

from .. import keys
from ..errors import MfaRefused, NotFound, ValidationError
from ..ports import Clock, system_clock
from ..storage.database import Database
from .operators import OperatorRepository, validate_name

ISSUER = "Arrakis"
BACKUP_CODES = 10
MAX_FAILURES = 5
FAILURE_WINDOW = 300  # seconds

# KEYS[1] last accepted step; ARGV[1] step, ARGV[2] ttl. 1: accepted (recorded), 0: replay.
ACCEPT_STEP_LUA = """
local last = tonumber(redis.call('GET', KEYS[1]) or '-1')
if tonumber(ARGV[1]) <= last then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', tonumber(ARGV[2]))
return 1
"""

# KEYS[1] failures zset; ARGV[1] now, ARGV[2] window, ARGV[3] max, ARGV[4] record (1) or only check (0),
# ARGV[5] unique member. Returns the second the lockout ends (0: not locked).
FAILURES_LUA = """
local now, window, max = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if ARGV[4] == '1' then
  redis.call('ZADD', KEYS[1], now, ARGV[5])
  redis.call('EXPIRE', KEYS[1], math.ceil(window) + 1)
end
local n = redis.call('ZCARD', KEYS[1])
if n < max then return '0' end
local oldest = redis.call('ZRANGE', KEYS[1], n - max, n - max, 'WITHSCORES')
return tostring(tonumber(oldest[2]) + window)
"""


@dataclass(frozen=True)
class Enrolment:
    """Shown once: the otpauth URI (holds the secret) and the backup codes."""

    operator: str
    uri: str
    backup_codes: tuple[str, ...]


def _hash_code(code: str, salt: str) -> str:
    return f"{salt}${hashlib.sha256((salt + ':' + code).encode()).hexdigest()}"


def _normalise_backup(code: str) -> str:
    return code.strip().lower().replace("-", "").replace(" ", "")


class MfaService:
    def __init__(self, db: Database, repos, redis, *, clock: Clock = system_clock) -> None:
        self.db = db
        self.repos = repos
        self.redis = redis
        self.clock = clock
        self.operators = OperatorRepository(db)
        self._accept_step = redis.register_script(ACCEPT_STEP_LUA)
        self._failures = redis.register_script(FAILURES_LUA)

    # --- enrolment ----------------------------------------------------------------------------

    def enrolled(self, name: str) -> bool:
        with self.db.platform() as tx:
            return bool(tx.scalar("SELECT totp_secret IS NOT NULL FROM operators WHERE name = %s",
                                  (validate_name(name),)))

    def enroll(self, name: str, *, actor: str) -> Enrolment:
        """Give ``name`` a new TOTP secret and 10 new backup codes (replacing any old ones).
        Whoever calls this has already been checked: a first enrolment is free, a re-enrolment
        (lost device) needs another platform admin's code."""
        name = validate_name(name)
        secret = pyotp.random_base32()
        codes = tuple(f"{secrets.token_hex(3)}-{secrets.token_hex(3)}" for _ in range(BACKUP_CODES))
        with self.db.platform() as tx:
            if self.operators.get(name) is None:
                raise NotFound(f"no operator named {name!r}", hint="add them first: arrakis operators add")
            tx.execute("UPDATE operators SET totp_secret = %s, totp_enrolled_at = now() WHERE name = %s",
                       (secret, name))
            tx.execute("DELETE FROM operator_backup_codes WHERE operator = %s", (name,))
            for code in codes:
                tx.execute("INSERT INTO operator_backup_codes (operator, code_hash) VALUES (%s, %s)",
                           (name, _hash_code(_normalise_backup(code), secrets.token_hex(8))))
            self.repos.audit.append(actor, "mfa.enrolled", {"operator": name, "backup_codes": len(codes)})
        self.redis.delete(keys.mfa_last_step(name), keys.mfa_failures(name))
        uri = pyotp.TOTP(secret).provisioning_uri(name=name, issuer_name=ISSUER)
        return Enrolment(name, uri, codes)

    # --- checking -----------------------------------------------------------------------------

    def locked_until(self, name: str) -> float | None:
        until = float(self._failures(keys=[keys.mfa_failures(name)],
                                     args=[self.clock(), FAILURE_WINDOW, MAX_FAILURES, 0, ""]))
        return until if until > self.clock() else None

    def verify(self, name: str, code: str | None, *, action: str) -> str:
        """Check ``code`` (TOTP or backup) for ``name`` doing ``action``. Returns how it passed
        ('totp' or 'backup'); raises MfaRefused with the reason otherwise. Audited either way."""
        name = validate_name(name)
        now = self.clock()
        until = self.locked_until(name)
        if until is not None:
            self._audit(name, action, "locked")
            raise MfaRefused(f"{name} is locked out after {MAX_FAILURES} wrong codes; try again after "
                             f"{datetime.fromtimestamp(until, timezone.utc):%H:%M:%S} UTC",
                             hint="a platform admin can re-enrol a lost device: arrakis mfa enroll NAME")
        with self.db.platform() as tx:
            secret = tx.scalar("SELECT totp_secret FROM operators WHERE name = %s", (name,))
        if secret is None:
            self._audit(name, action, "not_enrolled")
            raise MfaRefused(f"{name} has no second factor yet", hint=f"enrol first: arrakis mfa enroll {name}")
        code = (code or "").strip().replace(" ", "")
        if not code:
            raise ValidationError("a code is needed: the 6 digits from the authenticator app, or a backup code",
                                  field="code")
        if code.isdigit() and len(code) == 6:
            return self._check_totp(name, secret, code, action, now)
        return self._check_backup(name, code, action, now)

    def _check_totp(self, name: str, secret: str, code: str, action: str, now: float) -> str:
        totp = pyotp.TOTP(secret)
        step = totp.timecode(datetime.fromtimestamp(now, timezone.utc))
        for offset in (0, -1, 1):
            if hmac.compare_digest(totp.generate_otp(step + offset), code):
                if not int(self._accept_step(keys=[keys.mfa_last_step(name)], args=[step + offset, 300])):
                    self._fail(name, action, "replayed", now)
                    raise MfaRefused("that code was already used; wait for the next one")
                self._audit(name, action, "ok")
                return "totp"
        self._fail(name, action, "wrong", now)
        raise MfaRefused("wrong code (check the authenticator app and this machine's clock)")

    def _check_backup(self, name: str, code: str, action: str, now: float) -> str:
        code = _normalise_backup(code)
        with self.db.platform() as tx:
            rows = tx.all("SELECT code_hash, used_at FROM operator_backup_codes WHERE operator = %s", (name,))
            match = next((r["code_hash"] for r in rows
                          if hmac.compare_digest(_hash_code(code, r["code_hash"].split("$", 1)[0]), r["code_hash"])),
                         None)
            # The UPDATE is the single use: of two processes with the same code, one gets the row.
            if match is not None and tx.scalar("UPDATE operator_backup_codes SET used_at = now() WHERE operator = %s "
                                               "AND code_hash = %s AND used_at IS NULL RETURNING 1", (name, match)):
                left = sum(1 for r in rows if r["used_at"] is None) - 1
                self.repos.audit.append(f"operator:{name}", "mfa.verify", {"operator": name, "for": action,
                                                                           "result": "backup_ok",
                                                                           "backup_codes_left": left})
                return "backup"
        if match is not None:
            self._fail(name, action, "backup_reused", now)
            raise MfaRefused("that backup code was already used")
        self._fail(name, action, "wrong", now)
        raise MfaRefused("wrong code (a backup code looks like 1a2b3c-4d5e6f)")

    def _fail(self, name: str, action: str, result: str, now: float) -> None:
        self._failures(keys=[keys.mfa_failures(name)],
                       args=[now, FAILURE_WINDOW, MAX_FAILURES, 1, f"{now}:{secrets.token_hex(4)}"])
        self._audit(name, action, result)

    def _audit(self, name: str, action: str, result: str) -> None:
        with self.db.platform():
            self.repos.audit.append(f"operator:{name}", "mfa.verify", {"operator": name, "for": action,
                                                                       "result": result})
