"""``arrakis manifests``: manifest history in the shadow store."""

from __future__ import annotations

import json

import click

from .base import CliState, command_group
from .output import Output, reports


manifests = command_group("manifests", "Manifest history in the shadow store (S3 or the local folder).")


@manifests.command("flush")
@reports
def manifests_flush(state: CliState) -> Output:
    """Send what the outbox holds to the shadow store."""
    out = state.engine.archive.flush()
    return Output(out, [f"sent {out['delivered']}; {out['pending']} still waiting"
                        + ("; the store is failing, will retry" if out["failed"] else "")])


@manifests.command("list")
@click.argument("community_id")
@click.option("--last", type=click.IntRange(min=1), default=None, help="Only the newest N versions.")
@reports
def manifests_list(state: CliState, community_id: str, last: int | None) -> Output:
    """Versions in the shadow store, oldest first."""
    versions = state.engine.archive.versions(community_id)
    versions = versions[-last:] if last else versions
    return Output(versions, [f"v{v['version']:<5} {v['checksum'][:16]}  {v['created_at']}  {v['created_by']}"
                             for v in versions])


@manifests.command("verify")
@click.argument("community_id")
@reports
def manifests_verify(state: CliState, community_id: str) -> Output:
    """Check every archived version against its checksum and signature; a mismatch says which
    failed: the file (missing), its checksum or its signature (exit 1)."""
    checks = state.engine.archive.verify(community_id)
    return Output(checks, [f"v{c['version']}: {'ok' if c['ok'] else 'MISMATCH: ' + _PROBLEMS[c['problem']]}"
                           for c in checks], exit_code=0 if all(c["ok"] for c in checks) else 1)


_PROBLEMS = {
    "file": "file missing (the version is in the index, its file is not in the store)",
    "checksum": "checksum (the file's contents do not match the checksum recorded for it: the file was changed)",
    "signature": "signature (the checksum carries no valid signature: the file and its index entry were changed, "
                 "or signed with a key this installation does not have)",
}


@manifests.command("diff")
@click.argument("community_id")
@click.argument("a", type=int)
@click.argument("b", type=int)
@reports
def manifests_diff(state: CliState, community_id: str, a: int, b: int) -> Output:
    """What changed between two archived versions (JSON either way)."""
    diff = state.engine.archive.diff(community_id, a, b)
    return Output(diff, [json.dumps(diff, indent=2, default=str)])


@manifests.command("restore")
@click.argument("community_id")
@reports
def manifests_restore(state: CliState, community_id: str) -> Output:
    """Rebuild a community's manifests and shadow state from the shadow store."""
    out = state.engine.archive.restore(community_id)
    return Output(out, [f"restored manifest versions {out['manifests'] or 'none (all present)'}; "
                        f"{out['shadow_states']} shadow state(s)"])
