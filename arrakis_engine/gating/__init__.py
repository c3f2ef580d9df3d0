"""Gating rules: membership (and optionally each tier) as an any/all/not expression over
holdings, allowlists, snapshots, holding time and Discord roles, evaluated with three-valued
(Kleene) logic so that a failed read is unknown, never false."""
