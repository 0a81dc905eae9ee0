"""Settings and the shipped declarative data (playbooks, policies, workflows, triage rules)."""
