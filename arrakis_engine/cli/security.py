"""``arrakis operators``, ``mfa``, ``signing``, ``killswitch``, ``audit checkpoint`` and ``audit digests``.

Who is acting comes from ``--as NAME`` (or ``ARRAKIS_OPERATOR``); a privileged command proves it
with ``--code`` (the authenticator's 6 digits or a backup code), asked for without echo when the
terminal is interactive and no code was given.
"""

from __future__ import annotations


import sys

import click

from ..errors import PermissionDenied, ValidationError
from ..security.authz import ROLES, may_manage_operators
from ..security.operators import grant_number, validate_links, validate_name, validate_roles
from ..signing.signing_service import PLATFORM_KEY, community_key
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


def authorised(state: CliState, as_name: str | None, code: str | None, action: str, rule, what: str = "",
               before_code=None):
    """The acting operator, once ``rule(actor)`` allows them and their code passed for ``action``
    (authorisation first: someone who may not act burns no code, and their refusal is audited).
    Call it after the command's own input is checked: a typo costs no attempt."""
    return state.engine.operators.authorise(as_name, lambda: ask_code(code), action=action, rule=rule,
                                            what=what or action.lower(), before_code=before_code)


# --- operators ---------------------------------------------------------------------------------

operators = command_group("operators", "Platform operators and their roles (platform_admin, approver, auditor).")


@operators.command("add")
@click.argument("name")
@click.option("--role", "roles", multiple=True, required=True, help="platform_admin, approver or auditor (repeat).")
@click.option("--discord", "discord_id", default=None, help="Their Discord user id (the bot sends their enrolment "
              "token there).")
@click.option("--slack", "slack_id", default=None, help="Their Slack user id (approvals; their enrolment token goes "
              "there when they have no Discord id).")
@identity
@reports
def operators_add(state: CliState, name, roles, discord_id, slack_id, as_name, code) -> Output:
    """Add an operator (a platform admin with their code) and send them a one-time enrolment token
    by Discord or Slack direct message; never shown here. The very first operator needs nobody's
    approval and gets their token on this terminal."""
    validate_name(name)
    validate_roles(roles)
    validate_links(discord_id, slack_id)
    enrolment = state.engine.enrolment
    if enrolment.first_operator_needed():
        issued = enrolment.add_operator(name, roles, by=None, discord_user_id=discord_id, slack_user_id=slack_id)
        lines = [f"operator {name} added with roles {', '.join(issued.operator.roles)} (the first operator)",
                 f"enrolment token (works once, until {issued.expires_at:%Y-%m-%d %H:%M} UTC): {issued.token}",
                 f"next: arrakis mfa enroll {name} --token TOKEN"]
        return Output(issued.to_dict(), lines)
    enrolment.check_channel(name, discord_id, slack_id)  # before any code is asked: it costs no attempt
    by = authorised(state, as_name, code, "MANAGE_OPERATORS", may_manage_operators, "operators.add")
    issued = enrolment.add_operator(name, roles, by=by, discord_user_id=discord_id, slack_user_id=slack_id)
    lines = [f"operator {name} added with roles {', '.join(issued.operator.roles) or '(none yet)'}",
             f"their one-time enrolment token was sent to {issued.delivered_to} "
             f"(valid until {issued.expires_at:%Y-%m-%d %H:%M} UTC)",
             f"next, {name} runs: arrakis mfa enroll {name} --token TOKEN"]
    lines += [_waiting(g) for g in issued.pending]
    return Output(issued.to_dict(), lines)


def _waiting(g) -> str:
    return (f"{g.role} for {g.operator} waits for a second platform admin (grant {g.id}, until "
            f"{g.expires_at:%Y-%m-%d %H:%M} UTC): arrakis operators confirm {g.id} --as NAME --code CODE")


@operators.command("grants")
@reports
def operators_grants(state: CliState) -> Output:
    """Grants of approving roles waiting for a second platform admin."""
    pending = state.engine.operators.pending_grants()
    lines = [f"{g.id:<6} {g.role:<15} for {g.operator:<20} asked by {g.requested_by:<20} until "
             f"{g.expires_at:%Y-%m-%d %H:%M} UTC" for g in pending] or ["no grants waiting"]
    return Output([g.to_dict() for g in pending], lines)


def _grant_decision(confirm: bool):
    @click.argument("grant_id", metavar="GRANT")
    @identity
    @reports
    def decide(state: CliState, grant_id, as_name, code) -> Output:
        gid = grant_number(grant_id)
        verb = "confirm" if confirm else "refuse"
        op = authorised(state, as_name, code, "MANAGE_OPERATORS", may_manage_operators, f"operators.{verb}")
        svc = state.engine.operators
        changed = (svc.confirm_grant if confirm else svc.refuse_grant)(gid, by=op)
        done = "confirmed" if confirm else "refused"
        return Output(changed.to_dict(), [f"grant {gid} {done}; {changed.name} now has: "
                                          f"{', '.join(changed.roles) or 'no roles'}"])
    return decide


operators.command("confirm", help="Give the role a grant asks for (a second platform admin, with a code: not "
                                  "whoever asked, not whoever receives it).")(_grant_decision(True))
operators.command("refuse", help="Refuse a pending grant, or withdraw your own (a platform admin with a "
                                 "code).")(_grant_decision(False))


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
        validate_name(name)
        if not validate_roles([role]):
            raise ValidationError(f"name a role: {', '.join(ROLES)}", field="role")
        op = authorised(state, as_name, code, "MANAGE_OPERATORS", may_manage_operators,
                        "operators.grant" if grant else "operators.revoke")
        svc = state.engine.operators
        changed = (svc.grant if grant else svc.revoke)(name, role, actor=f"operator:{op.name}")
        lines = [f"{changed.name} now has: {', '.join(changed.roles) or 'no roles'}"]
        if grant and role not in changed.roles:
            lines += [_waiting(g) for g in svc.pending_grants() if g.operator == changed.name and g.role == role]
        return Output(changed.to_dict(), lines)
    return change


operators.command("grant", help="Give an operator a role (platform admin with a code).")(_role_change(True))
operators.command("revoke", help="Take a role from an operator (platform admin with a code).")(_role_change(False))


# --- MFA ---------------------------------------------------------------------------------------

mfa = command_group("mfa", "Second factor (TOTP) for operators.")


@mfa.command("enroll")
@click.argument("name")
@click.option("--token", default=None, help="Your one-time enrolment token (sent to you by Discord or Slack).")
@identity
@reports
def mfa_enroll(state: CliState, name, token, as_name, code, as_json: bool) -> Output:
    """With --token: redeem your enrolment token and get your authenticator secret and 10 backup
    codes, shown once, to you only. With --as ADMIN (another platform admin, with their code): send
    NAME a new token (a lost device, or an expired token); their old factor stops working now."""
    validate_name(name)
    if token is None:
        if not as_name:
            raise ValidationError(f"redeem the token that was sent to {name} (mfa enroll {name} --token TOKEN), or, "
                                  "as another platform admin, send a new one (mfa enroll NAME --as ADMIN)",
                                  field="token")
        target = state.engine.operators.get(name)
        if as_name == target.name:
            state.engine.operators.refused(f"operator:{name}", "mfa.reissue", "re-enrolling oneself")
            raise PermissionDenied(f"{name} may not re-enrol themself; another platform admin must re-enrol a "
                                   "lost device")
        by = authorised(state, as_name, code, "MFA_RESET", may_manage_operators, "mfa.reissue",
                        before_code=lambda: state.engine.enrolment.check_channel(
                            target.name, target.discord_user_id, target.slack_user_id))
        issued = state.engine.enrolment.reissue(name, by=by)
        return Output(issued.to_dict(), [f"a new enrolment token for {name} was sent to {issued.delivered_to} "
                                         f"(valid until {issued.expires_at:%Y-%m-%d %H:%M} UTC)",
                                         f"{name}'s old authenticator and backup codes no longer work",
                                         f"next, {name} runs: arrakis mfa enroll {name} --token TOKEN"])
    enrolment = state.engine.enrolment.redeem(name, token)
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
    """Freeze Discord changes, revoke wizard sessions and signing for a scope. A right code
    activates it even while you are locked out after wrong codes."""
    op = acting(state, as_name)
    report = state.engine.killswitch.activate(op.actor(), scope=scope, community_id=community_id, user_id=user_id,
                                              reason=reason, code=lambda: ask_code(code))
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
                                             code=lambda: ask_code(code))
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

        from ..adapters.s3.shadow import LocalObjectStore

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
