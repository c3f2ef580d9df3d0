"""``arrakis wallets`` and ``arrakis eligibility``."""

from __future__ import annotations

from pathlib import Path

import click

from ..domain.chain import Asset
from .base import CliState, command_group
from .output import EXIT_PARTIAL, Output, phases, reports


wallets = command_group("wallets", "Link members' wallets.")


@wallets.command("import")
@click.argument("community_id")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@reports
def wallets_import(state: CliState, community_id: str, path: Path) -> Output:
    """Link wallets from a CSV (columns discord_id, wallet_address). Good rows are linked even when
    others are refused; refused rows are listed with their line, and the exit status is then 3."""
    r = state.engine.wallets.import_csv(community_id, path, actor="cli")
    summary = f"linked {r['linked']} wallet(s)"
    if r["unchanged"]:
        summary += f"; {r['unchanged']} already linked"
    if r["repeated"]:
        summary += f"; {r['repeated']} repeated line(s) skipped"
    if r["errors"]:
        summary += f"; {len(r['errors'])} row(s) refused, fix them and import again (linked rows stay linked)"
    return Output(r, [summary] + [f"  - {e}" for e in r["errors"]], exit_code=EXIT_PARTIAL if r["errors"] else 0)


eligibility = command_group("eligibility", "Who holds what, and the tiers and badges it earns.")


@eligibility.command("add-asset")
@click.argument("community_id")
@click.option("--chain", "chain_name", required=True, help="Chain name, e.g. berachain.")
@click.option("--kind", required=True, type=click.Choice(["native", "erc20", "erc721", "erc1155"]))
@click.option("--address", default=None, help="Contract address (not for the native coin).")
@click.option("--token-id", type=int, default=None, help="Token id (ERC-1155).")
@click.option("--decimals", type=int, default=18, show_default=True)
@click.option("--purpose", type=click.Choice(["rank", "gate"]), default="rank", show_default=True,
              help="rank: members are ranked by it; gate: members need at least --min-amount.")
@click.option("--min-amount", type=int, default=0, show_default=True, help="In the asset's base units.")
@click.option("--never-redeemed", is_flag=True, help="Exclude wallets that ever redeemed (burned) it.")
@reports
def eligibility_add_asset(state: CliState, community_id: str, chain_name: str, kind: str, address: str | None,
                          token_id: int | None, decimals: int, purpose: str, min_amount: int,
                          never_redeemed: bool, as_json: bool) -> Output:
    """Set an asset that ranks or gates the community's members. A token or NFT contract's
    holdings are then indexed from its Transfer logs up to the confirmed block (with a progress
    bar; interrupted, it resumes where it stopped), so the live watcher can follow and undo them;
    without an endpoint for the chain, the watcher indexes it when it starts."""
    asset = Asset(chain_name, kind, address, token_id, decimals, never_redeemed=never_redeemed)
    state.engine.eligibility.configure(community_id, asset, purpose=purpose, min_amount=min_amount)
    lines = [f"{purpose} asset set: {asset.key}"]
    with phases(as_json) as progress:
        report = state.engine.eligibility.index(
            community_id, asset, progress=None if progress is None else (lambda done, total: progress(
                "indexing transfers", done, total)))
    if report is not None:
        lines.append(f"holdings indexed from block {report.from_block} to {report.to_block} "
                     f"({report.logs} transfer log(s))")
    elif asset.kind != "native":
        lines.append(f"holdings not indexed yet: no endpoint for {chain_name} (RPC_URLS_{chain_name.upper()}); "
                     "the watcher indexes them when it starts")
    return Output({"purpose": purpose, "asset": asset.key,
                   "index": report.as_dict() if report is not None else None}, lines)


@eligibility.command("sync")
@click.argument("community_id")
@reports
def eligibility_sync(state: CliState, community_id: str, as_json: bool) -> Output:
    """Read every linked wallet, rank, and update tiers and badges; print what changed."""
    with phases(as_json) as progress:
        diff = state.engine.eligibility.run(community_id, actor="cli", progress=progress)
    lines = [diff.summary()]
    for label, ids in (("promoted", diff.promoted), ("demoted", diff.demoted), ("joined", diff.joined),
                       ("left", diff.left), ("in grace", diff.in_grace), ("unknown (kept as they were)", diff.unknown)):
        if ids:
            lines.append(f"  {label}: {', '.join(ids[:20])}{' ...' if len(ids) > 20 else ''}")
    lines += [f"  {problem}" for problem in diff.problems()]
    if diff.nothing_read:
        lines.append("  nothing could be read: no member's standing changed")
    # Exit 1 when the sync learnt nothing (every member unknown): a check that found a problem.
    return Output({**diff.as_dict(), "problems": diff.problems()}, lines, exit_code=1 if diff.nothing_read else 0)


@eligibility.command("status")
@reports
def eligibility_status(state: CliState) -> Output:
    """Chain and Score Service status: mode full / partial / cached, breaker, cache age."""
    status = state.engine.orchestrator.status()
    status["chains"] = sorted(state.engine.orchestrator.readers)
    age = status["cache_age_seconds"]
    return Output(status, [f"mode {status['mode']}; Score Service {status['score_service']}"
                           + (f", breaker {status['breaker']}" if status.get("breaker") else "")
                           + (f"; newest cached score {age:.0f} s old" if age is not None else "; nothing cached")
                           + f"; chains: {', '.join(status['chains']) or 'none configured'}"])
