"""Signatures over manifests and audit checkpoints: Vault/OpenBao Transit or a local key file,
behind the Signer port, with the kill switch's cut-off in :class:`SigningService`."""
