"""Manifests shadowed to a real S3 server (SeaweedFS) through the outbox; history and restore."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace

import pytest

from arrakis_engine.bootstrap import build_engine
from arrakis_engine.errors import IntegrityFailure
from arrakis_engine.storage.outbox import manifest_key
from tests.conftest import create_database, drop_database, make_settings
from tests.fixtures.seaweed import ACCESS_KEY, SECRET_KEY


@pytest.fixture
def s3e(settings, engine, s3):
    """An engine whose shadow store is the SeaweedFS server (a bucket per test)."""
    eng = build_engine(replace(settings, s3_endpoint=s3.endpoint, s3_access_key=ACCESS_KEY,
                               s3_secret_key=SECRET_KEY, s3_bucket=f"t{uuid.uuid4().hex[:12]}"))
    with eng.db.platform() as tx:  # earlier tests' outbox rows belong to other buckets: mark them sent
        tx.execute("UPDATE manifest_outbox SET delivered_at = now() WHERE delivered_at IS NULL")
    yield eng
    eng.close()


@pytest.fixture
def fresh_install(s3e, pg_server_url, redis_url, tmp_path, s3):
    """``fresh_install()``: a new installation on an empty, migrated database, reading the same
    bucket. It gets the signing key as it is at that moment (with Vault it would be the same
    Vault): the archive's signatures are checked against it."""
    import shutil

    empty = create_database(pg_server_url, prefix="arrakis_restore")
    opened = []

    def open_fresh():
        shutil.copytree(s3e.settings.data_dir / "signing", tmp_path / "signing")
        fresh = build_engine(replace(make_settings(empty, redis_url, tmp_path), s3_endpoint=s3.endpoint,
                                     s3_access_key=ACCESS_KEY, s3_secret_key=SECRET_KEY,
                                     s3_bucket=s3e.settings.s3_bucket))
        opened.append(fresh)
        fresh.migrator.upgrade()
        return fresh

    try:
        yield open_fresh
    finally:
        for fresh in opened:
            fresh.close()
        drop_database(pg_server_url, empty)


def member_change(e, community_id, n: int) -> None:
    with e.db.tenant(community_id):
        p = e.repos.profiles.create(discord_id=str(400_000_000_000_000_000 + n))
        e.repos.profiles.update_standing(p.id, tier="Gold", rank=1)


def test_versions_land_in_s3_with_an_index(s3e, make_community):
    c = make_community()
    for n in range(3):
        member_change(s3e, c.id, n)
        s3e.manifests.publish(c.id, actor="t")
    versions = s3e.archive.versions(c.id)
    assert [v["version"] for v in versions] == [1, 2, 3]
    with s3e.db.tenant(c.id):
        m = s3e.repos.manifests.by_version(2)
    body = s3e.shadow_store.get(manifest_key(c.id, 2))
    assert json.loads(body) == m.content and versions[1]["checksum"] == m.checksum
    assert all(x["ok"] for x in s3e.archive.verify(c.id))
    d = s3e.archive.diff(c.id, 1, 3)
    assert len(d["members"]["added"]) == 2


def test_s3_down_never_blocks_and_versions_land_later(s3e, make_community, s3):
    c = make_community()
    member_change(s3e, c.id, 10)
    s3e.manifests.publish(c.id, actor="t")
    s3.stop()
    try:
        for n in range(11, 14):
            member_change(s3e, c.id, n)
            manifest, new = s3e.manifests.publish(c.id, actor="t")  # no error reaches the caller
            assert new
        with s3e.db.platform():
            from arrakis_engine.storage.outbox import OutboxRepository

            assert OutboxRepository(s3e.db).counts()["pending"] >= 3
    finally:
        s3.start()
    result = s3e.archive.flush()
    assert result["pending"] == 0 and result["delivered"] >= 3
    assert [v["version"] for v in s3e.archive.versions(c.id)] == [1, 2, 3, 4]


def test_checksum_mismatch_is_detected(s3e, make_community):
    c = make_community()
    member_change(s3e, c.id, 20)
    s3e.manifests.publish(c.id, actor="t")
    s3e.shadow_store.put(manifest_key(c.id, 1), b'{"tampered": true}')
    assert s3e.archive.verify(c.id)[0]["ok"] is False
    with pytest.raises(IntegrityFailure):
        s3e.archive.restore(c.id)


def test_restore_into_an_empty_database_byte_for_byte(s3e, make_community, fresh_install):
    c = make_community(theme="sietch", subscription="premium")
    for n in range(3):
        member_change(s3e, c.id, 30 + n)
        s3e.manifests.publish(c.id, actor="t")
    with s3e.db.tenant(c.id):
        from arrakis_engine.storage.synthesis import SynthesisRepository

        store = SynthesisRepository(s3e.db)
        store.open_shadow(3)
        store.record(3, "role:naib", "1234")
        store.finish(3, "applied")
        originals = {v: s3e.repos.manifests.by_version(v) for v in (1, 2, 3)}
    s3e.archive.flush()

    fresh = fresh_install()
    report = fresh.archive.restore(c.id)
    assert report["manifests"] == [1, 2, 3] and report["shadow_states"] == 1
    from arrakis_engine.domain.checksums import canonical_json

    with fresh.db.tenant(c.id):
        for v, original in originals.items():
            restored = fresh.repos.manifests.verify(v)
            assert canonical_json(restored.content) == canonical_json(original.content)
            assert restored.checksum == original.checksum
        assert fresh.repos.communities.current().theme_id == "sietch"
        from arrakis_engine.storage.synthesis import SynthesisRepository as R

        assert R(fresh.db).latest_shadow()[1]["role:naib"] == "1234"
    assert fresh.archive.restore(c.id)["manifests"] == []  # running it again changes nothing


@pytest.mark.slow
def test_restore_drill_end_to_end(s3e, make_community, pg_server_url, database_url, redis_url, tmp_path, s3):
    """The ops drill runs the real CLI against a source and an empty target database."""
    import os
    import subprocess
    from pathlib import Path

    c = make_community()
    member_change(s3e, c.id, 50)
    s3e.manifests.publish(c.id, actor="t")
    target = create_database(pg_server_url, prefix="arrakis_drill")
    try:
        env = {**os.environ, "SOURCE_DATABASE_URL": database_url, "TARGET_DATABASE_URL": target,
               "REDIS_URL": redis_url, "ARRAKIS_DATA_DIR": str(s3e.settings.data_dir),
               "S3_ENDPOINT": s3.endpoint,
               "S3_ACCESS_KEY": ACCESS_KEY, "S3_SECRET_KEY": SECRET_KEY, "S3_BUCKET": s3e.settings.s3_bucket,
               "PATH": f"{Path(__import__('sys').executable).parent}:{os.environ['PATH']}"}
        drill = Path(__file__).resolve().parents[2] / "ops" / "drills" / "restore_manifests.sh"
        out = subprocess.run(["bash", str(drill), str(c.id)], env=env, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stdout + out.stderr
        assert "drill passed" in out.stdout and "v1: ok" in out.stdout
    finally:
        drop_database(pg_server_url, target)


def test_platform_health_sees_the_s3_store(s3e, make_community):
    c = make_community()
    s3e.manifests.publish(c.id, actor="t")
    item = next(i for i in s3e.operations.health().items if i.name == "shadow store")
    assert (item.state, item.detail) == ("ok", "S3, 0 waiting in the outbox")


@pytest.mark.parametrize("tamper", ["content_and_checksum", "signature"])
def test_restore_refuses_a_rewritten_or_badly_signed_version(s3e, make_community, fresh_install, tamper):
    """Someone who can write to the bucket rewrites a version and its checksum in the index (or
    swaps the signature): the checksum still matches, the signature does not, restore refuses."""
    import json

    from arrakis_engine.errors import IntegrityFailure
    from arrakis_engine.storage.outbox import index_key, manifest_key
    from arrakis_engine.domain.checksums import canonical_json, sha256_hex

    c = make_community()
    for n in range(2):
        member_change(s3e, c.id, 70 + n)
        s3e.manifests.publish(c.id, actor="t")
    s3e.archive.flush()
    with s3e.db.tenant(c.id):
        assert s3e.repos.manifests.by_version(1).signature.startswith("arrakis:local:v1:")
    assert all(check["signed"] is True and check["ok"] for check in s3e.archive.verify(c.id))

    index = json.loads(s3e.shadow_store.get(index_key(c.id)))
    if tamper == "content_and_checksum":
        body = json.loads(s3e.shadow_store.get(manifest_key(c.id, 1)))
        body["members"] = {"999999999999999999": {"tier": "naib", "badges": []}}
        text = canonical_json(body)
        s3e.shadow_store.put(manifest_key(c.id, 1), text.encode())
        index["versions"][0]["checksum"] = sha256_hex(text)
    else:
        index["versions"][0]["signature"] = index["versions"][1]["signature"]
    s3e.shadow_store.put(index_key(c.id), canonical_json(index).encode())
    checks = {ch["version"]: ch for ch in s3e.archive.verify(c.id)}
    assert checks[1]["checksum_ok"] and checks[1]["signed"] is False and not checks[1]["ok"]
    assert checks[2]["ok"]

    fresh = fresh_install()
    with pytest.raises(IntegrityFailure, match=r"\[1\] carry no valid signature"):
        fresh.archive.restore(c.id)
    from arrakis_engine.errors import NotFound

    with fresh.db.platform(), pytest.raises(NotFound):
        fresh.repos.communities.get(c.id)  # nothing restored


def test_audit_digests_go_to_s3_under_write_once_names(s3e, make_community):
    """The scheduler's audit digests land in the S3 bucket; a name is never written twice (a
    second writer of the same number is refused and the first digest stays as it was)."""
    from arrakis_engine.errors import Conflict
    from arrakis_engine.security.anchor import digest_key

    make_community()
    first = s3e.audit_anchor.anchor(reason="test")
    second = s3e.audit_anchor.anchor(reason="test")
    assert (first["number"], second["number"]) == (1, 2)
    assert s3e.shadow_store.list("audit-digests/") == [digest_key(1), digest_key(2)]
    kept = s3e.shadow_store.get(digest_key(1))
    with pytest.raises(Conflict, match="never overwritten"):
        s3e.shadow_store.put_new(digest_key(1), b"{}")
    assert s3e.shadow_store.get(digest_key(1)) == kept
    report = s3e.audit_anchor.digests()
    assert report.ok and [d.number for d in report.digests] == [1, 2]
