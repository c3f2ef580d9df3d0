"""The chain domain: the supported chains, assets, balances and scores, and address checks. The
one rule that matters most: a read that failed is UNKNOWN, never 0.

It depends on nothing but the engine's errors, so storage, use cases and adapters can all read it
(storage used to reach up into chain/ for these types)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from ..errors import ChainReadError, ValidationError  # noqa: F401 (ChainReadError: part of this module's answers)

MULTICALL3 = "0xcA11bde05977b3631167028862bE2a173976CA11"
ASSET_KINDS = ("native", "erc20", "erc721", "erc1155")
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")

# The chains Arrakis reads, by name, with their chain ids.
CHAINS: dict[str, int] = {
    "berachain": 80094,
    "ethereum": 1,
    "arbitrum": 42161,
    "base": 8453,
    "polygon": 137,
    "optimism": 10,
    "avalanche": 43114,
}


class _Unknown:
    """The result of a read that failed. It has no truth value on purpose (``bool(UNKNOWN)``
    raises), so it can never pass for "no balance": compare with ``is UNKNOWN``."""

    _instance = None

    def __new__(cls):
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNKNOWN"

    def __bool__(self) -> bool:
        raise TypeError("an UNKNOWN chain read has no truth value; check `is UNKNOWN` first")


UNKNOWN = _Unknown()


def check_address(address: str, field: str = "address") -> str:
    """Lower-case 0x address, or a ValidationError naming the field."""
    if not isinstance(address, str) or not _ADDRESS.match(address.strip()):
        raise ValidationError(f"{field} must be 0x followed by 40 hex digits", field=field)
    return address.strip().lower()


@dataclass(frozen=True)
class Asset:
    """Something on a chain that decides eligibility.

    ``kind``: native, erc20, erc721 or erc1155. ``address`` is None for the native coin;
    ``token_id`` is for ERC-1155 (and ERC-721 by id). ``never_redeemed``: exclude wallets that
    ever sent the asset to the zero address from native ranking.
    """

    chain: str
    kind: str
    address: str | None = None
    token_id: int | None = None
    decimals: int = 18
    symbol: str = ""
    never_redeemed: bool = False

    def __post_init__(self) -> None:
        if self.chain not in CHAINS:
            raise ValidationError(f"unknown chain '{self.chain}'; supported: {', '.join(CHAINS)}", field="chain")
        if self.kind not in ASSET_KINDS:
            raise ValidationError(f"unknown asset kind '{self.kind}'; use one of {', '.join(ASSET_KINDS)}",
                                  field="kind")
        if self.kind == "native":
            if self.address is not None:
                raise ValidationError("the native coin has no contract address", field="address")
        else:
            object.__setattr__(self, "address", check_address(self.address or "", "asset address"))
        if self.kind == "erc1155" and self.token_id is None:
            raise ValidationError("an ERC-1155 asset needs a token id", field="token_id")
        if not 0 <= self.decimals <= 36:
            raise ValidationError("decimals must be between 0 and 36", field="decimals")

    @property
    def key(self) -> str:
        """Stable identifier for storage: chain:kind:address[:id]."""
        parts = [self.chain, self.kind, self.address or "native"]
        if self.token_id is not None:
            parts.append(str(self.token_id))
        return ":".join(parts)

    def as_dict(self) -> dict:
        return {"chain": self.chain, "kind": self.kind, "address": self.address, "token_id": self.token_id,
                "decimals": self.decimals, "symbol": self.symbol, "never_redeemed": self.never_redeemed}

    @classmethod
    def from_dict(cls, d: dict) -> "Asset":
        return cls(chain=d["chain"], kind=d["kind"], address=d.get("address"), token_id=d.get("token_id"),
                   decimals=int(d.get("decimals", 18)), symbol=d.get("symbol", ""),
                   never_redeemed=bool(d.get("never_redeemed", False)))


@dataclass(frozen=True)
class Score:
    address: str
    rank: int | None
    conviction: Decimal  # normalised, 0..100,000
    activity: Decimal  # normalised, 0..100,000
    held: Decimal
    claimed: Decimal
    burned: Decimal
    first_claim_at: datetime | None
    last_activity_at: datetime | None

    @property
    def never_redeemed(self) -> bool:
        return self.burned == 0

    def as_json(self) -> dict:
        return {"address": self.address, "rank": self.rank, "conviction": str(self.conviction),
                "activity": str(self.activity), "held": str(self.held), "claimed": str(self.claimed),
                "burned": str(self.burned),
                "first_claim_at": self.first_claim_at.isoformat() if self.first_claim_at else None,
                "last_activity_at": self.last_activity_at.isoformat() if self.last_activity_at else None}

    @classmethod
    def from_json(cls, d: dict) -> "Score":
        """From our own cached form (already normalised)."""
        return cls(d["address"], d["rank"], Decimal(d["conviction"]), Decimal(d["activity"]), Decimal(d["held"]),
                   Decimal(d["claimed"]), Decimal(d["burned"]), _cached_time(d.get("first_claim_at")),
                   _cached_time(d.get("last_activity_at")))


def _cached_time(value) -> datetime | None:
    return datetime.fromisoformat(value) if value else None
