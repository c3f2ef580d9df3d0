"""Operators, their second factor (TOTP), who may do what, and the kill switch."""
