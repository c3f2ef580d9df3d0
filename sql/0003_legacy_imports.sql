-- One row per live import from a legacy single-tenant SQLite store (a rollback deletes it;
-- the audit log keeps the record of both). Imported rows carry its id in
-- legacy_import_id, so a rollback removes exactly what the import wrote.
CREATE TABLE legacy_imports (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    community_id    uuid NOT NULL REFERENCES communities(id) ON DELETE CASCADE,
    source_name     text NOT NULL,
    source_checksum text NOT NULL CHECK (source_checksum ~ '^[0-9a-f]{64}$'),
    counts          jsonb NOT NULL DEFAULT '{}'::jsonb,
    imported_at     timestamptz NOT NULL DEFAULT now(),
    imported_by     text NOT NULL
);
CREATE INDEX legacy_imports_community ON legacy_imports (community_id, imported_at DESC);
