"""The onboarding wizard: a state machine with typed, validated steps, kept in Redis sessions."""
