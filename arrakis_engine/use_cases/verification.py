"""Wallet verification by link: /verify gives a member a one-time link to the web page, where
their browser wallet signs a Sign-In with Ethereum message (EIP-4361) with a one-time nonce.

A link names the community and the member; it lasts 15 minutes and works once (the first wallet
linked through it uses it up). The signed message itself is checked by
:class:`~arrakis_engine.use_cases.wallets.WalletLinking` (nonce in Redis, domain, URI, chain, expiry,
signer). Once linked, the member's standing is read again and their roles follow.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import ArrakisError, SignInError
from ..ports import VerifyLinkStore
from ..domain.validation import check_discord_id

if TYPE_CHECKING:
    from .member_desk import MemberDesk
    from .wallets import WalletLinking

log = logging.getLogger(__name__)

LINK_TTL = 15 * 60
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{20,64}$")
EXPIRED = "this link has expired or was already used: run /verify again in Discord for a new one"
BUSY = "this link is being used in another window right now: wait a moment and reload the page"


@dataclass(frozen=True)
class VerifyLink:
    url: str
    expires_in: int


@dataclass(frozen=True)
class Linked:
    wallet: str
    community: str
    tier: str | None
    rank: int | None
    roles: str  # what happened to the member's roles, in plain words


_LOCAL_URL = re.compile(r"^http://(\[[0-9a-fA-F:]+\]|[0-9.]+|localhost):(\d{1,5})$")


def _local_url(url: str) -> bool:
    m = _LOCAL_URL.match(url)
    if not m or not 0 < int(m.group(2)) < 65536:
        return False
    if m.group(1) == "localhost":
        return True
    try:
        ip = ipaddress.ip_address(m.group(1).strip("[]"))
    except ValueError:
        return False
    return ip.is_loopback or ip.is_private


class WalletVerification:
    def __init__(self, links: VerifyLinkStore, members: MemberDesk, wallets: WalletLinking, *, public_url: str,
                 follow_web: bool = False) -> None:
        self.links, self.members, self.wallets = links, members, wallets
        self.base = public_url.rstrip("/")
        self.follow_web = follow_web  # no ARRAKIS_PUBLIC_URL: links go where `arrakis web` says it serves

    def public_url(self) -> str:
        """Where members reach the wallet page: ARRAKIS_PUBLIC_URL, else the address the running
        `arrakis web` announced (else the default). An announced address is taken only when it is
        plain http to a loopback or private IP (what a web process without ARRAKIS_PUBLIC_URL
        serves), so whoever can write to Redis cannot send members' links to a site of their own."""
        if self.follow_web:
            served = self.links.announced()
            if served and _local_url(served):
                return served.rstrip("/")
        return self.base

    def announce(self, url: str) -> None:
        """`arrakis web` says where it serves, for the links other processes make."""
        self.base = url.rstrip("/")
        if self.follow_web:
            self.links.announce(self.base)

    def withdraw(self) -> None:
        """`arrakis web` stops: its address is no longer where links should go."""
        if self.follow_web:
            self.links.withdraw(self.base)

    def link_for(self, guild_id: str, discord_id: str) -> VerifyLink:
        """A one-time link for this member of this guild's community."""
        discord_id = check_discord_id(discord_id)
        c = self.members.community(guild_id)
        token = secrets.token_urlsafe(24)
        self.links.put(token, {"community": str(c.id), "guild": str(guild_id), "name": c.name,
                               "discord_id": discord_id}, LINK_TTL)
        return VerifyLink(f"{self.public_url()}/verify/{token}", LINK_TTL)

    def describe(self, token: str) -> dict:
        """What the page shows: the community's name and who is linking (or SignInError)."""
        if not _TOKEN.match(token or ""):
            raise SignInError(EXPIRED)
        link = self.links.get(token)
        if link is None:
            raise SignInError(EXPIRED)
        return link

    def challenge(self, token: str, address: str) -> str:
        """The message for the wallet at ``address`` to sign."""
        link = self.describe(token)
        return self.wallets.start(link["community"], link["discord_id"], address).message

    def complete(self, token: str, message: str, signature: str) -> Linked:
        """Check the signature, link the wallet, use the link up, and refresh the member. One
        completion of a link at a time: a second one sent meanwhile is refused in plain words."""
        link = self.describe(token)
        if not self.links.claim(token, seconds=60):
            raise SignInError(BUSY)
        try:
            linked = self.wallets.complete(link["community"], link["discord_id"], message, signature,
                                           actor="member")
            self.links.use_up(token)
        finally:
            self.links.unclaim(token)
        wallet = linked.wallet_address if linked else ""
        try:
            report = self.members.sync_now(link["guild"], actor=f"discord:{link['discord_id']}")
            roles = ("your roles are being updated" if report.role_updates
                     else "your roles are already right") if not report.paused else \
                "your roles wait for an operator (a large change is being checked)"
        except ArrakisError as exc:  # linked all the same; the next sync sets the roles
            log.warning("wallet linked but the refresh did not run: %s", exc)
            roles = "your roles follow at the next sync"
        view = self.members.profile(link["guild"], link["discord_id"])
        return Linked(wallet or (view.wallets[0] if view.wallets else ""), link["name"], view.tier, view.rank, roles)
