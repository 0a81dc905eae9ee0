"""The shapes every layer shares: the run's status machine and typed state, event topics and
their payloads, and the error tree. Imports nothing of ours, so every package may import it."""
