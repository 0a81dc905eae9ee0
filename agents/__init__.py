"""The four agents (Triage, Policy, Resolution, Feedback) and what they need: pure functions of a run."""
