-- Assets named by a gating rule are kept in community_assets with purpose 'rule', so the live
-- watcher follows their transfers (a transfer re-evaluates the community) without ranking or
-- gating by them the old way.
ALTER TABLE community_assets DROP CONSTRAINT IF EXISTS community_assets_purpose_check;
ALTER TABLE community_assets ADD CONSTRAINT community_assets_purpose_check
    CHECK (purpose IN ('rank', 'gate', 'rule'));
