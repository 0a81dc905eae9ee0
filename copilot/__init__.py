"""The copilot: a ReAct loop over read-only, tenant-scoped tools that answers questions about runs."""
