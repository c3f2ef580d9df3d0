"""``arrakis operators``, ``mfa``, ``signing``, ``killswitch``, ``audit checkpoint`` and ``audit digests``.

Who is acting comes from ``--as NAME`` (or ``ARRAKIS_OPERATOR``); a privileged command proves it
with ``--code`` (the authenticator's 6 digits or a backup code), asked for without echo when the
terminal is interactive and no code was given.
"""

from __future__ import annotations


import sys

import click

from ..errors import PermissionDenied, ValidationError
from ..security.authz import may_manage_operators
from ..signing.service import PLATFORM_KEY, community_key
from .base import CliState, command_group
from .output import Output, reports
from .status import audit


def identity(f):
    """Add ``--as`` and ``--code`` to a command."""
    f = click.option("--code", default=None, help="Your TOTP code (or a backup code); asked for when missing.")(f)
    return click.option("--as", "as_name", envvar="ARRAKIS_OPERATOR", default=None, metavar="NAME",
                        help="The operator acting (default: $ARRAKIS_OPERATOR).")(f)


def ask_code(code: str | None) -> str | None:
    if code:
        return code
    if sys.stdin.isatty():
        return click.prompt("Code from your authenticator app (or a backup code)", hide_input=True, default="",
                            show_default=False) or None
    return None


def acting(state: CliState, as_name: str | None):
    if not as_name:
        raise ValidationError("say who is acting: --as NAME or ARRAKIS_OPERATOR", field="as")
    return state.engine.operators.get(as_name)


def prove(state: CliState, as_name: str | None, code: str | None, action: str):
    """The acting operator, after their second factor passed for ``action``."""
    op = acting(state, as_name)
    state.engine.mfa.verify(op.name, ask_code(code), action=action)
    return op


def authorised(state: CliState, as_name: str | None, code: str | None, action: str, rule):
    """The acting operator, once ``rule(actor)`` allows them and their code passed for ``action``
    (authorisation first: someone who may not act burns no code)."""
    op = acting(state, as_name)
    decision = rule(op.actor())
    if not decision.allowed:
        raise PermissionDenied(decision.reason)
    state.engine.mfa.verify(op.name, ask_code(code), action=action)
    return op


# --- operators ---------------------------------------------------------------------------------

operators = command_group("operators", "Platform operators and their roles (platform_admin, approver, auditor).")


def _admin_or_first(state: CliState, as_name, code):
    """A platform admin with their code, or nobody at all when no operator exists yet."""
    if not state.engine.operators.any():
        return "bootstrap"
    return f"operator:{authorised(state, as_name, code, 'MANAGE_OPERATORS', may_manage_operators).name}"


@operators.command("add")
@click.argument("name")
@click.option("--role", "roles", multiple=True, required=True, help="platform_admin, approver or auditor (repeat).")
@click.option("--discord", "discord_id", default=None, help="Their Discord user id (for the bot).")
@click.option("--slack", "slack_id", default=None, help="Their Slack user id (for approvals).")
@identity
@reports
def operators_add(state: CliState, name, roles, discord_id, slack_id, as_name, code) -> Output:
    """Add an operator. The first operator needs nobody's approval; later ones need a platform admin."""
    by = _admin_or_first(state, as_name, code)
    op = state.engine.operators.add(name, roles, actor=by, discord_user_id=discord_id, slack_user_id=slack_id)
    return Output(op.to_dict(), [f"operator {op.name} added with roles {', '.join(op.roles)}",
                                 f"next: arrakis mfa enroll {op.name}"])


@operators.command("list")
@reports
def operators_list(state: CliState) -> Output:
    """Every operator, their roles and whether they have a second factor."""
    ops = state.engine.operators.list()
    lines = [f"{o.name:<20} {','.join(o.roles):<32} mfa {'yes' if o.enrolled else 'NO':<4} "
             f"discord {o.discord_user_id or '-'}" for o in ops] or ["no operators yet: arrakis operators add NAME "
                                                                    "--role platform_admin"]
    return Output([o.to_dict() for o in ops], lines)


def _role_change(grant: bool):
    @click.argument("name")
    @click.argument("role")
    @identity
    @reports
    def change(state: CliState, name, role, as_name, code) -> Output:
        op = authorised(state, as_name, code, "MANAGE_OPERATORS", may_manage_operators)
        svc = state.engine.operators
        changed = (svc.grant if grant else svc.revoke)(name, role, actor=f"operator:{op.name}")
        return Output(changed.to_dict(), [f"{changed.name} now has: {', '.join(changed.roles) or 'no roles'}"])
    return change


operators.command("grant", help="Give an operator a role (platform admin with a code).")(_role_change(True))
operators.command("revoke", help="Take a role from an operator (platform admin with a code).")(_role_change(False))


# --- MFA ---------------------------------------------------------------------------------------

mfa = command_group("mfa", "Second factor (TOTP) for operators.")


@mfa.command("enroll")
@click.argument("name")
@identity
@reports
def mfa_enroll(state: CliState, name, as_name, code, as_json: bool) -> Output:
    """Give NAME an authenticator secret and 10 backup codes, shown once. Re-enrolling (a lost
    device) needs another platform admin and their code."""
    target = state.engine.operators.get(name)
    by = f"operator:{name}"
    if target.enrolled:
        op = acting(state, as_name)
        if op.name == target.name:
            raise PermissionDenied(f"{name} already has a second factor; another platform admin must re-enrol a "
                                   "lost device")
        by = f"operator:{authorised(state, as_name, code, 'MFA_RESET', may_manage_operators).name}"
    enrolment = state.engine.mfa.enroll(name, actor=by)
    data = {"operator": name, "otpauth_uri": enrolment.uri, "backup_codes": list(enrolment.backup_codes)}
    lines = [f"Second factor for {name}. Shown once: keep it safe.", "",
             "Scan this in an authenticator app, or enter the URI:", enrolment.uri]
    if not as_json:
        try:
            import io

            import segno

            buf = io.StringIO()
            segno.make(enrolment.uri, error="m").terminal(out=buf, compact=True)
            lines += ["", buf.getvalue()]
        except Exception:  # a QR code is a convenience; the URI above is enough
            pass
    lines += ["Backup codes (each works once):"] + [f"  {c}" for c in enrolment.backup_codes]
    return Output(data, lines)


# --- signing -----------------------------------------------------------------------------------

signing = command_group("signing", "Signing keys for manifests and audit checkpoints (Vault or the local key file).")


def _key(community_id: str | None) -> str:
    if community_id is None:
        return PLATFORM_KEY
    from ..storage.database import validate_tenant_id

    return community_key(validate_tenant_id(community_id))


@signing.command("status")
@click.argument("community_id", required=False)
@reports
def signing_status(state: CliState, community_id) -> Output:
    """The signing backend, reachability, and key versions (the platform's, or one community's)."""
    rows = state.engine.signing.status([_key(community_id)])
    lines = []
    for r in rows:
        where = "reachable" if r["reachable"] else f"NOT reachable ({r.get('problem')})"
        lines.append(f"{r['key']}: {r['backend']}, {where}; latest version {r['latest_version']}, "
                     f"versions kept {r['versions']}" + (f"; CUT OFF: {r['cut_off']}" if r["cut_off"] else ""))
    return Output(rows, lines, exit_code=0 if all(r["reachable"] for r in rows) else 1)


@signing.command("public-key")
@click.argument("community_id", required=False)
@reports
def signing_public_key(state: CliState, community_id) -> Output:
    """The public keys (every version) that verify signatures, to check them elsewhere."""
    key = _key(community_id)
    keys = state.engine.signing.public_keys(key)
    return Output({"key": key, "public_keys": {str(v): k for v, k in keys.items()}},
                  [f"{key} v{v}: {k}" for v, k in sorted(keys.items())] or [f"{key} has no key yet"])


@signing.command("rotate")
@click.argument("community_id", required=False)
@identity
@reports
def signing_rotate(state: CliState, community_id, as_name, code) -> Output:
    """Start a new key version (platform admin with a code). New signatures use it; old ones
    still verify."""
    key = _key(community_id)
    version = state.engine.key_rotation.rotate(acting(state, as_name).actor(), key, code=ask_code(code))
    return Output({"key": key, "version": version}, [f"{key} now signs with version {version}"])


# --- kill switch -------------------------------------------------------------------------------

killswitch = command_group("killswitch", "Stop Discord changes, wizard sessions and signing at once.")


def _scope_options(f):
    f = click.option("--user", "user_id", default=None, help="Discord user id (scope user).")(f)
    f = click.option("--community", "community_id", default=None, help="Community id (scope community).")(f)
    return click.option("--scope", type=click.Choice(["global", "community", "user"]), required=True)(f)


def _report_lines(report) -> list[str]:
    lines = [f"kill switch {report.action} for {report.scope}" + (f" {report.target}" if report.target else "")
             + f" in {report.total_ms:.0f} ms"]
    lines += [f"  {'ok ' if p.ok else 'FAILED'} {p.part:<38} {p.ms:>7.1f} ms  {p.detail}" for p in report.parts]
    return lines


@killswitch.command("activate")
@_scope_options
@click.option("--reason", required=True, help="Why: shown to everyone whose work is held.")
@identity
@reports
def killswitch_activate(state: CliState, scope, community_id, user_id, reason, as_name, code) -> Output:
    """Freeze Discord changes, revoke wizard sessions and signing for a scope."""
    op = acting(state, as_name)
    report = state.engine.killswitch.activate(op.actor(), scope=scope, community_id=community_id, user_id=user_id,
                                              reason=reason, code=ask_code(code))
    release = state.engine.killswitch.release_command({"scope": report.scope, "target": report.target})
    return Output(report.to_dict(), _report_lines(report) + [f"release: {release} --as NAME"])


@killswitch.command("release")
@_scope_options
@identity
@reports
def killswitch_release(state: CliState, scope, community_id, user_id, as_name, code) -> Output:
    """Lift a kill switch: held work resumes where it stopped."""
    op = acting(state, as_name)
    report = state.engine.killswitch.release(op.actor(), scope=scope, community_id=community_id, user_id=user_id,
                                             code=ask_code(code))
    return Output(report.to_dict(), _report_lines(report))


@killswitch.command("status")
@reports
def killswitch_status(state: CliState) -> Output:
    """What is frozen now, by whom and why, and how many calls are held."""
    st = state.engine.killswitch.status()
    import time

    lines = [f"{a['scope']:<9} {a['target'] or 'everything':<38} by {a['by']:<22} "
             f"{(time.time() - a['since']) / 60:>5.1f} min ago  {a['reason']}" for a in st["active"]]
    lines = lines or ["nothing is frozen"]
    lines.append(f"{len(st['held_calls'])} Discord call(s) held right now")
    return Output(st, lines)


# --- audit checkpoints -------------------------------------------------------------------------

@audit.command("checkpoint")
@click.argument("community_id", required=False)
@reports
def audit_checkpoint(state: CliState, community_id) -> Output:
    """Sign the chain's current head (a community's, or the platform's) in the database, and
    write an audit digest of every chain to the object store now (what the scheduler does every
    ARRAKIS_AUDIT_DIGEST_INTERVAL seconds): rows up to it can no longer be rewritten unnoticed,
    even by the database's owner."""
    cp = state.engine.audit_check.checkpoint(community_id)
    digest = state.engine.audit_check.digest(reason="asked by an operator")
    lines = [f"signed checkpoint of {cp['chain']} at row {cp['seq']}" if cp
             else "the chain is empty: nothing to sign in the database yet"]
    if digest:
        lines.append(f"audit digest #{digest['number']} written to {digest['key']}: {digest['rows']} new row(s) in "
                     f"{digest['chains']} chain(s)")
        lines += [f"  chain {chain} NOT extended (it no longer matches what was anchored): {'; '.join(p[:3])}"
                  for chain, p in digest["refused"].items()]
    return Output({"checkpoint": cp, "digest": digest}, lines)


@audit.command("digests")
@click.option("--folder", type=click.Path(file_okay=False, exists=True), default=None,
              help="A copy of the store (its audit-digests/ folder's parent), checked without the database.")
@click.option("--public-keys", "public_keys", type=click.File("r"), default=None,
              help="The platform key's public keys, as `arrakis signing public-key --json` prints them "
                   "(with --folder).")
@reports
def audit_digests(state: CliState, folder, public_keys) -> Output:
    """Check the audit digests in the object store: every signature, and that none is missing or
    changed (each signs the one before). With --folder and --public-keys it needs nothing else:
    no database, no signer."""
    from ..security.anchor import verify_digest_files

    if folder or public_keys:
        if not (folder and public_keys):
            raise ValidationError("checking without the database needs both --folder and --public-keys",
                                  field="public-keys")
        import json as _json
        from pathlib import Path

        from ..storage.s3_shadow import LocalObjectStore

        try:
            keys = _json.load(public_keys)
            keys = keys.get("public_keys", keys)
            keys = {int(v): str(k) for v, k in keys.items()}
        except (ValueError, AttributeError, TypeError):
            raise ValidationError("--public-keys must be the JSON `arrakis signing public-key --json` prints",
                                  field="public-keys") from None
        report = verify_digest_files(LocalObjectStore(Path(folder)), keys)
    else:
        report = state.engine.audit_anchor.digests()
    latest = report.latest
    lines = [f"{len(report.digests)} digest(s); " + ("all check out" if report.ok else "PROBLEMS")
             + (f"; latest #{latest.number} at {latest.body.get('created_at')}" if latest else "")]
    lines += [f"  - {p}" for p in report.problems]
    return Output(report.as_dict(), lines, exit_code=0 if report.ok else 1)
