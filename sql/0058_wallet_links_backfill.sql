-- Several wallets per member (issue 29): wallet_links is the list of a member's wallets and
-- profiles.wallet_address only names the primary one. A profile whose wallet was set without a
-- link (older code paths) gets its link here, so linking a second wallet never hides the first.
-- A wallet another member of the community already links stays theirs (unique per community).
-- The owner is fenced by FORCE ROW LEVEL SECURITY like everyone; lifted for this one statement,
-- inside this migration's transaction.
ALTER TABLE wallet_links NO FORCE ROW LEVEL SECURITY;
ALTER TABLE profiles NO FORCE ROW LEVEL SECURITY;
INSERT INTO wallet_links (community_id, profile_id, wallet_address, source)
SELECT p.community_id, p.id, p.wallet_address, 'legacy'
  FROM profiles p
 WHERE p.wallet_address ~ '^0x[0-9a-f]{40}$'
   AND NOT EXISTS (SELECT 1 FROM wallet_links w
                    WHERE w.community_id = p.community_id AND w.wallet_address = p.wallet_address)
ON CONFLICT (community_id, wallet_address) DO NOTHING;
ALTER TABLE wallet_links FORCE ROW LEVEL SECURITY;
ALTER TABLE profiles FORCE ROW LEVEL SECURITY;
