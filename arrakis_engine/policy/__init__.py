"""Policy pre-gate over infrastructure plans: Rego hard blocks and warnings, cost, risk."""
