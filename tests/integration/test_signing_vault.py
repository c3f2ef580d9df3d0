"""Signing against a real OpenBao dev server (Transit, AppRole, policies, token revocation) and
the local key file: sign, rotate, old and new verify; a community cut off by the kill switch
cannot sign while others can; Vault down fails clearly and publishes nothing unsigned."""

from __future__ import annotations

import os
import stat
from dataclasses import replace

import hvac
import pytest

from arrakis_engine.bootstrap import build_engine
from arrakis_engine.errors import SigningError
from arrakis_engine.adapters.signing.local import LocalKeySigner
from arrakis_engine.adapters.signing.vault import VaultTransitSigner, provision, signer_policy
from tests.fixtures.openbao import OpenBao


@pytest.fixture(scope="module")
def bao(tmp_path_factory):
    server = OpenBao(tmp_path_factory.mktemp("openbao"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def approle(bao):
    return provision(bao.admin())


def vault_operator(vault_engine, role: str = "platform_admin") -> tuple[str, str]:
    """An operator enrolled on the Vault engine (their secret sealed by Vault Transit)."""
    import uuid

    from tests.fixtures.operators import add_operator, secret_of

    name = f"vault-{uuid.uuid4().hex[:8]}"
    return name, secret_of(add_operator(vault_engine, name, [role]))


@pytest.fixture
def vault_engine(settings, approle, bao, engine):
    eng = build_engine(replace(settings, vault_addr=bao.addr, vault_role_id=approle["role_id"],
                               vault_secret_id=approle["secret_id"]))
    yield eng
    eng.close()


def test_sign_rotate_and_both_versions_verify(vault_engine):
    signing = vault_engine.signing
    assert signing.backend == "Vault Transit"
    first = signing.sign("platform", b"checkpoint one")
    assert first.startswith("vault:v1:")
    assert signing.verify("platform", b"checkpoint one", first)
    assert not signing.verify("platform", b"checkpoint two", first)
    assert signing.rotate("platform", actor="operator:test") == 2
    second = signing.sign("platform", b"checkpoint two")
    assert second.startswith("vault:v2:")
    assert signing.verify("platform", b"checkpoint one", first)  # the old version still verifies
    assert signing.verify("platform", b"checkpoint two", second)
    status = signing.status(["platform"])[0]
    assert status["reachable"] and status["latest_version"] == 2 and status["versions"] == [1, 2]
    assert set(signing.public_keys("platform")) == {1, 2}


def test_the_engine_login_cannot_sign_only_minted_per_key_tokens_can(bao, approle):
    engine_client = hvac.Client(url=bao.addr)
    engine_client.auth.approle.login(approle["role_id"], approle["secret_id"])
    with pytest.raises(hvac.exceptions.Forbidden):
        engine_client.secrets.transit.sign_data("arrakis-platform", hash_input="eA==")
    policy = bao.admin().sys.read_policy(signer_policy("platform"))["data"]["rules"]
    assert "transit/sign/arrakis-platform" in policy and "community" not in policy


def test_manifests_are_signed_with_the_communitys_own_key_and_a_cut_off_community_cannot_sign(
        vault_engine, make_community, bao):
    a, b = make_community(), make_community()
    manifest, _ = vault_engine.manifests.publish(a.id, actor="test")
    assert manifest.signature.startswith("vault:v1:")
    assert vault_engine.signing.verify_manifest(a.id, manifest.version, manifest.checksum, manifest.signature)
    # A's signature does not verify as B's (each community has its own key).
    assert not vault_engine.signing.verify_manifest(b.id, manifest.version, manifest.checksum, manifest.signature)
    vault_engine.signing.sign_manifest(b.id, 1, "0" * 64)

    key = f"community-{a.id}"
    accessors = [x.decode() for x in vault_engine.redis.smembers(f"arrakis:vault:accessors:{key}")]
    assert accessors
    revoked = vault_engine.signing.cut_off(key, reason="test cut-off")
    assert revoked == len(accessors)
    for accessor in accessors:  # really gone in Vault
        with pytest.raises((hvac.exceptions.InvalidRequest, hvac.exceptions.Forbidden)):
            bao.admin().auth.token.lookup_accessor(accessor)
    with pytest.raises(SigningError, match="kill switch"):
        vault_engine.signing.sign_manifest(a.id, 2, "1" * 64)
    vault_engine.signing.sign_manifest(b.id, 2, "1" * 64)  # B is untouched
    # Verification keeps working during the cut-off.
    assert vault_engine.signing.verify_manifest(a.id, manifest.version, manifest.checksum, manifest.signature)
    vault_engine.signing.restore(key)
    assert vault_engine.signing.sign_manifest(a.id, 2, "1" * 64).startswith("vault:v1:")


def test_vault_down_fails_clearly_and_nothing_is_published_unsigned(settings, approle, tmp_path, make_community,
                                                                    engine):
    # Its own server, so stopping it disturbs no other test.
    server = OpenBao(tmp_path / "bao")
    creds = provision(server.admin())
    eng = build_engine(replace(settings, vault_addr=server.addr, vault_role_id=creds["role_id"],
                               vault_secret_id=creds["secret_id"]))
    try:
        c = make_community()
        eng.manifests.publish(c.id, actor="test")
        server.stop()
        with eng.db.tenant(c.id):
            versions_before = eng.repos.manifests.latest().version
        from tests.integration.test_manifest_shadow import member_change

        member_change(eng, c.id, 5)
        with pytest.raises(SigningError, match="Vault could not be reached"):
            eng.manifests.publish(c.id, actor="test")
        with eng.db.tenant(c.id):
            assert eng.repos.manifests.latest().version == versions_before  # nothing new, nothing unsigned
        status = eng.signing.status([f"community-{c.id}"])[0]
        assert status["reachable"] is False and "could not be reached" in status["problem"]
    finally:
        eng.close()
        server.stop()


def test_no_secret_reaches_the_audit_log_or_errors(vault_engine, approle, bao):
    vault_engine.signing.rotate("platform", actor="operator:test")
    with vault_engine.db.platform():
        text = str([(x.actor, x.action, x.payload) for x in vault_engine.repos.audit.entries(None, limit=200)])
    for secret in (approle["secret_id"], approle["role_id"], bao.root_token):
        assert secret not in text
    bad = VaultTransitSigner(bao.addr, vault_engine.redis, role_id=approle["role_id"], secret_id="wrong-secret-id")
    with pytest.raises(SigningError) as err:
        bad.sign("platform", b"x")
    assert "wrong-secret-id" not in str(err.value) and approle["role_id"] not in str(err.value)


def test_local_key_file_is_private_and_rotation_keeps_old_signatures(tmp_path):
    signer = LocalKeySigner(tmp_path / "signing" / "keys.json")
    first = signer.sign("platform", b"a")
    mode = stat.S_IMODE(os.stat(tmp_path / "signing" / "keys.json").st_mode)
    assert mode == 0o600
    assert signer.rotate("platform") == 2
    second = signer.sign("platform", b"b")
    assert first.startswith("arrakis:local:v1:") and second.startswith("arrakis:local:v2:")
    assert signer.verify("platform", b"a", first) and signer.verify("platform", b"b", second)
    assert not signer.verify("platform", b"a", second)
    assert not signer.verify("platform", b"a", first[:-4] + "AAA=")
    assert not signer.verify("community-x", b"a", first)  # another key


def test_the_kill_switch_revokes_a_communitys_vault_tokens(vault_engine, make_community, make_operator, bao):
    """The kill switch itself (not only the signing service) against OpenBao: the community's
    minted tokens are revoked in Vault within the activation, its signing stops, the others' goes
    on, and release restores it."""
    import pyotp

    a, b = make_community(), make_community()
    vault_engine.manifests.publish(a.id, actor="test")  # mints A's signing token
    vault_engine.signing.sign_manifest(b.id, 1, "0" * 64)
    key = f"community-{a.id}"
    accessors = [x.decode() for x in vault_engine.redis.smembers(f"arrakis:vault:accessors:{key}")]
    assert accessors
    name, secret = vault_operator(vault_engine)
    actor = vault_engine.operators.get(name).actor()
    report = vault_engine.killswitch.activate(actor, scope="community", community_id=str(a.id),
                                              reason="drill: admin token leaked", code=pyotp.TOTP(secret).now())
    vault_part = next(p for p in report.parts if p.part == "stop signing and revoke Vault tokens")
    assert vault_part.ok and report.total_ms < 1000, report.parts
    for accessor in accessors:
        with pytest.raises((hvac.exceptions.InvalidRequest, hvac.exceptions.Forbidden)):
            bao.admin().auth.token.lookup_accessor(accessor)
    with pytest.raises(SigningError, match="kill switch"):
        vault_engine.signing.sign_manifest(a.id, 2, "1" * 64)
    vault_engine.signing.sign_manifest(b.id, 2, "1" * 64)  # B still signs
    other, other_secret = vault_operator(vault_engine)  # (a code is never accepted twice)
    vault_engine.killswitch.release(vault_engine.operators.get(other).actor(), scope="community",
                                    community_id=str(a.id), code=pyotp.TOTP(other_secret).now())
    assert vault_engine.signing.sign_manifest(a.id, 2, "1" * 64).startswith("vault:")


def test_audit_digests_signed_by_vault_check_out_from_the_store_alone(settings, approle, bao, engine, tmp_path):
    """Digests signed through Vault Transit verify with nothing but the public keys Vault gives
    (what the break-glass runbook does from a copy of the bucket); another key's do not."""
    from arrakis_engine.security.anchor import verify_digest_files
    from arrakis_engine.adapters.s3.shadow import LocalObjectStore

    store = LocalObjectStore(tmp_path / "store")
    eng = build_engine(replace(settings, vault_addr=bao.addr, vault_role_id=approle["role_id"],
                               vault_secret_id=approle["secret_id"]), store=store)
    try:
        first, second = eng.audit_anchor.anchor(reason="test"), eng.audit_anchor.anchor(reason="test")
        assert (first["number"], second["number"]) == (1, 2)
        assert eng.audit_anchor.digests().ok
        keys = eng.signing.public_keys("platform")
        offline = verify_digest_files(LocalObjectStore(tmp_path / "store"), keys)
        assert offline.ok and [d.number for d in offline.digests] == [1, 2]
        assert all(d.body["signature"].startswith("vault:v") for d in offline.digests)
        stranger = LocalKeySigner(tmp_path / "other" / "keys.json")
        stranger.sign("platform", b"make a key")
        refused = verify_digest_files(store, stranger.public_keys("platform"))
        assert not refused.ok and "digest #1 has a bad signature" in refused.problems[0]
    finally:
        eng.close()


def test_vault_seals_secrets_bound_to_their_context_and_the_kill_switch_does_not_stop_it(
        vault_engine, approle, bao, owner_conn):
    """Issue 24, point 9, against OpenBao: TOTP secrets are sealed by Transit encrypt (the engine's
    AppRole login, provisioned for it), bound to their operator, opened by Transit decrypt, and
    still open while signing is cut off (a kill switch must be releasable with a code)."""
    import pyotp

    signer = VaultTransitSigner(bao.addr, vault_engine.redis, role_id=approle["role_id"],
                                secret_id=approle["secret_id"])
    sealed = signer.encrypt("mfa-secrets", b"JBSWY3DPEHPK3PXP", context=b"operator:ada")
    assert sealed.startswith("vault:v1:") and "JBSWY3DPEHPK3PXP" not in sealed
    assert signer.decrypt("mfa-secrets", sealed, context=b"operator:ada") == b"JBSWY3DPEHPK3PXP"
    with pytest.raises(SigningError, match="cannot be opened"):
        signer.decrypt("mfa-secrets", sealed, context=b"operator:bob")  # moved to another row
    with pytest.raises(SigningError):
        signer.decrypt("mfa-secrets", sealed[:-6] + "AAAAA=", context=b"operator:ada")
    name, secret = vault_operator(vault_engine)
    with owner_conn.cursor() as cur:
        cur.execute("SELECT totp_secret FROM operators WHERE name = %s", (name,))
        stored = cur.fetchone()[0]
    assert stored.startswith("vault:v1:") and secret not in stored
    vault_engine.signing.cut_off(None, reason="drill")
    try:
        assert vault_engine.mfa.verify(name, pyotp.TOTP(secret).now(), action="KILL_SWITCH") == "totp"
    finally:
        vault_engine.signing.restore(None)


def test_the_local_key_file_seals_secrets_bound_to_their_context(tmp_path):
    signer = LocalKeySigner(tmp_path / "signing" / "keys.json")
    sealed = signer.encrypt("mfa-secrets", b"JBSWY3DPEHPK3PXP", context=b"operator:ada")
    assert sealed.startswith("arrakis:local-aead:v1:") and "JBSWY3DPEHPK3PXP" not in sealed
    assert signer.decrypt("mfa-secrets", sealed, context=b"operator:ada") == b"JBSWY3DPEHPK3PXP"
    with pytest.raises(SigningError, match="cannot be opened"):
        signer.decrypt("mfa-secrets", sealed, context=b"operator:bob")
    other = LocalKeySigner(tmp_path / "elsewhere" / "keys.json")
    with pytest.raises(SigningError, match="cannot be opened"):
        other.decrypt("mfa-secrets", sealed, context=b"operator:ada")  # another key file
