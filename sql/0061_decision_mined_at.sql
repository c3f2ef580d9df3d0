-- Live sync latency (arrakis_live_sync_latency_seconds: block mined -> role call): a decision the
-- watcher caused carries the time its block was mined, so that the worker that sends it to
-- Discord (maybe after a restart, maybe another worker) measures from that block. Bulk syncs
-- (members sync, the safety net, the bot's syncs) leave it empty and are not measured.
ALTER TABLE member_role_decisions ADD COLUMN IF NOT EXISTS mined_at timestamptz;
