"""The Discord sandbox: a local Discord for the embedded default (and the tests)."""
