-- The watcher's bookkeeping is platform-only (it spans communities): the app role gets nothing; RLS
-- is on with no policy for it, so a mistaken grant still shows no row.
ALTER TABLE chain_watch ENABLE ROW LEVEL SECURITY;
ALTER TABLE chain_watch_blocks ENABLE ROW LEVEL SECURITY;
ALTER TABLE chain_watch_deltas ENABLE ROW LEVEL SECURITY;
REVOKE ALL ON chain_watch, chain_watch_blocks, chain_watch_deltas FROM PUBLIC, arrakis_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON chain_watch, chain_watch_blocks, chain_watch_deltas TO arrakis_admin;
