"""Manifests: the desired Discord state of a community, built from its theme and members."""
