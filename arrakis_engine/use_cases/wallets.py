"""Wallet linking: a member proves a wallet with an EIP-4361 (Sign-In with Ethereum) message,
or an admin imports a CSV of Discord ids and wallets.

A challenge carries a one-time nonce kept in Redis for ``nonce_ttl`` seconds; completing it
takes the nonce away (GETDEL), so a signed message works once. A member may link up to
``MAX_WALLETS_PER_MEMBER`` wallets per community (their holdings are combined); no wallet is
claimed by two members. The first wallet linked is the member's primary one
(``profiles.wallet_address``).
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from ..domain.chain import check_address
from ..errors import Conflict, SignInError, ValidationError
from ..ports import Clock, NonceStore, moment, system_clock
from ..storage.database import Database
from ..storage.models import WalletLink
from ..domain.validation import check_discord_id

if TYPE_CHECKING:
    from ..storage.repos import Repositories

MAX_WALLETS_PER_MEMBER = 10
_FIELDS = re.compile(r"^(URI|Version|Chain ID|Nonce|Issued At|Expiration Time): (.+)$")


@dataclass(frozen=True)
class Challenge:
    message: str
    nonce: str
    address: str
    expires_at: datetime


def build_message(*, domain: str, address: str, statement: str, uri: str, chain_id: int, nonce: str,
                  issued_at: datetime, expires_at: datetime) -> str:
    """An EIP-4361 message (the address in EIP-55 checksum form)."""
    stamp = lambda t: t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: E731
    from eth_utils import to_checksum_address

    return (f"{domain} wants you to sign in with your Ethereum account:\n{to_checksum_address(address)}\n\n"
            f"{statement}\n\nURI: {uri}\nVersion: 1\nChain ID: {chain_id}\nNonce: {nonce}\n"
            f"Issued At: {stamp(issued_at)}\nExpiration Time: {stamp(expires_at)}")


def _digest(message: str) -> str:
    return hashlib.sha256(message.encode("utf-8", "surrogatepass")).hexdigest()


def parse_message(message: str) -> dict:
    """The fields of an EIP-4361 message; SignInError if it is not one."""
    lines = message.split("\n")
    if len(lines) < 8 or not lines[0].endswith(" wants you to sign in with your Ethereum account:"):
        raise SignInError("this is not a Sign-In with Ethereum message")
    out = {"domain": lines[0].split(" wants you", 1)[0], "address": lines[1].strip()}
    for line in lines[2:]:
        m = _FIELDS.match(line)
        if m:
            out[m.group(1)] = m.group(2).strip()
    missing = [f for f in ("URI", "Version", "Chain ID", "Nonce", "Issued At", "Expiration Time") if f not in out]
    if missing:
        raise SignInError("the sign-in message lacks " + ", ".join(missing))
    return out


class WalletLinking:
    def __init__(self, db: Database, repos: Repositories, nonces: NonceStore, *, domain: str = "arrakis.local",
                 uri: str = "https://arrakis.local/link", chain_id: int = 80094, nonce_ttl: int = 600,
                 clock: Clock = system_clock) -> None:
        self.db = db
        self.repos = repos
        self.nonces = nonces
        self.domain = domain
        self.uri = uri
        self.chain_id = chain_id
        self.nonce_ttl = nonce_ttl
        self.clock = clock

    def start(self, community_id: uuid.UUID | str, discord_id: str, address: str) -> Challenge:
        """A message for the member to sign with the wallet at ``address``."""
        with self.db.tenant(community_id):
            community = self.repos.communities.current()
        discord_id = check_discord_id(discord_id)
        address = check_address(address, "wallet_address")
        nonce = secrets.token_hex(16)
        now = moment(self.clock).replace(microsecond=0)
        expires = now + timedelta(seconds=self.nonce_ttl)
        message = build_message(
            domain=self.domain, address=address, uri=self.uri, chain_id=self.chain_id, nonce=nonce,
            statement=f"Link this wallet to your membership of {community.name}.", issued_at=now, expires_at=expires)
        self.nonces.put(nonce, {"community": str(community.id), "discord_id": discord_id, "address": address,
                                "message_sha256": _digest(message)}, self.nonce_ttl)
        return Challenge(message, nonce, address, expires)

    def complete(self, community_id: uuid.UUID | str, discord_id: str, message: str, signature: str,
                 *, actor: str = "member") -> WalletLink:
        """Check the signed message and link the wallet. Raises SignInError, Conflict or ValidationError."""
        fields = parse_message(message)
        pending = self.nonces.take(fields["Nonce"])
        if pending is None:
            raise SignInError("this sign-in request has expired or was already used; start again")
        discord_id = check_discord_id(discord_id)
        if pending["community"] != str(community_id) or pending["discord_id"] != discord_id:
            raise SignInError("this sign-in request belongs to someone else")
        if fields["domain"] != self.domain or fields["URI"] != self.uri or fields["Chain ID"] != str(self.chain_id):
            raise SignInError("the sign-in message was made for another site or chain")
        expires = datetime.fromisoformat(fields["Expiration Time"].replace("Z", "+00:00"))
        if moment(self.clock) >= expires:
            raise SignInError("this sign-in request has expired; start again")
        claimed = check_address(fields["address"], "wallet_address")
        if claimed != pending["address"]:
            raise SignInError("the message names a different wallet than the one being linked")
        # The message signed must be the one issued, byte for byte: its statement, times and every
        # other line, not only the fields checked above (the nonce is used up either way).
        if not hmac.compare_digest(pending.get("message_sha256", ""), _digest(message)):
            raise SignInError("the signed message is not the one this page issued; start again")
        try:
            # eth_account (with py_ecc) takes seconds to import: only the commands that check a
            # signature pay for it.
            from eth_account import Account
            from eth_account.messages import encode_defunct

            signer = Account.recover_message(encode_defunct(text=message), signature=signature).lower()
        except Exception as exc:  # malformed signatures raise a variety of errors
            raise SignInError("the signature could not be read") from exc
        if signer != claimed:
            raise SignInError("the signature was not made by that wallet")
        return self._link(community_id, discord_id, claimed, source="siwe", actor=actor)

    def _link(self, community_id, discord_id: str, wallet: str, *, source: str, actor: str) -> WalletLink | None:
        """Link ``wallet`` to the member; None when it was linked to them already (nothing written)."""
        r = self.repos
        with self.db.tenant(community_id):
            profile = r.profiles.by_discord_id(discord_id) or r.profiles.create(discord_id=discord_id)
            r.profiles.lock(profile.id)
            existing = r.wallets.for_profile(profile.id)
            primary = profile.wallet_address
            if primary and all(w.wallet_address != primary for w in existing) and r.wallets.by_wallet(primary) is None:
                # A primary wallet set without its link (older data): link it first, so the new
                # wallet is added to it rather than hiding it.
                existing.append(r.wallets.link(profile.id, primary, source="legacy"))
            if source == "import" and any(w.wallet_address == wallet for w in existing):
                return None
            if len(existing) >= MAX_WALLETS_PER_MEMBER and all(w.wallet_address != wallet for w in existing):
                raise Conflict(f"member {discord_id} already has {len(existing)} wallets linked, the most one "
                               f"member may have ({MAX_WALLETS_PER_MEMBER}); unlink one first")
            link = r.wallets.link(profile.id, wallet, source=source,
                                  verified_at=moment(self.clock) if source == "siwe" else None)
            if primary is None or all(w.wallet_address != primary for w in existing):
                r.profiles.set_wallet(profile.id, wallet)  # the first wallet linked is the primary one
            r.audit.append(actor, "wallet.linked", {"discord_id": discord_id, "wallet": wallet, "source": source})
            return link

    def import_csv(self, community_id: uuid.UUID | str, path: str | Path, *, actor: str = "admin") -> dict:
        """Link wallets from a CSV with columns ``discord_id,wallet_address``.

        Good rows are linked even when others are refused. Returns ``linked`` (new links),
        ``unchanged`` (already linked that way), ``repeated`` (lines that repeat an earlier line
        exactly, skipped) and ``errors`` (one per refused line, with its number and reason)."""
        with self.db.tenant(community_id):
            self.repos.communities.current()  # NotFound "no community ..." before reading any row
        try:
            text = Path(path).read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise ValidationError(f"could not read {Path(path).name}: {exc}", field="file") from exc
        rows = csv.reader(io.StringIO(text))
        columns = [c.strip() for c in next(rows, [])]
        if not {"discord_id", "wallet_address"} <= set(columns):
            raise ValidationError("the CSV needs a header line with discord_id and wallet_address", field="file")
        where = {name: columns.index(name) for name in ("discord_id", "wallet_address")}
        result = {"linked": 0, "unchanged": 0, "repeated": 0, "errors": []}
        seen: set[tuple[str, str]] = set()
        holder: dict[str, str] = {}
        for fields in rows:
            line = rows.line_num
            if not any(f.strip() for f in fields):
                continue  # a blank line
            try:
                if len(fields) != len(columns):
                    raise ValidationError(f"has {len(fields)} field(s) where the header has {len(columns)} "
                                          f"({', '.join(columns)})")
                discord_id = check_discord_id(fields[where["discord_id"]])
                wallet = check_address(fields[where["wallet_address"]].strip(), "wallet_address")
                if (discord_id, wallet) in seen:
                    result["repeated"] += 1
                    continue
                if holder.get(wallet, discord_id) != discord_id:
                    raise Conflict(f"wallet also given to member {holder[wallet]} on an earlier line")
                seen.add((discord_id, wallet))
                holder[wallet] = discord_id
                new = self._link(community_id, discord_id, wallet, source="import", actor=actor)
                result["linked" if new else "unchanged"] += 1
            except (ValidationError, Conflict) as exc:
                result["errors"].append(f"line {line}: {exc}")
        return result
