"""The run lifecycle: statuses, stages, HITL gates, group commit, the engine and recovery."""
