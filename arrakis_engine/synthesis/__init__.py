"""Synthesis: turning a manifest into Discord state under Discord's rate limits."""
