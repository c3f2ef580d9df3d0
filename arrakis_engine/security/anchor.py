"""Audit digests: the audit chains anchored outside the database, like CloudTrail's digest files.

The database owner can rewrite anything in PostgreSQL: rows, ``audit_heads``, the signed
checkpoints. So the scheduler (``arrakis scheduler``) writes a *digest* to the object store (the
manifest shadow store: S3 or the local folder) at least every ``ARRAKIS_AUDIT_DIGEST_INTERVAL``
seconds (300) and at once after a security event. Digest ``n`` lives at
``audit-digests/<n, 12 digits>.json``, a name written once and never again, and says:

    number, created_at, reason           which digest, when, and why it was written
    chains: {chain: {to, head, from?, hashes?}}
                                         for every chain (``platform`` or a community id): its
                                         last row ``to`` with hash ``head``, and the hash of every
                                         row added since the previous digest (rows ``from``..``to``)
    max_id                               the newest audit_log row id it saw
    previous: {number, sha256, signature}
                                         the previous digest file's SHA-256 and signature (a chain
                                         of digests: none can be dropped or changed unnoticed)
    signature                            Ed25519 (the platform key: Vault Transit or the local key
                                         file) over ``arrakis-audit-digest\\n`` + SHA-256 of the
                                         digest without its signature (canonical JSON)

Before writing digest ``n`` the scheduler checks that each chain in the database still extends
digest ``n-1`` (the anchored head row unchanged, every new row linked and hashed right); a chain
that does not is never blessed: digest ``n`` repeats its last anchored head, and the refusal is
recorded and alerted.

``audit verify`` checks a chain in the database against every digest: rows anchored but gone
(missing), rows whose content no longer gives the anchored hash (rewritten), rows no digest covers
yet (unanchored: the window). :func:`verify_digest_files` checks the digests alone, from a copy
of the store and the public keys, without the database.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable

from ..errors import ArrakisError, Conflict, IntegrityFailure, NotFound
from ..storage.database import Database
from ..domain.checksums import canonical_json

if TYPE_CHECKING:
    from ..ports import Clock, Notifier, ObjectStore
    from ..signing.signing_service import SigningService
    from ..storage.repos import Repositories

log = logging.getLogger(__name__)

PREFIX = "audit-digests/"
FORMAT = "arrakis-audit-digest/1"
DIGEST_KEY = "platform"  # the platform's signing key signs the digests
# Actions whose first word marks a security event: a digest is written at once after one.
SECURITY_EVENTS = ("killswitch", "mfa", "operator", "operators", "signing", "approval", "member_sync", "freeze",
                   "reconcile", "enrolment", "audit")


def digest_key(number: int) -> str:
    return f"{PREFIX}{int(number):012d}.json"


def digest_message(unsigned: dict) -> bytes:
    """What the signature covers: the digest without its signature, as canonical JSON, hashed."""
    return b"arrakis-audit-digest\n" + hashlib.sha256(canonical_json(unsigned).encode()).hexdigest().encode()


@dataclass
class Digest:
    number: int
    body: dict
    raw: bytes

    @property
    def unsigned(self) -> dict:
        return {k: v for k, v in self.body.items() if k != "signature"}


@dataclass
class DigestChainReport:
    """The digests as found in the store: their number, the latest, and what is wrong with them."""

    digests: list[Digest] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def latest(self) -> Digest | None:
        return self.digests[-1] if self.digests else None

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict:
        latest = self.latest
        return {"digests": len(self.digests), "ok": self.ok, "problems": self.problems,
                "latest": None if latest is None else {"number": latest.number,
                                                        "created_at": latest.body.get("created_at")}}


def read_digests(store, verify: Callable[[bytes, str], bool]) -> DigestChainReport:
    """Every digest in ``store``, each checked: its signature (``verify(message, signature)``),
    its number against its name, and its link to the one before (none missing, none changed)."""
    report = DigestChainReport()
    names = [k for k in store.list(PREFIX) if k.endswith(".json")]
    previous: Digest | None = None
    for name in names:
        try:
            number = int(name[len(PREFIX):-len(".json")])
            raw = store.get(name)
            body = json.loads(raw)
        except (ValueError, NotFound):
            report.problems.append(f"{name} is not a digest this installation wrote")
            continue
        d = Digest(number, body, raw)
        if body.get("format") != FORMAT or body.get("number") != number:
            report.problems.append(f"digest {name} does not match its name")
            continue
        if not verify(digest_message(d.unsigned), str(body.get("signature") or "")):
            report.problems.append(f"digest #{number} has a bad signature (changed, or not signed by the platform key)")
            continue
        expected_prev = previous.number if previous else None
        link = body.get("previous")
        if previous is None and number != 1:
            report.problems.append(f"digests #1..#{number - 1} are missing from the store")
        elif previous is not None and number != previous.number + 1:
            report.problems.append(f"digests #{previous.number + 1}..#{number - 1} are missing from the store")
        if previous is not None:
            if not link or link.get("number") != expected_prev or \
                    link.get("sha256") != hashlib.sha256(previous.raw).hexdigest() or \
                    link.get("signature") != previous.body.get("signature"):
                report.problems.append(f"digest #{number} does not link to digest #{previous.number} as stored")
        report.digests.append(d)
        previous = d
    return report


def verify_digest_files(store, public_keys: dict[int, str]) -> DigestChainReport:
    """Check the digests from the store alone, with the platform key's public keys (version ->
    base64 raw Ed25519, as ``arrakis signing public-key --json`` prints them): no database, no
    signer."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    keys = {int(v): Ed25519PublicKey.from_public_bytes(base64.b64decode(k)) for v, k in public_keys.items()}

    def verify(message: bytes, signature: str) -> bool:
        try:
            version, b64 = signature.rsplit(":", 2)[-2:]
            key = keys.get(int(version.lstrip("v")))
            if key is None:
                return False
            key.verify(base64.b64decode(b64, validate=True), message)
            return True
        except (InvalidSignature, ValueError):
            return False

    return read_digests(store, verify)


@dataclass
class AnchorCheck:
    """One chain in the database against the digests."""

    chain: str
    anchored_to: int = 0
    missing: list[int] = field(default_factory=list)
    rewritten: list[int] = field(default_factory=list)
    unanchored: list[int] = field(default_factory=list)


def _ranges(seqs: list[int]) -> str:
    out, start, prev = [], None, None
    for s in sorted(seqs):
        if start is None:
            start = prev = s
        elif s == prev + 1:
            prev = s
        else:
            out.append(f"{start}" if start == prev else f"{start}..{prev}")
            start = prev = s
    if start is not None:
        out.append(f"{start}" if start == prev else f"{start}..{prev}")
    return ", ".join(out[:20]) + (f" and {len(out) - 20} more range(s)" if len(out) > 20 else "")


class AuditAnchor:
    """Writes the digests (the scheduler) and checks the database against them (``audit verify``)."""

    def __init__(self, db: Database, repos: Repositories, store: ObjectStore, signing: SigningService, *,
                 interval: int = 300, clock: Clock | None = None, notifier: Notifier | None = None) -> None:
        import time

        self.db = db
        self.repos = repos
        self.store = store
        self.signing = signing
        self.interval = int(interval)
        self.clock = clock or time.time
        self.notifier = notifier
        self._seen_max_id: int | None = None
        self._last_at: float | None = None

    # --- the digests --------------------------------------------------------------------------

    def digests(self) -> DigestChainReport:
        """The digests in the store, checked with the platform key's public keys (read once from
        the signer): the same check ``audit digests --folder`` makes without the database."""
        return verify_digest_files(self.store, self.signing.public_keys(DIGEST_KEY))

    def due(self) -> str | None:
        """Why the scheduler should write a digest now ('interval': the interval has passed since
        this process's last one; 'security event': one was recorded since), or None."""
        now = self.clock()
        if self._last_at is None or now - self._last_at >= self.interval:
            return "interval"
        with self.db.platform():
            if self.repos.audit.security_event_after(self._seen_max_id or 0, SECURITY_EVENTS):
                return "security event"
        return None

    def anchor(self, *, reason: str = "interval") -> dict | None:
        """Write the next digest. Returns what it anchored, or None when another process wrote
        that number first. Raises IntegrityFailure (and writes nothing) when the database no
        longer extends the latest digest; SigningError / StorageError when those fail."""
        chain_report = self.digests()
        if not chain_report.ok:
            self._alarm("the audit digests in the store are damaged", chain_report.problems)
            raise IntegrityFailure("the audit digests in the store are damaged; no new digest was written",
                                   hint="see `arrakis audit digests`")
        latest = chain_report.latest
        before = latest.body["chains"] if latest else {}
        chains, refused, max_id = self._entries(before)
        if refused:
            self._alarm(f"the audit log of {len(refused)} chain(s) no longer extends digest "
                        f"#{latest.number if latest else 0}", [p for ps in refused.values() for p in ps])
            chains, refused, max_id = self._entries(before)  # the alarm's own row is anchored too
        number = (latest.number if latest else 0) + 1
        unsigned = {"format": FORMAT, "number": number, "reason": reason[:100], "max_id": max_id,
                    "created_at": datetime.fromtimestamp(self.clock(), timezone.utc).isoformat(),
                    "previous": None if latest is None else {
                        "number": latest.number, "sha256": hashlib.sha256(latest.raw).hexdigest(),
                        "signature": latest.body["signature"]},
                    "chains": chains}
        # The kill switch cuts off signing of manifests; evidence keeps being signed (it is most
        # needed then), so the digest goes to the signer directly.
        signature = self.signing.signer.sign(DIGEST_KEY, digest_message(unsigned))
        try:
            self.store.put_new(digest_key(number), canonical_json({**unsigned, "signature": signature}).encode())
        except Conflict:
            return None  # another scheduler wrote this number first
        self._seen_max_id, self._last_at = max_id, self.clock()
        added = sum(len(c.get("hashes", [])) for c in chains.values())
        return {"number": number, "key": digest_key(number), "rows": added, "chains": len(chains), "reason": reason,
                "refused": refused}

    def _entries(self, before: dict) -> tuple[dict[str, dict], dict[str, list[str]], int]:
        """Each chain's digest entry, the chains refused (with why), and the newest row id."""
        chains: dict[str, dict] = {}
        refused: dict[str, list[str]] = {}
        with self.db.platform():
            names = sorted(set(self.repos.audit.chains()) | set(before))
            max_id = self.repos.audit.max_id()
            for name in names:
                anchored_to = int(before.get(name, {}).get("to", 0))
                anchored_head = before.get(name, {}).get("head")
                rows = self.repos.audit.chain_rows(name, from_seq=max(anchored_to, 1))
                entry, trouble = self._extend(name, anchored_to, anchored_head, rows)
                if trouble:
                    # A chain that no longer extends what was anchored is never blessed: the new
                    # digest repeats its last anchored head, and the alarm goes out.
                    refused[name] = trouble
                    if anchored_to:
                        chains[name] = {"to": anchored_to, "head": anchored_head}
                elif entry is not None:
                    chains[name] = entry
        return chains, refused, max_id

    @staticmethod
    def _extend(name, anchored_to, anchored_head, rows) -> tuple[dict | None, list[str]]:
        """The digest entry for one chain, if its rows extend what was anchored."""
        problems = []
        if anchored_to:
            if not rows or rows[0]["seq"] != anchored_to:
                return None, [f"{name}: row {anchored_to}, the last one anchored, is gone"]
            if rows[0]["hash"] != anchored_head or rows[0]["expected"] != anchored_head:
                return None, [f"{name}: row {anchored_to} is no longer the row digest anchored"]
            prev, rest = rows[0], rows[1:]
        else:
            prev, rest = None, rows
        hashes = []
        seq = anchored_to
        for r in rest:
            seq += 1
            if r["seq"] != seq:
                problems.append(f"{name}: rows {seq}..{r['seq'] - 1} are missing")
                break
            if r["prev_hash"] != (prev["hash"] if prev else None) or r["hash"] != r["expected"]:
                problems.append(f"{name}: row {r['seq']} does not follow from the row before it")
                break
            hashes.append(r["hash"])
            prev = r
        if problems:
            return None, problems
        if prev is None:
            return None, []
        entry = {"to": prev["seq"], "head": prev["hash"]}
        if hashes:
            entry.update({"from": anchored_to + 1, "hashes": hashes})
        return entry, []

    def _alarm(self, subject: str, problems: list[str]) -> None:
        log.error("%s: %s", subject, "; ".join(problems[:10]))
        try:
            with self.db.platform():
                self.repos.audit.append("system:audit-anchor", "audit.anchor_refused",
                                        {"why": subject[:200], "problems": problems[:20]})
        except ArrakisError:
            log.exception("could not record the refused anchor")
        if self.notifier is not None:
            try:
                self.notifier.notify("Audit log tampering suspected", subject + ": " + "; ".join(problems[:5]))
            except Exception:
                log.exception("could not send the audit alarm")

    # --- the database against the digests ----------------------------------------------------

    def check(self, chain: str, digests: DigestChainReport | None = None) -> AnchorCheck:
        """Rows of ``chain`` missing, rewritten or not yet anchored, against every digest."""
        digests = digests if digests is not None else self.digests()
        anchored: dict[int, str] = {}
        for d in digests.digests:
            c = d.body.get("chains", {}).get(chain)
            if not c:
                continue
            for i, h in enumerate(c.get("hashes", [])):
                anchored[int(c["from"]) + i] = h
            anchored.setdefault(int(c["to"]), c["head"])
        with self.db.platform():
            rows = self.repos.audit.chain_rows(chain)
        have = {r["seq"]: r for r in rows}
        out = AnchorCheck(chain, anchored_to=max(anchored, default=0))
        for seq, h in sorted(anchored.items()):
            row = have.get(seq)
            if row is None:
                out.missing.append(seq)
            elif row["hash"] != h or row["expected"] != h:
                out.rewritten.append(seq)
        out.unanchored = sorted(seq for seq in have if seq not in anchored)
        return out

    def problems(self, chain: str) -> tuple[list[str], dict]:
        """Plain lines for ``audit verify``, and the figures for --json."""
        digests = self.digests()
        lines = list(digests.problems)
        check = self.check(chain, digests)
        latest = digests.latest
        if check.missing:
            lines.append(f"rows {_ranges(check.missing)} are missing: a digest anchored them and the database no "
                         "longer has them")
        if check.rewritten:
            lines.append(f"rows {_ranges(check.rewritten)} were rewritten: their content no longer gives the hash "
                         "a digest anchored")
        if check.unanchored:
            if latest is None:
                lines.append(f"rows {_ranges(check.unanchored)} are unanchored: no digest is in the store yet "
                             "(run `arrakis scheduler`, or `arrakis audit checkpoint`)")
            else:
                lines.append(f"rows {_ranges(check.unanchored)} are unanchored: written after digest "
                             f"#{latest.number} ({latest.body.get('created_at')}), so nothing outside the database "
                             "vouches for them yet")
        figures = {"digests": len(digests.digests), "latest_digest": latest.number if latest else None,
                   "anchored_to": check.anchored_to, "missing": check.missing, "rewritten": check.rewritten,
                   "unanchored": check.unanchored}
        return lines, figures
