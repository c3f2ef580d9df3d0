-- The kill switch's state (and the console's pause) lives here, not in Redis: one row per hold
-- of a scope. Redis keeps a cache of it (the freeze flags every Discord call checks in one atomic
-- step), rebuilt from this table whenever it is missing or disagrees. A Redis flush therefore
-- neither lifts a freeze nor goes unnoticed.
CREATE TABLE IF NOT EXISTS freezes (
    scope    text NOT NULL CHECK (scope IN ('global', 'community', 'user')),
    target   text NOT NULL,             -- '*' (global), a community id, or a Discord user id
    source   text NOT NULL CHECK (source IN ('killswitch', 'pause')),
    reason   text NOT NULL CHECK (length(reason) BETWEEN 1 AND 400),
    held_by  text NOT NULL CHECK (length(held_by) BETWEEN 1 AND 200),
    since    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, target, source)
);

-- Bumped in the transaction of every change, so a cache built from an older reading never
-- overwrites one built from a newer reading.
CREATE TABLE IF NOT EXISTS freeze_generation (
    one boolean PRIMARY KEY DEFAULT true CHECK (one),
    gen bigint NOT NULL
);
INSERT INTO freeze_generation (one, gen) VALUES (true, 1) ON CONFLICT (one) DO NOTHING;

ALTER TABLE freezes ENABLE ROW LEVEL SECURITY;
ALTER TABLE freeze_generation ENABLE ROW LEVEL SECURITY;
REVOKE ALL ON freezes, freeze_generation FROM PUBLIC, arrakis_app;
GRANT SELECT, INSERT, DELETE ON freezes TO arrakis_admin;
GRANT SELECT, UPDATE ON freeze_generation TO arrakis_admin;
