"""Second factor: TOTP (RFC 6238 through pyotp) and single-use backup codes.

- A code of the current 30-second step, or one step either side, is accepted.
- A step once accepted is never accepted again, nor any older step. The last accepted step of
  each operator lives in PostgreSQL (``operators.totp_last_step``, moved forward by one atomic
  UPDATE, so two processes cannot both accept the same code); Redis holds only a copy, written
  from PostgreSQL after each check, so flushing or rewriting Redis never changes an answer.
- 5 failed attempts within 5 minutes lock the operator out until the oldest of them is 5 minutes
  old (the failures are kept in PostgreSQL too); while locked, no code is even checked, except to *activate* a kill switch (the safe
  direction: a lockout must never stop someone from pulling it).
- The TOTP secret is stored sealed by the signer (Vault Transit encrypt, or AES-GCM with the local
  key file), bound to the operator's name. A secret still stored in plain text (from before) is
  sealed by ``arrakis db upgrade`` and, failing that, the first time it is used.
- 10 backup codes of 64 bits each, shown once at enrolment and stored under scrypt (a slow,
  salted key derivation); each works once.
- Every attempt is audited (operator, what it was for, the outcome), never the code itself.
- Secrets are only ever handed out by :meth:`MfaService.install`, which the enrolment service
  calls when an operator redeems their own one-time enrolment token.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING

import pyotp

from ..errors import MfaRefused, NotFound, ValidationError
from ..metrics import NULL_METRICS, Metrics
from ..ports import Clock, MfaStepCopyStore, system_clock
from ..storage.database import Database
from .operators import validate_name

if TYPE_CHECKING:
    from ..signing.signing_service import SigningService
    from ..storage.repos import Repositories

ISSUER = "Arrakis"
BACKUP_CODES = 10
BACKUP_BYTES = 8  # 64 bits per backup code
SCRYPT = {"n": 2 ** 14, "r": 8, "p": 1}
SEAL_KEY = "mfa-secrets"
MAX_FAILURES = 5
FAILURE_WINDOW = 300  # seconds

@dataclass(frozen=True)
class Enrolment:
    """Shown once: the otpauth URI (holds the secret) and the backup codes."""

    operator: str
    uri: str
    backup_codes: tuple[str, ...]


def _hash_code(code: str, salt: bytes | None = None) -> str:
    """``scrypt$n$r$p$<salt hex>$<hash hex>`` of a normalised backup code."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.scrypt(code.encode(), salt=salt, dklen=32, maxmem=64 * 1024 * 1024, **SCRYPT)
    return f"scrypt${SCRYPT['n']}${SCRYPT['r']}${SCRYPT['p']}${salt.hex()}${digest.hex()}"


def _code_matches(code: str, stored: str) -> bool:
    parts = stored.split("$")
    if len(parts) != 6 or parts[0] != "scrypt":
        return False  # a retired code from before (48 bits, fast hash): never accepted
    n, r, p = (int(x) for x in parts[1:4])
    digest = hashlib.scrypt(code.encode(), salt=bytes.fromhex(parts[4]), n=n, r=r, p=p, dklen=32,
                            maxmem=64 * 1024 * 1024)
    return hmac.compare_digest(digest.hex(), parts[5])


def _new_backup_code() -> str:
    raw = secrets.token_hex(BACKUP_BYTES)
    return "-".join(raw[i:i + 4] for i in range(0, len(raw), 4))


def _normalise_backup(code: str) -> str:
    return code.strip().lower().replace("-", "").replace(" ", "")


def _context(name: str) -> str:
    return f"operator:{name}"


class MfaService:
    def __init__(self, db: Database, repos: Repositories, step_copies: MfaStepCopyStore, *,
                 signing: SigningService,
                 clock: Clock = system_clock, metrics: Metrics = NULL_METRICS) -> None:
        """``signing``: the SigningService, which seals and opens TOTP secrets; ``step_copies``:
        where a copy of each operator's last accepted step is kept, for reading only."""
        self.metrics = metrics
        self.db = db
        self.repos = repos
        self.step_copies = step_copies
        self.signing = signing
        self.clock = clock
        self.store = repos.mfa  # operators' second factor in PostgreSQL (storage/operators.py)

    # --- enrolment ----------------------------------------------------------------------------

    def enrolled(self, name: str) -> bool:
        with self.db.platform():
            return self.store.enrolled(validate_name(name))

    def install(self, name: str, *, actor: str, via: str) -> Enrolment:
        """Give ``name`` a new TOTP secret and 10 new backup codes (replacing any old ones), and
        return them, once. Only the enrolment service calls this, when ``name`` redeems their own
        one-time enrolment token; nobody else ever sees the result."""
        name = validate_name(name)
        secret = pyotp.random_base32()
        codes = tuple(_new_backup_code() for _ in range(BACKUP_CODES))
        sealed = self.signing.seal(SEAL_KEY, secret, context=_context(name))
        hashes = [_hash_code(_normalise_backup(code)) for code in codes]
        with self.db.platform():
            if self.repos.operators.get(name) is None:
                raise NotFound(f"no operator named {name!r}", hint="add them first: arrakis operators add")
            self.store.install(name, sealed, hashes)
            self.repos.audit.append(actor, "mfa.enrolled", {"operator": name, "backup_codes": len(codes),
                                                            "via": via})
        self.step_copies.forget(name)
        uri = pyotp.TOTP(secret).provisioning_uri(name=name, issuer_name=ISSUER)
        return Enrolment(name, uri, codes)

    def clear(self, name: str, *, actor: str) -> None:
        """Take away ``name``'s second factor at once (a lost device is re-enrolled: the old one
        must stop working now, not when the new one is set up)."""
        name = validate_name(name)
        with self.db.platform():
            self.store.clear(name)
            self.repos.audit.append(actor, "mfa.cleared", {"operator": name})
        self.step_copies.forget(name)

    def seal_plain_secrets(self) -> int:
        """Seal every TOTP secret still stored in plain text (from before secrets were sealed);
        ``arrakis db upgrade`` runs this. Returns how many were sealed."""
        with self.db.platform():
            rows = self.store.secrets()
        done = 0
        for r in rows:
            if not self.signing.is_sealed(r["totp_secret"]):
                self._seal_in_place(r["name"], r["totp_secret"])
                done += 1
        return done

    def _seal_in_place(self, name: str, plain: str) -> None:
        sealed = self.signing.seal(SEAL_KEY, plain, context=_context(name))
        with self.db.platform():
            if self.store.replace_secret(name, sealed, old=plain):
                self.repos.audit.append("system:mfa", "mfa.secret_sealed", {"operator": name})

    def _secret(self, name: str) -> str | None:
        with self.db.platform():
            stored = self.store.secret(name)
        if stored is None:
            return None
        if not self.signing.is_sealed(stored):
            self._seal_in_place(name, stored)  # first use after an upgrade: seal it now
            return stored
        return self.signing.unseal(SEAL_KEY, stored, context=_context(name))

    # --- checking -----------------------------------------------------------------------------

    def locked_until(self, name: str) -> float | None:
        """When the lockout ends (None: not locked): the oldest of the last 5 wrong codes within
        5 minutes, plus 5 minutes. Kept in PostgreSQL, so a Redis flush does not lift it."""
        now = self.clock()
        with self.db.platform():
            times = self.store.failure_times(name, after=now - FAILURE_WINDOW)
        if len(times) < MAX_FAILURES:
            return None
        until = times[len(times) - MAX_FAILURES] + FAILURE_WINDOW
        return until if until > now else None

    def verify(self, name: str, code: str | None, *, action: str, even_if_locked: bool = False) -> str:
        """Check ``code`` (TOTP or backup) for ``name`` doing ``action``. Returns how it passed
        ('totp' or 'backup'); raises MfaRefused with the reason otherwise. Audited either way.
        ``even_if_locked``: check the code although the operator is locked out (activating a kill
        switch only); a wrong code still counts as a failure."""
        name = validate_name(name)
        now = self.clock()
        until = self.locked_until(name)
        if until is not None and not even_if_locked:
            self._audit(name, action, "locked")
            raise MfaRefused(f"{name} is locked out after {MAX_FAILURES} wrong codes; try again after "
                             f"{datetime.fromtimestamp(until, timezone.utc):%H:%M:%S} UTC",
                             hint="a kill switch can still be activated with a right code; a lost device is "
                                  "re-enrolled by another platform admin: arrakis mfa enroll NAME --as ADMIN")
        secret = self._secret(name)
        if secret is None:
            self._audit(name, action, "not_enrolled")
            raise MfaRefused(f"{name} has no second factor yet",
                             hint=f"redeem the enrolment token: arrakis mfa enroll {name} --token TOKEN")
        code = (code or "").strip().replace(" ", "")
        if not code:
            raise ValidationError("a code is needed: the 6 digits from the authenticator app, or a backup code",
                                  field="code")
        if code.isdigit() and len(code) == 6:
            return self._check_totp(name, secret, code, action, now)
        return self._check_backup(name, code, action, now)

    def _accept_step(self, name: str, step: int) -> bool:
        """Move the operator's last accepted step to ``step`` if it is newer. PostgreSQL alone
        decides (one atomic UPDATE): Redis only gets a copy afterwards, so neither a flush nor a
        Redis writer (rewinding the copy, or pushing it ahead to refuse good codes) changes the
        answer."""
        with self.db.platform():
            ok, last = self.store.accept_step(name, step)
        if last is not None:
            self.step_copies.remember(name, int(last))
        return ok

    def _check_totp(self, name: str, secret: str, code: str, action: str, now: float) -> str:
        totp = pyotp.TOTP(secret)
        step = totp.timecode(datetime.fromtimestamp(now, timezone.utc))
        for offset in (0, -1, 1):
            if hmac.compare_digest(totp.generate_otp(step + offset), code):
                if not self._accept_step(name, step + offset):
                    self._fail(name, action, "replayed", now)
                    raise MfaRefused("that code was already used; wait for the next one")
                self._audit(name, action, "ok")
                return "totp"
        self._fail(name, action, "wrong", now)
        raise MfaRefused("wrong code (check the authenticator app and this machine's clock)")

    def _check_backup(self, name: str, code: str, action: str, now: float) -> str:
        code = _normalise_backup(code)
        with self.db.platform():
            rows = self.store.backup_codes(name)
        match = next((r for r in rows if _code_matches(code, r["code_hash"])), None) if len(code) == 16 else None
        if match is not None and match["used_at"] is None:
            with self.db.platform():
                # The UPDATE is the single use: of two processes with the same code, one gets the row.
                if self.store.use_backup(name, match["code_hash"]):
                    left = sum(1 for r in rows if r["used_at"] is None) - 1
                    self.repos.audit.append(f"operator:{name}", "mfa.verify",
                                            {"operator": name, "for": action, "result": "backup_ok",
                                             "backup_codes_left": left})
                    return "backup"
        if match is not None:
            self._fail(name, action, "backup_reused", now)
            raise MfaRefused("that backup code was already used")
        self._fail(name, action, "wrong", now)
        raise MfaRefused("wrong code (a backup code looks like 1a2b-3c4d-5e6f-7a8b)")

    def _fail(self, name: str, action: str, result: str, now: float) -> None:
        self.metrics.mfa_failure()
        with self.db.platform():
            self.store.record_failure(name, now, forget_before=now - 2 * FAILURE_WINDOW)
        self._audit(name, action, result)

    def _audit(self, name: str, action: str, result: str) -> None:
        with self.db.platform():
            self.repos.audit.append(f"operator:{name}", "mfa.verify", {"operator": name, "for": action,
                                                                       "result": result})
