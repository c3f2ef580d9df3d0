#!/usr/bin/env bash
# Drill: restore a community's manifests and shadow state from the shadow store (S3) into an
# empty database, and check them byte for byte against the archive.
#
#   SOURCE_DATABASE_URL=... TARGET_DATABASE_URL=... S3_ENDPOINT=... S3_ACCESS_KEY=... \
#   S3_SECRET_KEY=... S3_BUCKET=... bash ops/drills/restore_manifests.sh COMMUNITY_ID
#
# TARGET_DATABASE_URL must name an empty database; it is migrated first. Nothing is written to
# the source. Exit 0 means the restored versions verify against their checksums.
set -euo pipefail
community="${1:?usage: restore_manifests.sh COMMUNITY_ID}"
: "${TARGET_DATABASE_URL:?set TARGET_DATABASE_URL to an empty database}"

echo "1/4 sending anything still queued from the source to the shadow store"
DATABASE_URL="${SOURCE_DATABASE_URL:?set SOURCE_DATABASE_URL}" arrakis manifests flush
echo "2/4 checking the archive"
DATABASE_URL="$SOURCE_DATABASE_URL" arrakis manifests verify "$community"
echo "3/4 migrating the target and restoring"
DATABASE_URL="$TARGET_DATABASE_URL" arrakis db upgrade
DATABASE_URL="$TARGET_DATABASE_URL" arrakis manifests restore "$community"
echo "4/4 comparing restored versions with the archive"
DATABASE_URL="$TARGET_DATABASE_URL" arrakis manifests verify "$community"
echo "drill passed: community $community restored"
