"""Import a legacy single-tenant (v4) SQLite ``profiles.db`` into one community.

The v4 store has three tables::

    member_profiles (id INTEGER PRIMARY KEY, discord_id TEXT, wallet_address TEXT, tier TEXT,
                     joined_at TEXT|INTEGER)
    badges          (id INTEGER PRIMARY KEY, member_id INTEGER, badge_type TEXT,
                     awarded_at TEXT|INTEGER, awarded_by INTEGER NULL)   -- awarded_by -> member_profiles.id
    wallet_mappings (id INTEGER PRIMARY KEY, discord_id TEXT, wallet_address TEXT, linked_at TEXT|INTEGER)

Timestamps are ISO-8601 text (naive means UTC) or Unix seconds/milliseconds.

The import checks every row first and refuses the whole file if any row is bad, listing each bad
row by table and id; then it writes everything in one tenant transaction, tagging each written
row with the import's id so that :meth:`LegacyImporter.rollback` removes exactly that.
"""

from __future__ import annotations

import hashlib
import sqlite3
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from ..errors import LegacyImportError, ValidationError
from ..storage.database import Database
from ..storage.legacy_imports import LegacyImportRepository, chunks
from ..domain.checksums import canonical_json, sha256_hex
from ..storage.repositories import WALLET_RE
from ..domain.validation import check_discord_id
from ..themes import theme_of

if TYPE_CHECKING:
    from ..storage.repos import Repositories

REQUIRED = {
    "member_profiles": {"id", "discord_id", "wallet_address", "tier", "joined_at"},
    "badges": {"id", "member_id", "badge_type", "awarded_at", "awarded_by"},
    "wallet_mappings": {"id", "discord_id", "wallet_address", "linked_at"},
}
TABLES = ("profiles", "badges", "wallet_links")

Progress = Callable[[str, int, int], None]  # (phase, done, total)


@dataclass
class LegacyMember:
    row_id: int
    discord_id: str
    wallet: str | None
    tier: str | None
    joined_at: datetime


@dataclass
class LegacyBadge:
    row_id: int
    member_id: int
    badge_type: str
    awarded_at: datetime
    awarded_by: int | None


@dataclass
class LegacyData:
    members: list[LegacyMember] = field(default_factory=list)
    badges: list[LegacyBadge] = field(default_factory=list)
    wallets: list[tuple[int, str, str]] = field(default_factory=list)  # (row id, discord id, wallet)
    checksum: str = ""

    def canonical(self) -> dict[str, list[tuple]]:
        """Rows in the form both sides are compared in (source here, target in validate)."""
        by_id = {m.row_id: m for m in self.members}
        return {
            "profiles": [(m.discord_id, m.wallet or "", m.tier or "", _iso(m.joined_at)) for m in self.members],
            "badges": [(by_id[b.member_id].discord_id, b.badge_type, _iso(b.awarded_at),
                        by_id[b.awarded_by].discord_id if b.awarded_by else "") for b in self.badges],
            "wallet_links": sorted({(d, w) for _, d, w in self.wallets}
                                   | {(m.discord_id, m.wallet) for m in self.members if m.wallet}),
        }


@dataclass(frozen=True)
class ImportResult:
    import_id: uuid.UUID | None
    dry_run: bool
    counts: dict[str, int]

    def as_dict(self) -> dict:
        return {"import_id": str(self.import_id) if self.import_id else None, "dry_run": self.dry_run,
                "counts": self.counts}


@dataclass(frozen=True)
class TableCheck:
    table: str
    source_count: int
    target_count: int
    source_checksum: str
    target_checksum: str

    @property
    def ok(self) -> bool:
        return self.source_count == self.target_count and self.source_checksum == self.target_checksum


@dataclass(frozen=True)
class ValidationReport:
    import_id: uuid.UUID
    tables: list[TableCheck]

    @property
    def ok(self) -> bool:
        return all(t.ok for t in self.tables)

    def as_dict(self) -> dict:
        return {"import_id": str(self.import_id), "ok": self.ok,
                "tables": [{**t.__dict__, "ok": t.ok} for t in self.tables]}


def _iso(ts: datetime) -> str:
    return ts.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_time(value) -> datetime:
    if isinstance(value, bool) or value is None:
        raise ValueError("missing")
    if isinstance(value, (int, float)):
        seconds = value / 1000 if value > 1e11 else value
        return datetime.fromtimestamp(seconds, tz=timezone.utc)
    text = str(value).strip()
    if text.isdigit():
        return _parse_time(int(text))
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _checksum(rows: list[tuple]) -> str:
    return sha256_hex(canonical_json(sorted(rows)))


def read_legacy(path: str | Path, theme) -> tuple[LegacyData, list[str]]:
    """Read and check a v4 file. Returns the data and a list of problems (empty when clean).

    Raises :class:`LegacyImportError` when the file itself cannot be read as a v4 store.
    """
    path = Path(path)
    if not path.is_file():
        raise LegacyImportError(f"{path} does not exist or is not a file")
    raw = path.read_bytes()
    try:
        conn = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise LegacyImportError(f"{path.name} could not be opened as SQLite: {exc}") from exc
    try:
        try:
            check = conn.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise LegacyImportError(f"{path.name} is damaged (SQLite quick_check: {check})")
            present = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            for table, columns in REQUIRED.items():
                if table not in present:
                    raise LegacyImportError(f"{path.name} is not a v4 profiles database: table {table} is missing")
                have = {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}
                if not columns <= have:
                    raise LegacyImportError(f"{path.name}: table {table} lacks column(s) "
                                            + ", ".join(sorted(columns - have)))
            members = conn.execute(
                "SELECT id, discord_id, wallet_address, tier, joined_at FROM member_profiles ORDER BY id").fetchall()
            badges = conn.execute(
                "SELECT id, member_id, badge_type, awarded_at, awarded_by FROM badges ORDER BY id").fetchall()
            wallets = conn.execute(
                "SELECT id, discord_id, wallet_address, linked_at FROM wallet_mappings ORDER BY id").fetchall()
        except sqlite3.DatabaseError as exc:
            raise LegacyImportError(f"{path.name} is not a readable SQLite database ({exc})") from exc
    finally:
        conn.close()

    tiers = {name.lower(): name for name in theme.tier_names}
    badge_types = set(theme.badge_ids)
    problems: list[str] = []
    data = LegacyData(checksum=hashlib.sha256(raw).hexdigest())

    seen_discord: dict[str, int] = {}
    wallet_owner: dict[str, str] = {}

    def claim_wallet(where: str, wallet, discord_id: str) -> str | None:
        """The normalised wallet, or None after recording why it cannot be used."""
        if not WALLET_RE.match(str(wallet or "").strip()):
            problems.append(f"{where}: malformed wallet address {str(wallet)[:60]!r}")
            return None
        wallet = str(wallet).strip().lower()
        if wallet_owner.setdefault(wallet, discord_id) != discord_id:
            problems.append(f"{where}: wallet {wallet} is also claimed by member {wallet_owner[wallet]}")
            return None
        return wallet
    for row_id, discord_id, wallet, tier, joined_at in members:
        where = f"member_profiles row {row_id}"
        try:
            discord_id = check_discord_id(discord_id)
        except ValidationError:
            problems.append(f"{where}: Discord id {discord_id!r} is not a number")
            continue
        if discord_id in seen_discord:
            problems.append(f"{where}: Discord id {discord_id} repeats row {seen_discord[discord_id]}")
            continue
        seen_discord[discord_id] = row_id
        if wallet is not None and str(wallet).strip() == "":
            wallet = None
        if wallet is not None:
            wallet = claim_wallet(where, wallet, discord_id)
            if wallet is None:
                continue
        if tier is not None and str(tier).strip():
            if str(tier).strip().lower() not in tiers:
                problems.append(f"{where}: tier {tier!r} is not a tier of the {theme.name} theme")
                continue
            tier = tiers[str(tier).strip().lower()]
        else:
            tier = None
        try:
            joined = _parse_time(joined_at)
        except (ValueError, OverflowError, OSError):
            problems.append(f"{where}: joined date {joined_at!r} is not a date")
            continue
        data.members.append(LegacyMember(row_id, discord_id, wallet, tier, joined))

    known = {m.row_id for m in data.members}
    all_member_ids = {r[0] for r in members}
    active: dict[tuple[int, str], int] = {}
    for row_id, member_id, badge_type, awarded_at, awarded_by in badges:
        where = f"badges row {row_id}"
        slug = str(badge_type or "").strip().lower().replace(" ", "_").replace("-", "_")
        if member_id not in all_member_ids:
            problems.append(f"{where}: member {member_id} does not exist")
            continue
        if slug not in badge_types:
            problems.append(f"{where}: unknown badge {badge_type!r} for the {theme.name} theme")
            continue
        if awarded_by is not None and awarded_by not in all_member_ids:
            problems.append(f"{where}: awarded by member {awarded_by}, who does not exist (dangling awarded-by)")
            continue
        if awarded_by is not None and awarded_by == member_id:
            problems.append(f"{where}: member {member_id} awarded the badge to themselves")
            continue
        if (member_id, slug) in active:
            problems.append(f"{where}: member {member_id} already has {slug} (row {active[(member_id, slug)]})")
            continue
        try:
            awarded = _parse_time(awarded_at)
        except (ValueError, OverflowError, OSError):
            problems.append(f"{where}: award time {awarded_at!r} is not a date")
            continue
        active[(member_id, slug)] = row_id
        if member_id in known and (awarded_by is None or awarded_by in known):
            data.badges.append(LegacyBadge(row_id, member_id, slug, awarded, awarded_by))

    for row_id, discord_id, wallet, _linked in wallets:
        where = f"wallet_mappings row {row_id}"
        discord_id = str(discord_id or "").strip()
        if discord_id not in seen_discord:
            problems.append(f"{where}: Discord id {discord_id!r} has no member profile")
            continue
        wallet = claim_wallet(where, wallet, discord_id)
        if wallet is not None:
            data.wallets.append((row_id, discord_id, wallet))
    return data, problems


class LegacyImporter:
    """Import, validate and roll back legacy SQLite stores, one community at a time."""

    def __init__(self, db: Database, repos: Repositories, *, progress: Progress | None = None) -> None:
        self.db = db
        self.repos = repos
        self.imports = LegacyImportRepository(db)
        self.progress = progress or (lambda phase, done, total: None)

    def import_file(self, path: str | Path, community_id: uuid.UUID | str, *, dry_run: bool = False,
                    actor: str = "cli") -> ImportResult:
        """Check the whole file, then (unless ``dry_run``) write it in one transaction."""
        with self.db.tenant(community_id):
            community = self.repos.communities.current()
            data, problems = read_legacy(path, theme_of(community))
            existing = self.imports.discord_ids()
            problems += [f"member_profiles row {m.row_id}: member {m.discord_id} already exists in this community"
                         for m in data.members if m.discord_id in existing]
            if problems:
                raise LegacyImportError(
                    f"{Path(path).name} has {len(problems)} bad row(s); nothing was imported",
                    problems=problems, hint="fix the rows listed and run the import again")
            canon = data.canonical()
            counts = {t: len(canon[t]) for t in TABLES}
            if dry_run:
                return ImportResult(None, True, counts)

            total, done = sum(counts.values()), 0
            import_id = uuid.uuid4()
            self.imports.start(import_id, source_name=Path(path).name, source_checksum=data.checksum,
                               counts=counts, actor=actor)
            new_id = {m.row_id: uuid.uuid4() for m in data.members}
            by_discord = {m.discord_id: new_id[m.row_id] for m in data.members}
            for chunk in chunks(data.members):
                self.imports.insert_profiles(
                    import_id, [(new_id[m.row_id], m.discord_id, m.wallet, m.tier, m.joined_at) for m in chunk])
                done += len(chunk)
                self.progress("members", done, total)
            for chunk in chunks(canon["wallet_links"]):
                self.imports.insert_wallet_links(import_id, [(by_discord[d], w) for d, w in chunk])
                done += len(chunk)
                self.progress("wallets", done, total)
            for chunk in chunks(data.badges):
                self.imports.insert_badges(import_id, [
                    (new_id[b.member_id], b.badge_type, b.awarded_at,
                     new_id[b.awarded_by] if b.awarded_by else None, {"legacy_row": b.row_id}) for b in chunk])
                done += len(chunk)
                self.progress("badges", done, total)
            self.repos.audit.append(actor, "legacy.imported",
                                    {"import_id": str(import_id), "source": Path(path).name,
                                     "checksum": data.checksum, "counts": counts})
            return ImportResult(import_id, False, counts)

    def validate(self, path: str | Path, community_id: uuid.UUID | str) -> ValidationReport:
        """Compare counts and per-table checksums of the source file with what the last import wrote."""
        with self.db.tenant(community_id):
            community = self.repos.communities.current()
            data, problems = read_legacy(path, theme_of(community))
            if problems:
                raise LegacyImportError(f"{Path(path).name} has {len(problems)} bad row(s); it cannot match an import",
                                        problems=problems)
            imp = self.imports.latest()
            source = data.canonical()
            written = self.imports.written(imp["id"])
            target = {
                "profiles": [(d, w, t, _iso(j)) for d, w, t, j in written["profiles"]],
                "badges": [(h, t, _iso(at), g) for h, t, at, g in written["badges"]],
                "wallet_links": written["wallet_links"],
            }
            checks = [TableCheck(t, len(source[t]), len(target[t]), _checksum(source[t]), _checksum(target[t]))
                      for t in TABLES]
            return ValidationReport(imp["id"], checks)

    def rollback(self, community_id: uuid.UUID | str, *, actor: str = "cli") -> dict[str, int]:
        """Remove exactly the rows the community's latest import wrote, in one transaction."""
        with self.db.tenant(community_id):
            imp = self.imports.latest()
            outside = self.imports.references_from_outside(imp["id"])
            if outside:
                raise LegacyImportError(
                    f"{outside} badge(s) awarded since the import name imported members as giver; roll back refused",
                    hint="revoke those badges first")
            removed = self.imports.remove(imp["id"])
            self.repos.audit.append(actor, "legacy.rolled_back", {"import_id": str(imp["id"]), "removed": removed})
            return removed
